#!/usr/bin/env bash
# Injected faults against the real server (`occ serve --enclave emu`, OCC_FAULT, include/occ/fault.h).
# Each fault: the right error for the affected request (or start) only, the next request exact, and
# the server exits clean (status 0; under ASan: no LeakSanitizer or sanitizer report).
#  - start-up: the Nth enclave allocation fails, a weight read fails or comes back short:
#    `occ serve` refuses to start, saying why, leak-free;
#  - the 3rd request's enclave buffer cannot be allocated: that request gets 503, the others exact;
#  - slow workers + jittered (reordered) crossings, 4 connections: every answer exact;
#  - the host flips one bit of a streamed model's sealed weights for every 2nd inference: each of
#    those requests fails with an integrity error (500), the others and the other model are exact,
#    the integrity-failure metric counts every flip;
#  - kill -9 mid-inference, restart: the same MRENCLAVE and model id, the emulation folder
#    untouched, serves exact answers at once (nothing to repair).
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
SP=
on_exit() { [ -n "$SP" ] && kill -9 "$SP" 2>/dev/null && wait "$SP" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/m.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null
# a model that streams under a 4 MiB budget (as tests/cli_bench.sh): 3.4 MiB of weights
sed -n '/^import sys, numpy/,/^onnx.save/p' "$SRC/tests/cli_bench.sh" >"$T/gen.py"
"$PY" "$T/gen.py" "$T/small.onnx"
"$OCC" pack "$T/small.onnx" -o "$T/small.occ" --chunk-size 128K --quiet >/dev/null
"$PY" - "$T" <<'PY'
import struct, sys, random
for k in range(16):
    r = random.Random(k)
    open(f"{sys.argv[1]}/x{k}.bin", "wb").write(struct.pack("784f", *[r.uniform(-1, 2) for _ in range(784)]))
r = random.Random(99)
open(f"{sys.argv[1]}/xs.bin", "wb").write(struct.pack("65536f", *[r.gauss(0, 1) for _ in range(65536)]))
PY
for k in $(seq 0 15); do "$OCC" run "$T/m.occ" --input "$T/x$k.bin" --output "$T/ref$k.bin" >/dev/null; done
cat $(for k in $(seq 0 15); do echo "$T/x$k.bin"; done) >"$T/xall.bin"
cat $(for k in $(seq 0 15); do echo "$T/ref$k.bin"; done) >"$T/refall.bin"
"$OCC" run "$T/small.occ" --input "$T/xs.bin" --output "$T/refs.bin" --mode occlumency --budget 4M \
  --threads 1 >/dev/null
mkdir -m 700 "$T/emu"

# start [serve options...]: the server in the background, env OCC_FAULT as given; waits for it
start() {
  : >"$T/serve.log" # truncated here: the child's own redirection may come after our first look
  "$OCC" serve --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 --metrics 127.0.0.1:0 "$@" \
    >"$T/serve.log" 2>"$T/serve.err" &
  SP=$!
  for _ in $(seq 600); do
    grep -q '^listening' "$T/serve.log" 2>/dev/null && break
    kill -0 "$SP" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^listening' "$T/serve.log"; then
    local rc=0
    kill -0 "$SP" 2>/dev/null && kill -9 "$SP"
    wait "$SP" || rc=$?
    SP=
    cat "$T/serve.log" "$T/serve.err" >&2
    echo "server did not start (OCC_FAULT=${OCC_FAULT:-}, $*): exit $rc" >&2
    exit 1
  fi
  PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
  MPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
  URL=https://127.0.0.1:$PORT
}
# stop NAME: SIGTERM, the server must exit 0 and sanitizer-clean
stop() {
  local rc=0
  kill "$SP" && wait "$SP" || rc=$?
  SP=
  [ $rc -eq 0 ] && san_clean "$T/serve.err" && ok || { bad "$1: server exit $rc"; grep -A20 -E 'Sanitizer|runtime error' "$T/serve.err" | head -40 >&2; }
}
policy() { # policy.json from the running server's banner, for every model it serves
  local mr ids
  mr=$(awk '/^mrenclave /{print $2}' "$T/serve.log")
  ids=$(awk '/^report_data_model_binding /{print $2}' "$T/serve.log")
  printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$mr" "$ids" >"$T/policy.json"
}
infer() { # infer MODEL INPUT OUTPUT
  "$OCC" infer "$URL" --model "$1" --tensor "$2" --output "$3" --policy "$T/policy.json" --root "$T/emu/root.pem" \
    2>"$T/infer.err" >/dev/null
}
metric() { # summed over labels unless the labels are given
  curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '{n = $1; if (index(k, "{") == 0) sub(/\{.*/, "", n)} n == k {s += $2} END {print s + 0}'
}

# --- start-up faults: refused with the reason, leak-free ---
for f in alloc:1 alloc:4 alloc:fail:2+ read:error:1 read:error:3 read:short:2; do
  rc=0
  OCC_FAULT=$f timeout 60 "$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu \
    --emu-dir "$T/emu" --threads 1 >"$T/f.log" 2>"$T/f.err" || rc=$?
  case $f in alloc*) want='out of memory|allocation' ;; read:error*) want='injected read error' ;; *) want='failed verification' ;; esac
  [ $rc -eq 1 ] && grep -qE "$want" "$T/f.err" && ! grep -q '^listening' "$T/f.log" && san_clean "$T/f.err" &&
    ok || { bad "start-up fault $f: rc $rc"; cat "$T/f.err" >&2; }
