#!/usr/bin/env bash
# Tampering while a server runs (docs/reliability.md). A server with the good model keeps serving
# exact answers throughout, and:
#  - its RA-TLS certificate (saved by `occ attest --save-cert`, DER) with one bit flipped at each of
#    120 random positions: `occ attest --cert` refuses every one (and the unflipped DER is accepted:
#    regression for DER certificates, whose embedded PEM PCK chain PEM_read used to pick up);
#  - the pack with one bit flipped in the manifest (10 positions) or inside a weight chunk (3 in
#    every chunk): a second server over that pack either refuses to start (the chunk's SHA-256) or
#    runs under another model id, which the client's policy refuses before sending anything.
# (Bit flips of the sealed weights in the running server's memory: tests/cli_fault.sh, stash:flip.)
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
SP= SP2=
on_exit() { for p in $SP $SP2; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/m.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null
"$PY" -c "
import struct, random
r = random.Random(3)
open('$T/x.bin', 'wb').write(struct.pack('784f', *[r.uniform(-1, 2) for _ in range(784)]))"
"$OCC" run "$T/m.occ" --input "$T/x.bin" --output "$T/ref.bin" >/dev/null
mkdir -m 700 "$T/emu"

serve() { # serve LOG PACK: background server, its pid in $PID
  : >"$1" # truncated here: the child's own redirection may come after our first look
  "$OCC" serve --model fmnist="$2" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
    >"$1" 2>"$1.err" &
  PID=$!
}
wait_listen() { # wait_listen LOG PID: 0 listening, 1 exited
  for _ in $(seq 600); do
    grep -q '^listening' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
port() { sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$1"; }

serve "$T/s1.log" "$T/m.occ"; SP=$PID
wait_listen "$T/s1.log" "$SP" || { cat "$T/s1.log.err" >&2; exit 1; }
URL=https://127.0.0.1:$(port "$T/s1.log")
MR=$(awk '/^mrenclave /{print $2}' "$T/s1.log")
ID=$(awk '/^model fmnist /{print $3}' "$T/s1.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MR" "$ID" >"$T/policy.json"
A=(--policy "$T/policy.json" --root "$T/emu/root.pem")
alive() {
  "$OCC" infer "$URL" --model fmnist --tensor "$T/x.bin" --output "$T/y.bin" "${A[@]}" >/dev/null 2>&1 &&
    cmp -s "$T/y.bin" "$T/ref.bin"
}

# --- the certificate ---
"$OCC" attest "$URL" "${A[@]}" --save-cert "$T/cert.pem" >/dev/null 2>&1 && ok || bad "attest --save-cert"
"$PY" -c "
import base64
t = open('$T/cert.pem').read()
open('$T/cert.der', 'wb').write(base64.b64decode(''.join(l for l in t.splitlines() if not l.startswith('-----'))))"
"$OCC" attest --cert "$T/cert.der" "${A[@]}" >"$T/out" 2>&1 && ok || { bad "DER certificate refused"; cat "$T/out" >&2; }
"$OCC" attest --cert "$T/cert.pem" "${A[@]}" >/dev/null 2>&1 && ok || bad "PEM certificate refused"
"$PY" - "$T/cert.der" "$T/flips" <<'PY'
import random, sys
d = open(sys.argv[1], "rb").read()
r = random.Random(7)
for i in range(120):
    p = r.randrange(len(d)); x = bytearray(d); x[p] ^= 1 << r.randrange(8)
    open(f"{sys.argv[2]}.{i}.der", "wb").write(x)
PY
accepted=0
for i in $(seq 0 119); do
  rc=0; "$OCC" attest --cert "$T/flips.$i.der" "${A[@]}" >/dev/null 2>&1 || rc=$?
  [ $rc -ne 0 ] || { accepted=$((accepted + 1)); echo "certificate flip $i accepted" >&2; }
done
[ $accepted -eq 0 ] && ok || bad "$accepted of 120 flipped certificates accepted"
alive && ok || bad "serving after the certificate flips"

# --- the pack: manifest and every chunk ---
"$PY" - "$T/m.occ" "$T/pack" <<'PY'
import random, struct, sys
d = open(sys.argv[1], "rb").read()
moff, msize, doff, dsize = struct.unpack_from("<QQQQ", d, 16)
man = d[moff:moff + msize]
# the chunk table ends the manifest: u32 n_chunks, then n * (offset u64, size u64, sha256)
for n in range(1, 4096):
    at = msize - 48 * n - 4
    if at < 0:
        raise SystemExit("no chunk table")
    if struct.unpack_from("<I", man, at)[0] == n:
        break
chunks = [struct.unpack_from("<QQ", man, at + 4 + 48 * i) for i in range(n)]
r = random.Random(11)
pos = [moff + r.randrange(msize) for _ in range(10)] + [doff + o + r.randrange(s) for o, s in chunks for _ in range(3)]
for i, p in enumerate(pos):
    x = bytearray(d); x[p] ^= 1 << r.randrange(8)
    open(f"{sys.argv[2]}.{i}.occ", "wb").write(x)
PY
NP=$(ls "$T"/pack.*.occ | wc -l)
detected=0
for i in $(seq 0 $((NP - 1))); do
  serve "$T/s2.log" "$T/pack.$i.occ"; SP2=$PID
  if wait_listen "$T/s2.log" "$SP2"; then
    # it started: under another model id, which the policy refuses before any request
    rc=0; "$OCC" infer "https://127.0.0.1:$(port "$T/s2.log")" --model fmnist --tensor "$T/x.bin" "${A[@]}" \
      >"$T/out" 2>&1 || rc=$?
    [ $rc -eq 1 ] && grep -q 'refused by the policy' "$T/out" && detected=$((detected + 1)) ||
      { echo "pack flip $i: served and accepted (rc $rc)" >&2; cat "$T/out" >&2; }
    kill "$SP2"; wait "$SP2" 2>/dev/null || true
  else
    rc=0; wait "$SP2" || rc=$?
    [ $rc -ne 0 ] && grep -qE 'failed verification|format|invalid|manifest|error' "$T/s2.log.err" &&
      detected=$((detected + 1)) || { echo "pack flip $i: exit $rc" >&2; cat "$T/s2.log.err" >&2; }
  fi
  SP2=
  alive || bad "the good server after pack flip $i"
done
[ "$detected" -eq "$NP" ] && ok || bad "pack flips: $detected of $NP detected"
echo "certificate: 120/120 flips refused ($accepted accepted); pack: $detected/$NP flips detected"

kill "$SP"; rc=0; wait "$SP" || rc=$?; SP=
[ $rc -eq 0 ] && ! grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:' "$T/s1.log.err" && ok || bad "server exit $rc"
finish
