#!/usr/bin/env bash
# Which name serves which model is attested (docs/attestation.md), and the
# client fails closed:
#  - two packs of the bundled model whose ids differ (one with labels, one
#    without and with another chunk size) served as a=A, b=B: the certificate
#    binds the (name, model id) pairs in REPORTDATA[32..63] (recomputed here
#    from the documented formula) and lists them; an honest "models" policy is
#    accepted by `occ attest` and `occ infer --model a|b` (same scores as
#    `occ run`);
#  - the same packs served under swapped names (a=B, b=A): that policy is
#    refused by attest and by infer for either name, before any request;
#  - a policy naming only a: infer --model b is refused (no entry), attest
#    --model a accepted;
#  - no --policy, or a policy pinning no enclave or no model: attest and infer
#    refuse to connect (exit 2) unless --insecure; MRSIGNER pins the enclave
#    only with isv_prod_id; an emulated server is refused unless the policy
#    says allow_emulated (even with --insecure);
#  - no refused client made the server answer a request (its response counter
#    does not move).
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
PIDS=()
on_exit() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; return 0; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

read -r -a PACKARGS <"$SRC/models/fmnist.packargs"
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/A.occ" --labels "$SRC/models/fmnist.labels" "${PACKARGS[@]}" \
  --quiet >/dev/null
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/B.occ" "${PACKARGS[@]}" --chunk-size 64K --quiet >/dev/null
id_of() { "$OCC" inspect "$1" --json | "$PY" "$SRC/tools/jsonfield.py" - model_id; }
IA=$(id_of "$T/A.occ")
IB=$(id_of "$T/B.occ")
[ "$IA" != "$IB" ] && [ ${#IA} -eq 64 ] && ok || bad "the two packs have different model ids"
mkdir -m 700 "$T/emu"

# start NAME=PACK... -> sets URL, MPORT, LOG
start() {
  local tag=$1; shift
  local args=()
  for m in "$@"; do args+=(--model "$m"); done
  "$OCC" serve "${args[@]}" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --metrics 127.0.0.1:0 \
    --threads 1 >"$T/$tag.log" 2>"$T/$tag.err" &
  PIDS+=($!)
  for _ in $(seq 300); do grep -q '^listening' "$T/$tag.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^listening' "$T/$tag.log" || { cat "$T/$tag.log" "$T/$tag.err" >&2; echo "server $tag did not start" >&2; exit 1; }
  LOG=$T/$tag.log
  URL=https://127.0.0.1:$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$LOG")
  MPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$LOG")
}
responses() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^occ_http_responses_total/ {s += $2} END {print s + 0}'; }
ROOT=(--root "$T/emu/root.pem")

# --- the honest server: a=A, b=B ---
start honest "a=$T/A.occ" "b=$T/B.occ"
HURL=$URL HM=$MPORT
MR=$(awk '/^mrenclave /{print $2}' "$LOG")
MS=$(awk '/^mrsigner /{print $2}' "$LOG")
[ "$(awk '/^model a /{print $3}' "$LOG")" = "$IA" ] && [ "$(awk '/^model b /{print $3}' "$LOG")" = "$IB" ] && ok ||
  bad "serve prints each name's model id"
BINDING=$(awk '/^report_data_model_binding /{print $2}' "$LOG")
# the documented binding, recomputed independently
"$PY" - "$BINDING" "$IA" "$IB" <<'PY' && ok || bad "binding = SHA-256 of the sorted (name, id) pairs as documented"
import hashlib, struct, sys
want, ia, ib = sys.argv[1:]
m = b"occlumency-models-v1\0" + struct.pack(">I", 2)
for name, i in sorted([(b"a", ia), (b"b", ib)]):
    m += struct.pack(">I", len(name)) + name + bytes.fromhex(i)
assert hashlib.sha256(m).hexdigest() == want, (hashlib.sha256(m).hexdigest(), want)
PY

pol() { # FILE JSON-FRAGMENT: a policy pinning this MRENCLAVE, emulation allowed
  printf '{"mrenclave": ["%s"], "allow_emulated": true, %s}\n' "$MR" "$2" >"$T/$1.json"
}
pol honest "\"models\": {\"a\": \"$IA\", \"b\": \"$IB\"}"
pol swapped "\"models\": {\"a\": \"$IB\", \"b\": \"$IA\"}"
pol only_a "\"models\": {\"a\": \"$IA\"}"
printf '{"mrenclave": ["%s"], "models": {"a": "%s"}}\n' "$MR" "$IA" >"$T/noemu.json"
printf '{"mrenclave": ["%s"], "allow_emulated": true}\n' "$MR" >"$T/nomodel.json"
printf '{"models": {"a": "%s"}, "allow_emulated": true}\n' "$IA" >"$T/noenclave.json"
printf '{"mrsigner": ["%s"], "models": {"a": "%s"}, "allow_emulated": true}\n' "$MS" "$IA" >"$T/signer.json"
printf '{"mrsigner": ["%s"], "isv_prod_id": 0, "models": {"a": "%s"}, "allow_emulated": true}\n' "$MS" "$IA" \
  >"$T/signer_prod.json"
printf '{"allow_emulated": true}\n' >"$T/emuonly.json"

x=$T/x.bin
"$PY" -c 'import struct, random, sys; r = random.Random(5); open(sys.argv[1], "wb").write(struct.pack("784f", *[r.uniform(-1, 2) for _ in range(784)]))' "$x"
"$OCC" run "$T/A.occ" --input "$x" --output "$T/refA.bin" >/dev/null
"$OCC" run "$T/B.occ" --input "$x" --output "$T/refB.bin" >/dev/null

# --- honest mapping: accepted ---
"$OCC" attest "$HURL" --policy "$T/honest.json" "${ROOT[@]}" --json >"$T/att.json" 2>"$T/att.err" && ok ||
  { bad "attest, honest models policy"; cat "$T/att.json" "$T/att.err" >&2; }
"$PY" - "$T/att.json" "$IA" "$IB" "$BINDING" <<'PY' && ok || bad "attest --json lists the bound models"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["accepted"] and d["models"] == {"a": sys.argv[2], "b": sys.argv[3]}, d
assert d["report_data"][64:] == sys.argv[4]
PY
for n in a b; do
  up=$(echo $n | tr ab AB)
  "$OCC" infer "$HURL" --model $n --tensor "$x" --output "$T/y$n.bin" --policy "$T/honest.json" "${ROOT[@]}" \
    >/dev/null 2>"$T/err" && cmp -s "$T/y$n.bin" "$T/ref$up.bin" && ok || { bad "infer --model $n, honest policy"; cat "$T/err" >&2; }
done
"$OCC" attest "$HURL" --policy "$T/only_a.json" "${ROOT[@]}" --model a >/dev/null 2>&1 && ok || bad "attest --model a, policy naming a"
"$OCC" attest "$HURL" --policy "$T/signer_prod.json" "${ROOT[@]}" >/dev/null 2>&1 && ok || bad "mrsigner + isv_prod_id pins"

# refusals against the honest server: nothing is answered
before=$(responses "$HM")
expect_rc() { # NAME RC PATTERN CMD...
  local name=$1 want=$2 pat=$3; shift 3
  local rc=0
  "$@" >"$T/out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ] && grep -qE -e "$pat" "$T/out"; then ok; else bad "$name: rc $rc (want $want), pattern '$pat'"; cat "$T/out" >&2; fi
}
expect_rc "infer b, policy naming only a" 1 "no entry for model 'b'" \
  "$OCC" infer "$HURL" --model b --tensor "$x" --policy "$T/only_a.json" "${ROOT[@]}"
expect_rc "attest, no policy" 2 "no --policy" "$OCC" attest "$HURL" "${ROOT[@]}"
expect_rc "infer, no policy" 2 "no --policy" "$OCC" infer "$HURL" --model a --tensor "$x" "${ROOT[@]}"
expect_rc "infer, policy without a model" 2 "pins no model" \
  "$OCC" infer "$HURL" --model a --tensor "$x" --policy "$T/nomodel.json" "${ROOT[@]}"
expect_rc "attest, policy without an enclave" 2 "pins no enclave" \
  "$OCC" attest "$HURL" --policy "$T/noenclave.json" "${ROOT[@]}"
expect_rc "attest, mrsigner without isv_prod_id" 2 "pins no enclave" \
  "$OCC" attest "$HURL" --policy "$T/signer.json" "${ROOT[@]}"
expect_rc "infer, emulation not allowed" 1 "allow_emulated is false" \
  "$OCC" infer "$HURL" --model a --tensor "$x" --policy "$T/noemu.json" "${ROOT[@]}"
expect_rc "attest --insecure without a policy: emulation still refused" 1 "allow_emulated is false" \
  "$OCC" attest "$HURL" --insecure "${ROOT[@]}"
[ "$(responses "$HM")" = "$before" ] && ok || bad "a refused client got an HTTP answer"
expect_rc "attest --insecure, emulation allowed" 0 "insecure" \
  "$OCC" attest "$HURL" --insecure --policy "$T/emuonly.json" "${ROOT[@]}"

# --- the same packs under swapped names: the honest policy refuses them ---
start swapped "a=$T/B.occ" "b=$T/A.occ"
SURL=$URL SM=$MPORT
[ "$(awk '/^report_data_model_binding /{print $2}' "$LOG")" != "$BINDING" ] && ok || bad "swapped names change the binding"
before=$(responses "$SM")
expect_rc "attest swapped server" 1 "model 'a' is served with model id ${IB:0:16}" \
  "$OCC" attest "$SURL" --policy "$T/honest.json" "${ROOT[@]}"
for n in a b; do
  expect_rc "infer --model $n on the swapped server" 1 "refused by the policy: model '$n' is served with" \
    "$OCC" infer "$SURL" --model $n --tensor "$x" --policy "$T/honest.json" "${ROOT[@]}"
done
[ "$(responses "$SM")" = "$before" ] && ok || bad "the swapped server answered a request"
# and the policy that describes it is accepted
"$OCC" infer "$SURL" --model a --tensor "$x" --output "$T/ysa.bin" --policy "$T/swapped.json" "${ROOT[@]}" \
  >/dev/null 2>&1 && cmp -s "$T/ysa.bin" "$T/refB.bin" && ok || bad "swapped server, matching policy"
finish
