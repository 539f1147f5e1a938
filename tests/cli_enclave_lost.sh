#!/usr/bin/env bash
# A failed reload of an evicted EPC page loses the enclave (issue 15, item 3).
# `occ serve --enclave emu --epc 256K` pages the bundled model's engine on
# every request; OCC_FAULT=epc:flip:N has the host flip one bit of the sealed
# copy of a page before the Nth reload (after start-up). Required: no answer
# computed after the failure leaves the enclave (every answer a client gets
# is exact), every later request is refused, the server says why and exits 3,
# without a sanitizer report.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
SERVER_PID=
on_exit() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

pack_fmnist
mkdir -m 700 "$T/emu"
fmnist_input 3

# start-up takes ~540 reloads at this cap; the 1500th falls on a request
OCC_FAULT=epc:flip:1500 "$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" \
  --epc 256K --threads 1 --metrics 127.0.0.1:0 >"$T/s.log" 2>"$T/s.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/s.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$T/s.log" || { cat "$T/s.log" "$T/s.err" >&2; echo "server did not start" >&2; exit 1; }
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/s.log")
MRENCLAVE=$(awk '/^mrenclave /{print $2}' "$T/s.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$MODEL_ID" >"$T/policy.json"

exact=0 refused=0 wrong=0
for k in $(seq 1 12); do
  rm -f "$T/y.bin"
  if timeout 20 "$OCC" infer "https://127.0.0.1:$PORT" --model fmnist --tensor "$T/x.bin" --output "$T/y.bin" \
      --policy "$T/policy.json" --root "$T/emu/root.pem" >/dev/null 2>"$T/infer$k.err"; then
    if cmp -s "$T/y.bin" "$T/ref.bin"; then exact=$((exact + 1)); else wrong=$((wrong + 1)); fi
  else
    refused=$((refused + 1))
  fi
done
echo "12 requests: $exact exact, $refused refused, $wrong wrong"
[ "$wrong" -eq 0 ] && ok || bad "$wrong answers computed after the enclave was lost left it"
[ "$exact" -ge 1 ] && ok || bad "no request was served before the fault (the fault fell too early?)"
[ "$refused" -ge 1 ] && ok || bad "no request was refused after the fault"
rc=0
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SERVER_PID" 2>/dev/null && { bad "the server still runs after losing the enclave"; kill -TERM "$SERVER_PID"; }
wait "$SERVER_PID" || rc=$?
SERVER_PID=
[ "$rc" -eq 3 ] && ok || { bad "serve exit status $rc (want 3)"; cat "$T/s.err" >&2; }
grep -q 'the enclave is lost' "$T/s.err" && grep -q 'failed authentication on reload' "$T/s.err" && ok ||
  { bad "no clear message"; cat "$T/s.err" >&2; }
san_clean "$T/s.err" && ok || { bad "sanitizer report"; cat "$T/s.err" >&2; }
finish