done

# --- the 3rd request's enclave buffer fails: 503 for it only ---
OCC_FAULT=request:alloc:3 start --model fmnist="$T/m.occ"
policy
for k in 1 2 3 4 5; do
  rc=0; infer fmnist "$T/x$k.bin" "$T/y$k.bin" || rc=$?
  if [ "$k" = 3 ]; then
    [ $rc -eq 1 ] && grep -q '503' "$T/infer.err" && grep -q 'out of memory' "$T/infer.err" && ok ||
      { bad "request:alloc:3: request 3 rc $rc"; cat "$T/infer.err" >&2; }
  else
    [ $rc -eq 0 ] && cmp -s "$T/y$k.bin" "$T/ref$k.bin" && ok || { bad "request:alloc:3: request $k"; cat "$T/infer.err" >&2; }
  fi
done
[ "$(metric 'occ_http_responses_total{code="503"}')" = 1 ] && ok || bad "one 503 in the metrics"
stop "request:alloc"

# --- slow workers and jittered crossings, 4 connections: all exact ---
OCC_FAULT=worker:slow_ms:40,crossing:jitter_ms:3 start --model fmnist="$T/m.occ" --workers 2
policy
"$OCC" infer "$URL" --model fmnist --tensors "$T/xall.bin" --connections 4 --output "$T/yall.bin" \
  --policy "$T/policy.json" --root "$T/emu/root.pem" >"$T/bulk.out" 2>"$T/infer.err" &&
  cmp -s "$T/yall.bin" "$T/refall.bin" && ok || { bad "slow worker + jitter: answers"; cat "$T/infer.err" >&2; }
infer fmnist "$T/x0.bin" "$T/y0.bin" && cmp -s "$T/y0.bin" "$T/ref0.bin" && ok || bad "slow worker: next request"
stop "slow worker + jitter"

# --- the host flips a bit of the streamed model's sealed weights for every 2nd inference ---
FLIPS=20
OCC_FAULT=stash:flip:/2 start --model fmnist="$T/m.occ" --model small="$T/small.occ" --mode occlumency \
  --budget 4M --max-batch 1
