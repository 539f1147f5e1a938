#!/usr/bin/env bash
# Key release after attestation (docs/keys.md): `occ keys serve` gives the
# key of an encrypted pack only to an enclave whose RA-TLS certificate the
# owner's policy accepts and which binds that model id; `occ serve
# --key-server` fetches it inside the enclave before serving.
#  - an encrypted pack served with a key from the broker answers exactly as
#    the plain pack does (occ run), and the key never crosses the recorded
#    boundary in the clear;
#  - a broker whose policy pins another MRENCLAVE: the server does not start
#    (one line, exit 1), the broker logs the MRENCLAVE mismatch, a client sees
#    only 403 {"error":"refused"};
#  - no client certificate, a forged (non-RA-TLS) certificate, evidence from
#    another quoting root, a key file that is absent, a policy "models" that
#    names the model differently, a pinned broker certificate that is not the
#    broker's, a malformed request: refused, each with its reason in the log;
#  - the broker survives garbage and half-open clients and still serves.
# Debug and expired evidence are refused in tests/test_keys.c.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
PIDS=()
on_exit() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; return 0; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

port_of() { # FILE: waits for "listening ... (port N)"
  for _ in $(seq 300); do grep -q '^listening' "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$1"
}
broker() { # NAME POLICY KEYDIR: starts a broker, sets BPORT
  "$OCC" keys serve --listen 127.0.0.1:0 --key-dir "$3" --policy "$2" --root "$T/emu/root.pem" \
    --cert-out "$T/$1.pem" >"$T/$1.out" 2>"$T/$1.log" &
  PIDS+=($!)
  BPORT=$(port_of "$T/$1.out")
  [ -n "$BPORT" ] || { cat "$T/$1.out" "$T/$1.log" >&2; echo "broker $1 did not start" >&2; exit 1; }
}

