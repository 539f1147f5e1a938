#!/usr/bin/env bash
# occ attest end to end on the vendored DCAP vectors (testdata/dcap) and an emulated round trip.
set -u
OCC=${OCC_BIN:?OCC_BIN not set}
D=${OCC_SRC:?OCC_SRC not set}/testdata/dcap
P=$D/phala-dcap-qvl
R=$D/ratls-interop
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
ok()  { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
expect() { # name expected_rc cmd...
  local name=$1 want=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok "$name"; else bad "$name (rc $rc, want $want)"; cat "$T/out" "$T/err"; fi
}
has() { if grep -q -- "$2" "$T/out"; then ok "$1"; else bad "$1: no '$2'"; cat "$T/out"; fi; }

AT=1750464000
BASE=(--quote "$P/sgx_quote" --collateral "$P/sgx_quote_collateral.json" --root "$P/TrustedRootCA.der")
# Policies pin the enclave (MRENCLAVE) and the model (REPORTDATA[32..63]: zero in this quote,
# whose REPORTDATA is "Hello, world!" and zeros); `occ attest` refuses to verify against one that
# does not, unless --insecure.
GMR=33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb
ZERO=$(printf '0%.0s' $(seq 64))
echo "{\"accepted_tcb_status\":[\"UpToDate\",\"ConfigurationAndSWHardeningNeeded\"],\"mrenclave\":[\"$GMR\"],\"model_id\":\"$ZERO\"}" >"$T/relaxed.json"
echo "{\"mrenclave\":[\"$GMR\"],\"model_id\":\"$ZERO\"}" >"$T/default.json"
echo "{\"accepted_tcb_status\":[\"UpToDate\",\"ConfigurationAndSWHardeningNeeded\"],\"mrenclave\":[\"00d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb\"],\"model_id\":\"$ZERO\"}" >"$T/othermr.json"
echo '{"accepted_tcb_status":["UpToDate","ConfigurationAndSWHardeningNeeded"]}' >"$T/unpinned.json"

expect "help" 0 "$OCC" attest --help
expect "genuine, relaxed policy" 0 "$OCC" attest "${BASE[@]}" --policy "$T/relaxed.json" --at $AT --json
has "json accepted" '"accepted":[[:space:]]*true'
has "json tcb status" '"tcb_status":[[:space:]]*"ConfigurationAndSWHardeningNeeded"'
has "json advisories" '"INTEL-SA-00289", "INTEL-SA-00615"'
has "json mrenclave" '"mrenclave":[[:space:]]*"33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"'
expect "genuine, default policy refused" 1 "$OCC" attest "${BASE[@]}" --policy "$T/default.json" --at $AT --json
has "reason names the status" 'TCB status ConfigurationAndSWHardeningNeeded not accepted'
expect "genuine, no policy file: refused to verify" 2 "$OCC" attest "${BASE[@]}" --at $AT
grep -q 'no --policy: the policy pins no enclave' "$T/err" && ok "no policy reason" || { bad "no policy reason"; cat "$T/err"; }
expect "genuine, --insecure without a policy = default policy" 1 "$OCC" attest "${BASE[@]}" --at $AT --insecure
has "human output" 'REFUSED'
has "insecure: default policy reason" 'TCB status ConfigurationAndSWHardeningNeeded not accepted'
expect "genuine, policy without pins: refused to verify" 2 "$OCC" attest "${BASE[@]}" --policy "$T/unpinned.json" --at $AT
grep -q 'pins no enclave.*pins no model' "$T/err" && ok "unpinned reason" || { bad "unpinned reason"; cat "$T/err"; }
expect "genuine, policy without pins, --insecure" 0 "$OCC" attest "${BASE[@]}" --policy "$T/unpinned.json" --at $AT --insecure
grep -q 'insecure' "$T/err" && ok "insecure warns" || bad "insecure warns"
expect "other MRENCLAVE" 1 "$OCC" attest "${BASE[@]}" --policy "$T/othermr.json" --at $AT --json
has "identity mismatch" 'MRENCLAVE mismatch'
expect "expired" 1 "$OCC" attest "${BASE[@]}" --policy "$T/relaxed.json" --at 1754006400 --json
has "expired reason" 'TCB info expired'
expect "not yet valid" 1 "$OCC" attest "${BASE[@]}" --policy "$T/relaxed.json" --at 1748736000 --json
has "not yet valid reason" 'not yet valid'
python3 - "$P/sgx_quote" "$T" <<'PY'
import sys
q = open(sys.argv[1], 'rb').read()
d = sys.argv[2]
for off in (112, 368, 28, 628, 1014):
    b = bytearray(q); b[off] ^= 1
    open(f"{d}/flip{off}", 'wb').write(b)
open(f"{d}/trunc", 'wb').write(q[:1000])
PY
for case in "112:ISV enclave report signature invalid" "368:ISV enclave report signature invalid" \
            "28:ISV enclave report signature invalid" "628:QE report signature invalid" \
            "1014:QE REPORTDATA binding mismatch"; do
  off=${case%%:*}; why=${case#*:}
  expect "flip byte $off" 1 "$OCC" attest --quote "$T/flip$off" --collateral "$P/sgx_quote_collateral.json" \
    --root "$P/TrustedRootCA.der" --policy "$T/relaxed.json" --at $AT --json
  has "flip byte $off reason" "$why"
done
expect "truncated" 1 "$OCC" attest --quote "$T/trunc" --collateral "$P/sgx_quote_collateral.json" \
  --root "$P/TrustedRootCA.der" --policy "$T/relaxed.json" --at $AT --json
has "truncated reason" 'quote parse error'
expect "wrong root" 1 "$OCC" attest --quote "$P/sgx_quote" --collateral "$P/sgx_quote_collateral.json" \
  --root <(sed -n '1,/END CERT/p' "$P/extracted/tcb_signing_chain.pem") --policy "$T/relaxed.json" --at $AT --json
has "wrong root reason" 'does not verify to the pinned root'
expect "tdx refused" 1 "$OCC" attest --quote "$P/tdx_quote" --collateral "$P/tdx_quote_collateral.json" \
  --root "$P/TrustedRootCA.der" --policy "$T/relaxed.json" --at $AT --json
has "tdx reason" 'not an SGX enclave quote'
expect "occlum: collateral missing" 1 "$OCC" attest --quote "$D/occlum-sgx-quote/quote.raw" \
  --root "$P/TrustedRootCA.der" --at 1756684800 --json --insecure
has "occlum reason" 'collateral missing'
for c in gramine-cert intel-sgxsdk-cert rats-tls-cert; do
  at=$AT; [ $c = rats-tls-cert ] && at=1685577600
  expect "$c refused by default" 1 "$OCC" attest --cert "$R/$c.pem" --root "$P/TrustedRootCA.der" --at $at --json --insecure
  has "$c debug reason" 'debug enclave refused'
  has "$c binding" '"key_binding":[[:space:]]*"tcg-claims"'
  has "$c verified" '"verified":[[:space:]]*true'
done

# emulated round trip
E=$T/emu
expect "make emulated quote" 0 "$OCC" attest --emu-dir "$E" --make-quote "$T/emu.quote" \
  --report-data "$(printf '%0128x' 7)"
[ "$(stat -c %a "$E")" = 700 ] && ok "emu dir is 0700" || bad "emu dir mode"
EMR=$(sha256sum "$OCC" | cut -c1-64) # emulated MRENCLAVE: SHA-256 of the occ binary
echo "{\"mrenclave\":[\"$EMR\"],\"model_id\":\"$(printf '%064x' 7)\",\"allow_emulated\":true}" >"$T/emu.json"
echo "{\"mrenclave\":[\"$EMR\"],\"model_id\":\"$(printf '%064x' 7)\"}" >"$T/emu-noallow.json"
expect "emulated quote with its root" 0 "$OCC" attest --quote "$T/emu.quote" --root "$E/root.pem" --policy "$T/emu.json" --json
has "emulated flag" '"emulated":[[:space:]]*true'
has "emulated status" '"tcb_status":[[:space:]]*"Emulated"'
expect "emulated human output is loud" 0 "$OCC" attest --quote "$T/emu.quote" --emu-dir "$E" --policy "$T/emu.json"
has "loud" 'NOT hardware-backed'
expect "emulated quote, allow_emulated not given: refused" 1 "$OCC" attest --quote "$T/emu.quote" --emu-dir "$E" \
  --policy "$T/emu-noallow.json" --json
has "emulated refused by default" 'allow_emulated is false'
expect "emulated quote, --insecure does not allow emulation" 1 "$OCC" attest --quote "$T/emu.quote" --emu-dir "$E" \
  --insecure --json
has "insecure still refuses emulation" 'allow_emulated is false'
expect "emulated quote without its root" 1 "$OCC" attest --quote "$T/emu.quote" --root "$P/TrustedRootCA.der" --policy "$T/emu.json" --json
MODEL=$(printf '%064x' 42)
expect "make emulated cert" 0 "$OCC" attest --emu-dir "$E" --make-cert "$T/emu.pem" --model-id "$MODEL"
echo "{\"mrenclave\":[\"$EMR\"],\"model_id\":\"$MODEL\",\"allow_emulated\":true}" >"$T/model.json"
echo "{\"mrenclave\":[\"$EMR\"],\"model_id\":\"$(printf '%064x' 43)\",\"allow_emulated\":true}" >"$T/othermodel.json"
expect "emulated cert, right model" 0 "$OCC" attest --cert "$T/emu.pem" --root "$E/root.pem" --policy "$T/model.json" --json
has "occlumency binding" '"key_binding":[[:space:]]*"occlumency"'
expect "emulated cert, other model" 1 "$OCC" attest --cert "$T/emu.pem" --root "$E/root.pem" --policy "$T/othermodel.json" --json
has "model reason" 'model id mismatch'
# a server's (name, model id) list in the certificate, bound in REPORTDATA[32..63]
IA=$(printf 'a%.0s' $(seq 64)); IB=$(printf 'b%.0s' $(seq 64))
expect "make emulated cert with two named models" 0 "$OCC" attest --emu-dir "$E" --make-cert "$T/two.pem" \
  --bind-model "alpha=$IA" --bind-model "beta=$IB"
echo "{\"mrenclave\":[\"$EMR\"],\"models\":{\"alpha\":\"$IA\",\"beta\":\"$IB\"},\"allow_emulated\":true}" >"$T/two.json"
echo "{\"mrenclave\":[\"$EMR\"],\"models\":{\"alpha\":\"$IB\",\"beta\":\"$IA\"},\"allow_emulated\":true}" >"$T/swapped.json"
expect "two models, honest policy" 0 "$OCC" attest --cert "$T/two.pem" --root "$E/root.pem" --policy "$T/two.json" --json
has "models in the verdict" '"alpha":[[:space:]]*"aaaa'
expect "two models, swapped names refused" 1 "$OCC" attest --cert "$T/two.pem" --root "$E/root.pem" --policy "$T/swapped.json" --json
has "swapped reason" "model 'alpha' is served with model id aaaa"
expect "two models, --model beta of a swapped policy refused" 1 "$OCC" attest --cert "$T/two.pem" --root "$E/root.pem" \
  --policy "$T/swapped.json" --model beta --json
has "swapped reason for beta" "model 'beta' is served with model id bbbb"
expect "a quote carries no names" 2 "$OCC" attest --quote "$T/emu.quote" --root "$E/root.pem" --policy "$T/two.json" --model alpha
expect "bad --bind-model" 2 "$OCC" attest --emu-dir "$E" --make-cert "$T/x.pem" --bind-model "alpha=12"
expect "unbindable name" 2 "$OCC" attest --emu-dir "$E" --make-cert "$T/x.pem" --bind-model "a b=$IA"

# usage errors
expect "no input" 2 "$OCC" attest --root "$P/TrustedRootCA.der"
expect "bad policy key" 2 "$OCC" attest "${BASE[@]}" --policy <(echo '{"allow_debgu":true}')
expect "network hook" 2 "$OCC" attest https://localhost:8443
exit $fail