policy
detected=0 clean=0 good=0
for i in $(seq 1 $((2 * FLIPS))); do
  rc=0; infer small "$T/xs.bin" "$T/ys.bin" || rc=$?
  if [ $((i % 2)) -eq 0 ]; then
    [ $rc -eq 1 ] && grep -q '500' "$T/infer.err" && grep -qE 'failed (its )?(verification|integrity|authentication)|integrity' "$T/infer.err" &&
      detected=$((detected + 1)) || { echo "flip $((i / 2)): rc $rc" >&2; cat "$T/infer.err" >&2; }
  else
    [ $rc -eq 0 ] && cmp -s "$T/ys.bin" "$T/refs.bin" && clean=$((clean + 1)) || { echo "clean run $i: rc $rc" >&2; cat "$T/infer.err" >&2; }
  fi
  if [ $((i % 4)) -eq 0 ]; then
    k=$((i / 4 % 16))
    infer fmnist "$T/x$k.bin" "$T/y.bin" && cmp -s "$T/y.bin" "$T/ref$k.bin" && good=$((good + 1)) || true
  fi
done
[ $detected -eq $FLIPS ] && [ $clean -eq $FLIPS ] && [ $good -eq $((FLIPS / 2)) ] && ok ||
  bad "stash flips: $detected/$FLIPS detected, $clean/$FLIPS clean exact, $good/$((FLIPS / 2)) other-model exact"
[ "$(metric occ_engine_integrity_failures_total)" = "$FLIPS" ] && ok ||
  bad "integrity failures metric $(metric occ_engine_integrity_failures_total) != $FLIPS"
echo "stash flips: $detected/$FLIPS detected, $clean/$FLIPS runs between exact, other model $good/$((FLIPS / 2)) exact"
stop "stash flips"

# --- kill -9 mid-inference, restart ---
(cd "$T/emu" && find . -type f -exec sha256sum {} + | sort) >"$T/emu.before"
OCC_FAULT=worker:slow_ms:3000 start --model fmnist="$T/m.occ"
policy
MR1=$(awk '/^mrenclave /{print $2}' "$T/serve.log"); ID1=$(awk '/^model fmnist /{print $3}' "$T/serve.log")
"$OCC" infer "$URL" --model fmnist --tensor "$T/x1.bin" --policy "$T/policy.json" --root "$T/emu/root.pem" \
  >/dev/null 2>"$T/victim.err" &
VP=$!
for _ in $(seq 100); do [ "$(metric occ_tls_handshakes_total)" -ge 1 ] && break; sleep 0.05; done
sleep 0.5 # the request is in the (slow) worker now
kill -0 "$VP" 2>/dev/null && ok || bad "the request finished before the kill"
kill -9 "$SP"; wait "$SP" 2>/dev/null || true; SP=
for _ in $(seq 200); do kill -0 "$VP" 2>/dev/null || break; sleep 0.1; done
kill -0 "$VP" 2>/dev/null && { bad "the client of a killed server hangs"; kill "$VP"; }
rc=0; wait "$VP" 2>/dev/null || rc=$?
[ $rc -ne 0 ] && ok || bad "the client of a killed server reported success"
start --model fmnist="$T/m.occ"
MR2=$(awk '/^mrenclave /{print $2}' "$T/serve.log"); ID2=$(awk '/^model fmnist /{print $3}' "$T/serve.log")
[ "$MR1" = "$MR2" ] && [ "$ID1" = "$ID2" ] && ok || bad "restart: mrenclave/model id changed ($MR1/$ID1 -> $MR2/$ID2)"
(cd "$T/emu" && find . -type f -exec sha256sum {} + | sort) >"$T/emu.after"
cmp -s "$T/emu.before" "$T/emu.after" && ok || { bad "restart changed the emulation folder"; diff "$T/emu.before" "$T/emu.after" >&2 || true; }
# the same policy file as before the kill: nothing to re-configure
infer fmnist "$T/x1.bin" "$T/y1.bin" && cmp -s "$T/y1.bin" "$T/ref1.bin" && ok || { bad "after restart"; cat "$T/infer.err" >&2; }
stop "after restart"

finish
