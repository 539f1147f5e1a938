#!/usr/bin/env bash
# make scale-demo: one key broker, 3 `occ serve` replicas of an encrypted
# pack of the bundled model (each fetches its key from the broker inside its
# emulated enclave), HAProxy in TCP passthrough (TLS still ends inside each
# enclave) round-robin on loopback, and attested load: WORKERS client loops,
# each request one `occ infer` (a fresh attested connection: the client
# checks the replica's quote, MRENCLAVE and model id before sending). One
# replica is killed (SIGKILL) during the load.
#
# Counting (docs/keys.md, "Replicas"): a request is *answered* when its
# answer arrived and equals, bit for bit, what `occ run` gives on the plain
# pack (to 1e-5 relative: the server batches concurrent requests); a request without an answer (connection reset, closed, timed out) is
# sent again on a fresh attested connection (up to 5 attempts), and
# *retried* counts such requests; *lost* counts requests never answered, or
# answered wrongly. The last line is
#   scale-demo: N answered, L lost, R retried
# and the script fails when L > 0.
set -euo pipefail
OCC=$(realpath "${1:-build/release/occ}")
LOAD=$(dirname "$OCC")/occ-load
SECONDS_LOAD=${SCALE_SECONDS:-20}
WORKERS=${SCALE_WORKERS:-6}
KILL_AFTER=${SCALE_KILL_AFTER:-6}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
command -v haproxy >/dev/null || { echo "scale-demo: haproxy is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }
W=$(mktemp -d /tmp/occ-scale.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

port_of() { # FILE: waits for "listening ... (port N)" and prints N
  for _ in $(seq 1 200); do
    if grep -q "(port [0-9]*)" "$1" 2>/dev/null; then grep -o "(port [0-9]*)" "$1" | tail -1 | grep -o "[0-9]*"; return; fi
    sleep 0.05
  done
  echo "scale-demo: no port in $1" >&2; cat "$1" "${1%.out}.err" >&2 || true; exit 1
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- the model owner: an encrypted pack, its key, the broker ---
# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$W/plain.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null
# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$W/fmnist.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet --encrypt-key "$W/owner.key" >/dev/null 2>&1
ID=$("$OCC" inspect "$W/fmnist.occ" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
mkdir -m 700 "$W/keys" "$W/emu"
cp "$W/owner.key" "$W/keys/$ID.key"
"$OCC" attest --emu-dir "$W/emu" --make-quote "$W/q.bin" >/dev/null 2>&1 # makes emu/root.pem
MRENCLAVE=$(sha256sum "$OCC" | cut -d' ' -f1)
printf '{"mrenclave": ["%s"], "models": {"fmnist": "%s"}, "allow_emulated": true}\n' "$MRENCLAVE" "$ID" >"$W/policy.json"
"$OCC" keys serve --listen 127.0.0.1:0 --key-dir "$W/keys" --policy "$W/policy.json" --root "$W/emu/root.pem" \
  --cert-out "$W/broker.pem" >"$W/broker.out" 2>"$W/broker.err" &
pids+=($!)
BPORT=$(port_of "$W/broker.out")
echo "scale-demo: broker on 127.0.0.1:$BPORT (policy pins MRENCLAVE ${MRENCLAVE:0:16}..., model fmnist ${ID:0:16}...)"

# --- 3 replicas, each fetching the key inside its enclave ---
rpids=() rports=()
for r in 1 2 3; do
  "$OCC" serve --model "fmnist=$W/fmnist.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$W/emu" \
    --threads 1 --key-server "127.0.0.1:$BPORT" --key-server-ca "$W/broker.pem" >"$W/r$r.out" 2>"$W/r$r.err" &
  rpids+=($!)
  pids+=($!)
done
for r in 1 2 3; do rports+=("$(port_of "$W/r$r.out")"); done
echo "scale-demo: replicas on ports ${rports[*]}; broker: $(grep -c released "$W/broker.err") keys released"

# --- HAProxy: TCP passthrough, round robin ---
HPORT=$(free_port)
cat >"$W/haproxy.cfg" <<CFG
global
  maxconn 1024
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
frontend occ
  bind 127.0.0.1:$HPORT
  default_backend replicas
backend replicas
  balance roundrobin
  server r1 127.0.0.1:${rports[0]} check inter 300ms fall 1 rise 2
  server r2 127.0.0.1:${rports[1]} check inter 300ms fall 1 rise 2
  server r3 127.0.0.1:${rports[2]} check inter 300ms fall 1 rise 2
CFG
haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$HPORT") 2>/dev/null && break; sleep 0.05; done
echo "scale-demo: haproxy (mode tcp, roundrobin) on 127.0.0.1:$HPORT"

# --- inputs and the plain pack's answers ---
$PY - "$W" 8 <<'PY'
import sys, numpy as np
w, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(7)
rng.standard_normal((n, 1, 28, 28)).astype(np.float32).tofile(f"{w}/inputs.bin")
PY
{
  : >"$W/want.bin"
  $PY - "$W" 8 <<'PY'
import sys, numpy as np
w, n = sys.argv[1], int(sys.argv[2])
x = np.fromfile(f"{w}/inputs.bin", dtype=np.float32).reshape(n, 1, 1, 28, 28)
for i in range(n):
    x[i].tofile(f"{w}/x{i}.bin")
PY
  for i in $(seq 0 7); do
    "$OCC" run "$W/plain.occ" --input "$W/x$i.bin" --output "$W/y$i.bin" --threads 1 >/dev/null
    cat "$W/y$i.bin" >>"$W/want.bin"
  done
}

# --- attested load, one replica killed ---
t0=$(date +%s.%N)
"$LOAD" "https://127.0.0.1:$HPORT" fmnist "$W/policy.json" "$W/emu/root.pem" "$W/inputs.bin" "$W/want.bin" \
  "$WORKERS" "$SECONDS_LOAD" >"$W/load.txt" 2>"$W/load.err" &
lpid=$!
sleep "$KILL_AFTER"
kill -9 "${rpids[1]}"
wait "${rpids[1]}" 2>/dev/null || true
echo "scale-demo: killed replica 2 (port ${rports[1]}) with SIGKILL after ${KILL_AFTER} s of load"
wait "$lpid"
t1=$(date +%s.%N)
read -r _ N _ L _ R _ WRONG <"$W/load.txt"
L=$((L + WRONG))
secs=$($PY -c "print(f'{$t1 - $t0:.1f}')")
for r in 1 3; do
  kill "${rpids[$((r - 1))]}" 2>/dev/null || true
done
sleep 0.5
served=()
for r in 1 3; do served+=("$(grep -o 'occ_inferences_total{[^}]*} [0-9]*' "$W/r$r.err" | grep -o '[0-9]*$' || echo '?')"); done
echo "scale-demo: $WORKERS attested connections for $secs s (each renewed every 25 requests) through haproxy;" \
     "survivors answered ${served[0]} and ${served[1]} inferences; wrong answers: $WRONG"
echo "scale-demo: $N answered, $L lost, $R retried"
[ "$L" -eq 0 ]