# shellcheck disable=SC2046
args=(--labels "$SRC/models/fmnist.labels" $(cat "$SRC/models/fmnist.packargs") --quiet)
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/p.occ" "${args[@]}" >/dev/null
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/e.occ" "${args[@]}" --encrypt-key "$T/k" >/dev/null 2>&1
ID=$("$OCC" inspect "$T/e.occ" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
mkdir -m 700 "$T/emu" "$T/emu2" "$T/keys" "$T/nokeys"
cp "$T/k" "$T/keys/$ID.key"
"$OCC" attest --emu-dir "$T/emu" --make-quote "$T/q" >/dev/null 2>&1
MRENCLAVE=$(sha256sum "$OCC" | cut -d' ' -f1)
ZERO=$(printf '0%.0s' $(seq 64))
printf '{"mrenclave": ["%s"], "models": {"fmnist": "%s"}, "allow_emulated": true}\n' "$MRENCLAVE" "$ID" >"$T/pol.json"
printf '{"mrenclave": ["%s"], "models": {"fmnist": "%s"}, "allow_emulated": true}\n' "$ZERO" "$ID" >"$T/other.json"
printf '{"mrenclave": ["%s"], "models": {"other": "%s"}, "allow_emulated": true}\n' "$MRENCLAVE" "$ID" >"$T/names.json"
printf '{"models": {"fmnist": "%s"}, "allow_emulated": true}\n' "$ID" >"$T/unpinned.json"
$PY -c "import numpy as np; np.random.default_rng(5).standard_normal((1,1,28,28)).astype(np.float32).tofile('$T/x.bin')"
"$OCC" run "$T/p.occ" --input "$T/x.bin" --output "$T/want.bin" --threads 1 >/dev/null

serve() { # NAME BROKER-PORT CA [EMU] [extra...]: occ serve of the encrypted pack with keys from the broker
  local name=$1 port=$2 ca=$3 emu=${4:-$T/emu}
  shift 4 || shift $#
  "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$emu" --threads 1 \
    --key-server "127.0.0.1:$port" --key-server-ca "$ca" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  SPID=$!
  PIDS+=($SPID)
}

# --- the broker refuses to start with a policy that pins no enclave ---
expect_error "broker: policy pins no enclave" "pins no enclave" \
  "$OCC" keys serve --listen 127.0.0.1:0 --key-dir "$T/keys" --policy "$T/unpinned.json" --root "$T/emu/root.pem"

# --- the honest broker: same answers as the plain pack ---
broker good "$T/pol.json" "$T/keys"
GOOD=$BPORT
serve s1 "$GOOD" "$T/good.pem" "$T/emu" --record-boundary "$T/rec.bin"
SPORT=$(port_of "$T/s1.out")
if [ -n "$SPORT" ]; then ok; else bad "server with the broker's key did not start"; cat "$T/s1.out" "$T/s1.err" >&2; fi
grep -q "keys: fetched inside the enclave from 127.0.0.1:$GOOD (its certificate pinned" "$T/s1.out" && ok || bad "serve says where its keys came from"
grep -q "model $ID: released to an attested enclave" "$T/good.log" && ok || bad "broker logs the release"
"$OCC" infer "https://127.0.0.1:$SPORT" --model fmnist --tensor "$T/x.bin" --output "$T/got.bin" \
  --policy "$T/pol.json" --root "$T/emu/root.pem" >/dev/null 2>"$T/infer.err" && ok || { bad "infer"; cat "$T/infer.err" >&2; }
cmp -s "$T/got.bin" "$T/want.bin" && ok || bad "encrypted pack with the broker's key: same answer as the plain pack"
kill "$SPID"; wait "$SPID" 2>/dev/null || true
san_clean "$T/s1.err" && ok || { bad "sanitizer report in serve"; cat "$T/s1.err" >&2; }
$PY - "$T/k" "$T/rec.bin" <<'PY' && ok || bad "the key crossed the boundary in the clear (or key_* crossings not recorded)"
import struct, sys
key, rec = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(key) == 32 and len(rec) > 1000
for i in range(0, 25, 8):
    assert key[i:i + 8] not in rec, i
# the key fetch crossed as key_connect (13), key_send (14), key_recv (15) records with TLS bytes
# (occ_boundary_call in include/occ/boundary_emu.h)
calls, off = {}, 0
while off + 32 <= len(rec):
    magic, d, call = struct.unpack_from("<IBB", rec, off)
    size = struct.unpack_from("<Q", rec, off + 24)[0]
    assert magic == 0x4f434342
    calls[call] = calls.get(call, 0) + size
    off += 32 + size
assert off == len(rec), (off, len(rec))
assert calls.get(13, 0) > 0 and calls.get(14, 0) > 500 and calls.get(15, 0) > 500, calls
PY

# --- a broker whose policy pins another MRENCLAVE: no start, generic refusal ---
broker other "$T/other.json" "$T/keys"
expect_error "serve: broker pins another MRENCLAVE" "^occ serve: error: model 'fmnist': the key server refused the key of model $ID \(HTTP 403" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:$BPORT" --key-server-ca "$T/other.pem"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok || { bad "one line"; cat "$T/err" >&2; }
! grep -qi "listening" "$T/out" && ok || bad "the server must not listen"
grep -q "refused: evidence refused: MRENCLAVE mismatch: $MRENCLAVE is not allowed" "$T/other.log" && ok ||
  { bad "broker logs the MRENCLAVE mismatch"; cat "$T/other.log" >&2; }
! grep -qi "mrenclave" "$T/err" && ok || bad "the server's line does not carry the broker's reason"

# --- clients that are not attested enclaves ---
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/fk.pem" -out "$T/fc.pem" \
  -days 1 -subj /CN=forged >/dev/null 2>&1
curl -sk "https://127.0.0.1:$GOOD/v1/keys/$ID" -o "$T/body" -w '%{http_code}' >"$T/code" || true
[ "$(cat "$T/code")" = 403 ] && [ "$(cat "$T/body")" = '{"error":"refused"}' ] && ok || bad "no client cert: 403 refused ($(cat "$T/code"))"
grep -q "refused: no client certificate" "$T/good.log" && ok || bad "log: no client certificate"
curl -sk --cert "$T/fc.pem" --key "$T/fk.pem" "https://127.0.0.1:$GOOD/v1/keys/$ID" -o "$T/body" -w '%{http_code}' >"$T/code" || true
[ "$(cat "$T/code")" = 403 ] && [ "$(cat "$T/body")" = '{"error":"refused"}' ] && ok || bad "forged cert: 403 refused"
grep -q "refused: evidence refused: certificate carries no RA-TLS evidence" "$T/good.log" && ok || bad "log: forged certificate"
curl -sk --cert "$T/fc.pem" --key "$T/fk.pem" "https://127.0.0.1:$GOOD/v1/keys/nothex" -o "$T/body" -w '%{http_code}' >"$T/code" || true
[ "$(cat "$T/code")" = 400 ] && [ "$(cat "$T/body")" = '{"error":"refused"}' ] && ok || bad "malformed path: 400 refused"
grep -q "refused: malformed request: path '/v1/keys/nothex'" "$T/good.log" && ok || bad "log: malformed request"
! grep -q "$(od -An -tx1 "$T/k" | tr -d ' \n' | cut -c1-16)" "$T/good.log" && ok || bad "the log holds no key bytes"

# --- evidence signed under another quoting root (forged from the broker's view) ---
expect_error "serve: evidence from another root" "the key server refused the key" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu2" --threads 1 \
  --key-server "127.0.0.1:$GOOD" --key-server-ca "$T/good.pem"
tail -1 "$T/good.log" | grep -q "refused: evidence refused: .*chain" && ok || { bad "log: another root"; tail -1 "$T/good.log" >&2; }

# --- the key file is absent ---
broker nokey "$T/pol.json" "$T/nokeys"
expect_error "serve: no key file" "the key server refused the key" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:$BPORT" --key-server-ca "$T/nokey.pem"
grep -q "refused: no key for this model .*$ID.key: No such file" "$T/nokey.log" && ok || bad "log: no key file"

# --- the policy's models bind the id to another name ---
broker names "$T/names.json" "$T/keys"
expect_error "serve: policy names the model differently" "the key server refused the key" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:$BPORT" --key-server-ca "$T/names.pem"
grep -q "refused: the policy's \"models\" does not allow model $ID under the name 'fmnist'" "$T/names.log" && ok || bad "log: models name"

# --- the pinned certificate is not the broker's: nothing is asked ---
expect_error "serve: broker not the pinned one" "not the pinned one" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:$GOOD" --key-server-ca "$T/fc.pem"
! tail -1 "$T/good.log" | grep -q "model $ID" && ok || bad "no request reached the broker through an unpinned channel"
# --- no broker at all; a plain pack with --key-server ---
expect_error "serve: no broker" "cannot connect to the key server" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:1" --key-server-ca "$T/good.pem"
expect_error "serve: --key-server with a plain pack" "no model is an encrypted pack" \
  timeout 60 "$OCC" serve --model "fmnist=$T/p.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --key-server "127.0.0.1:$GOOD" --key-server-ca "$T/good.pem"
expect_error "serve: encrypted pack without a key" "key" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1

# --- sealing: keys received once are sealed to this enclave; a restart needs no broker ---
broker sealb "$T/pol.json" "$T/keys"
SEALB=$BPORT
SEALB_PID=${PIDS[-1]}
mkdir -m 700 "$T/emus"
cp "$T/emu/"* "$T/emus/"
serve s3 "$SEALB" "$T/sealb.pem" "$T/emus" --seal-keys
SPORT=$(port_of "$T/s3.out")
[ -n "$SPORT" ] && ok || { bad "serve --seal-keys with the broker"; cat "$T/s3.err" >&2; }
kill "$SPID"; wait "$SPID" 2>/dev/null || true
[ "$(stat -c %s "$T/emus/sealed/$ID.sealed")" -eq 60 ] && [ "$(stat -c %a "$T/emus/sealed/$ID.sealed")" = 600 ] && ok ||
  bad "a 60-byte sealed key, mode 0600"
$PY - "$T/k" "$T/emus/sealed/$ID.sealed" <<'PY' && ok || bad "the sealed blob holds the key in the clear"
import sys
k, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert all(k[i:i + 8] not in b for i in range(25))
PY
kill "$SEALB_PID"; wait "$SEALB_PID" 2>/dev/null || true # the broker is gone
"$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emus" --threads 1 \
  --seal-keys >"$T/s4.out" 2>"$T/s4.err" &
SPID=$!
PIDS+=($SPID)
SPORT=$(port_of "$T/s4.out")
[ -n "$SPORT" ] && ok || { bad "restart from the sealed key without a broker"; cat "$T/s4.err" >&2; }
"$OCC" infer "https://127.0.0.1:$SPORT" --model fmnist --tensor "$T/x.bin" --output "$T/got2.bin" \
  --policy "$T/pol.json" --root "$T/emu/root.pem" >/dev/null 2>&1 && cmp -s "$T/got2.bin" "$T/want.bin" && ok ||
  bad "the unsealed key: same answer as the plain pack"
kill "$SPID"; wait "$SPID" 2>/dev/null || true
san_clean "$T/s4.err" && ok || { bad "sanitizer report"; cat "$T/s4.err" >&2; }
# another enclave (another MRENCLAVE: the binary plus one byte) cannot open it
cp "$OCC" "$T/occ2" && printf '\0' >>"$T/occ2"
expect_error "sealed key: another enclave" "no key sealed to this enclave and no --key-server" \
  timeout 60 "$T/occ2" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emus" \
  --threads 1 --seal-keys
# a changed byte: not used
$PY - "$T/emus/sealed/$ID.sealed" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[20] ^= 1; open(sys.argv[1], "wb").write(b)
PY
expect_error "sealed key: a flipped byte" "no key sealed to this enclave and no --key-server" \
  timeout 60 "$OCC" serve --model "fmnist=$T/e.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emus" \
  --threads 1 --seal-keys

# --- the broker survives garbage and half-open clients, then still serves ---
$PY - "$GOOD" <<'PY' && ok || bad "garbage clients"
import socket, sys
port = int(sys.argv[1])
for payload in [b"", b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)) * 64, b"\x16\x03\x01\x00\x05hello"]:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(payload)
    s.close()
half = socket.create_connection(("127.0.0.1", port))  # left open: the broker must not wait for it
PY
serve s2 "$GOOD" "$T/good.pem" "$T/emu"
[ -n "$(port_of "$T/s2.out")" ] && ok || { bad "the broker serves after garbage"; cat "$T/s2.err" >&2; }
kill "$SPID"; wait "$SPID" 2>/dev/null || true
for b in good other nokey names; do san_clean "$T/$b.log" && ok || { bad "sanitizer report in broker $b"; cat "$T/$b.log" >&2; }; done
finish
