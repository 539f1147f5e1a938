#!/usr/bin/env bash
# The demo (make demo): confidential inference end to end, in the emulated enclave.
#
#   scripts/demo.sh [OCC_BIN]
#
# 1. packs the bundled Fashion-MNIST model (models/fmnist.onnx) into build/demo/;
# 2. starts `occ serve` on 127.0.0.1 (a free port) in the emulated enclave, with
#    its emulated quoting root in build/demo/emu (made on first use);
# 3. writes the client's policy build/demo/policy.json from what the operator
#    publishes: the MRENCLAVE `occ serve` prints and the model id `occ inspect`
#    prints, bound to the name fmnist (a real deployment pins a reproducible
#    build's MRENCLAVE instead). Clients refuse a policy that does not pin the
#    enclave and the model, and emulated quotes unless it allows them;
# 4. `occ attest`: verifies the server's RA-TLS certificate against that policy;
# 5. `occ infer` on every bundled sample image: prediction next to the true label;
# 6. prints the enclave's counters (Prometheus metrics port) and stops the server.
# Exit 1 if a step fails; a wrong prediction is reported, not an error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
OUT_DIR=${OUT_DIR:-$ROOT/build/demo}
SAMPLES=$ROOT/models/samples
PY=/usr/bin/python3
[[ -x $OCC_BIN ]] || { echo "demo: occ binary not found: $OCC_BIN (run make build)" >&2; exit 2; }
mkdir -p "$OUT_DIR"
[[ -d $OUT_DIR/emu ]] || mkdir -m 700 "$OUT_DIR/emu"
pack=$OUT_DIR/fmnist.occ
SERVER_PID=
stop_server() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; }
trap stop_server EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "pack the model (host side, untrusted)"
read -r -a pack_args <"$ROOT/models/fmnist.packargs"
"$OCC_BIN" pack "$ROOT/models/fmnist.onnx" -o "$pack" --labels "$ROOT/models/fmnist.labels" "${pack_args[@]}" --quiet >/dev/null
model_id=$("$OCC_BIN" inspect "$pack" --json | "$PY" "$ROOT/tools/jsonfield.py" - model_id)
echo "$pack  model id $model_id"

step "start the server in the emulated enclave"
echo "\$ occ serve --model fmnist=$pack --listen 127.0.0.1:0 --enclave emu --emu-dir $OUT_DIR/emu --metrics 127.0.0.1:0"
"$OCC_BIN" serve --model "fmnist=$pack" --listen 127.0.0.1:0 --enclave emu --emu-dir "$OUT_DIR/emu" \
  --metrics 127.0.0.1:0 >"$OUT_DIR/serve.log" 2>"$OUT_DIR/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do
  grep -q '^listening' "$OUT_DIR/serve.log" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
grep -q '^listening' "$OUT_DIR/serve.log" || { cat "$OUT_DIR/serve.log" "$OUT_DIR/serve.err" >&2; echo "demo: the server did not start" >&2; exit 1; }
sed 's/^/  /' "$OUT_DIR/serve.log"
port=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$OUT_DIR/serve.log")
mport=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$OUT_DIR/serve.log")
mrenclave=$(awk '/^mrenclave /{print $2}' "$OUT_DIR/serve.log")
url=https://127.0.0.1:$port

step "the client's policy: this code (MRENCLAVE), this model under the name fmnist, not debug, emulation allowed"
printf '{\n  "comment": "demo policy, written by scripts/demo.sh",\n  "mrenclave": ["%s"],\n  "models": {"fmnist": "%s"},\n  "allow_debug": false,\n  "allow_emulated": true\n}\n' \
  "$mrenclave" "$model_id" >"$OUT_DIR/policy.json"
cat "$OUT_DIR/policy.json"
root=$OUT_DIR/emu/root.pem

step "attest the server (nothing is sent to a server the policy refuses)"
echo "\$ occ attest $url --policy $OUT_DIR/policy.json --root $root --save-cert $OUT_DIR/server-cert.pem"
"$OCC_BIN" attest "$url" --policy "$OUT_DIR/policy.json" --root "$root" --save-cert "$OUT_DIR/server-cert.pem" | sed 's/^/  /'

step "classify the sample images over the attested channel"
printf '  %-14s %-12s %-12s %7s  %s\n' image truth predicted p ""
n=0 right=0
while IFS=, read -r file _index label name; do
  [[ $file == file ]] && continue
  json=$("$OCC_BIN" infer "$url" --model fmnist --image "$SAMPLES/$file" --top 1 --json \
    --policy "$OUT_DIR/policy.json" --root "$root" 2>/dev/null)
  read -r idx plabel prob < <("$PY" -c 'import json,sys
t=json.loads(sys.stdin.read())["top"][0]
print(t["index"], (t.get("label") or "?").replace(" ", "_"), "%.3f" % t["probability"])' <<<"$json")
  plabel=${plabel//_/ }
  mark=ok
  if [[ $idx != "$label" ]]; then mark=WRONG; else right=$((right + 1)); fi
  n=$((n + 1))
  printf '  %-14s %-12s %-12s %7s  %s\n' "$file" "$name" "$plabel" "$prob" "$mark"
done <"$SAMPLES/labels.csv"
echo "  $right/$n correct"

step "a client whose policy pins another MRENCLAVE is refused before sending anything"
sed "s/$mrenclave/$(printf '0%.0s' $(seq 64))/" "$OUT_DIR/policy.json" >"$OUT_DIR/policy-wrong.json"
if "$OCC_BIN" infer "$url" --model fmnist --image "$SAMPLES/$(sed -n 2p "$SAMPLES/labels.csv" | cut -d, -f1)" \
  --policy "$OUT_DIR/policy-wrong.json" --root "$root" >/dev/null 2>"$OUT_DIR/refused.err"; then
  echo "demo: the wrong policy was accepted" >&2; exit 1
fi
sed 's/^/  /' "$OUT_DIR/refused.err"

step "a client without a policy pinning the enclave and the model does not even connect"
if "$OCC_BIN" attest "$url" --root "$root" >/dev/null 2>"$OUT_DIR/refused.err"; then
  echo "demo: a client without a policy trusted the server" >&2; exit 1
fi
sed 's/^/  /' "$OUT_DIR/refused.err"

step "enclave counters (metrics port; aggregates only, never request data)"
curl -s "http://127.0.0.1:$mport/metrics" | grep -v '^#' | grep -v '_bucket{' |
  grep -E 'occ_(inferences_total|inference_latency_seconds_(sum|count)|http_responses_total\{code="(200|4..)"\} [1-9]|tls_handshake|connections_total|batch_size_count|engine_(bytes_verified|chunks_loaded|integrity|peak)|enclave_(transitions|ecalls|ocalls)|epc_(faults|evictions|resident|cap|peak))' |
  sed 's/^/  /'

step "stop the server"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
echo "  stopped. Files: $OUT_DIR (policy.json, server-cert.pem, emu/root.pem)"
echo "  The emulated enclave is NOT hardware-backed: see docs/attestation.md and docs/server.md."
