#!/usr/bin/env bash
# Accuracy through the server: all 10,000 Fashion-MNIST test images classified
# by `occ serve` (emulated enclave) over RA-TLS must give exactly the accuracy
# `occ run` gives on the same tensors (and the same predictions).
#
#   scripts/check-fmnist-server.sh [OCC_BIN]
#
# Steps: pack models/fmnist.onnx; extract the test set with
# tools/fmnist_extract.py (raw float32 tensors, preprocessed as the pack says,
# and labels); predictions of `occ run` (tools/fmnist_check.py predict-occ);
# start `occ serve` on a free loopback port; `occ infer --tensors` sends every
# image as its own KServe binary request over CONNS attested connections
# (policy: the printed MRENCLAVE + the model id; root: the emulated root);
# argmax; score both against the labels. Exit 1 unless the accuracies are
# equal and every prediction agrees.
# Environment: COUNT (first N images only), CONNS (default 4), WORK_DIR
# (default build/fmnist-server).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
CONNS=${CONNS:-4}
WORK_DIR=${WORK_DIR:-$ROOT/build/fmnist-server}
PY=/usr/bin/python3
die() { echo "check-fmnist-server: $*" >&2; exit 2; }
[[ -x $OCC_BIN ]] || die "occ binary not found: $OCC_BIN (run make build)"
mkdir -p "$WORK_DIR"
[[ -d $WORK_DIR/emu ]] || mkdir -m 700 "$WORK_DIR/emu"
SERVER_PID=
trap '[[ -n $SERVER_PID ]] && kill $SERVER_PID 2>/dev/null; wait 2>/dev/null || true' EXIT

read -r -a pack_args <"$ROOT/models/fmnist.packargs"
"$OCC_BIN" pack "$ROOT/models/fmnist.onnx" -o "$WORK_DIR/fmnist.occ" --labels "$ROOT/models/fmnist.labels" \
  "${pack_args[@]}" --quiet >/dev/null
model_id=$("$OCC_BIN" inspect "$WORK_DIR/fmnist.occ" --json | "$PY" "$ROOT/tools/jsonfield.py" - model_id)
count_args=()
[[ -n ${COUNT:-} ]] && count_args=(--count "$COUNT")
echo "check-fmnist-server: extracting test images" >&2
"$PY" "$ROOT/tools/fmnist_extract.py" "${count_args[@]}" --raw "$WORK_DIR/test.bin" --labels "$WORK_DIR/test.labels"

echo "check-fmnist-server: occ run" >&2
"$PY" "$ROOT/tools/fmnist_check.py" predict-occ --occ "$OCC_BIN" --pack "$WORK_DIR/fmnist.occ" \
  --raw "$WORK_DIR/test.bin" --out "$WORK_DIR/run.pred" --jobs "$(nproc)"

echo "check-fmnist-server: occ serve (emulated enclave)" >&2
"$OCC_BIN" serve --model "fmnist=$WORK_DIR/fmnist.occ" --listen 127.0.0.1:0 --enclave emu \
  --emu-dir "$WORK_DIR/emu" >"$WORK_DIR/serve.log" 2>"$WORK_DIR/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$WORK_DIR/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$WORK_DIR/serve.log" || { cat "$WORK_DIR/serve.err" >&2; die "the server did not start"; }
port=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$WORK_DIR/serve.log")
mrenclave=$(awk '/^mrenclave /{print $2}' "$WORK_DIR/serve.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$mrenclave" "$model_id" >"$WORK_DIR/policy.json"

echo "check-fmnist-server: occ infer --tensors over $CONNS RA-TLS connection(s)" >&2
"$OCC_BIN" infer "https://127.0.0.1:$port" --model fmnist --tensors "$WORK_DIR/test.bin" --connections "$CONNS" \
  --output "$WORK_DIR/server.out" --policy "$WORK_DIR/policy.json" --root "$WORK_DIR/emu/root.pem" >&2
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
"$PY" "$ROOT/tools/fmnist_check.py" argmax --in "$WORK_DIR/server.out" --classes 10 --out "$WORK_DIR/server.pred"

"$PY" "$ROOT/tools/fmnist_check.py" score --labels "$WORK_DIR/test.labels" --pred "$WORK_DIR/run.pred" \
  >"$WORK_DIR/run.json" || true
"$PY" "$ROOT/tools/fmnist_check.py" score --labels "$WORK_DIR/test.labels" --pred "$WORK_DIR/server.pred" \
  --ref "$WORK_DIR/run.pred" >"$WORK_DIR/server.json" || true
"$PY" - "$WORK_DIR/run.json" "$WORK_DIR/server.json" "$(wc -l <"$WORK_DIR/test.labels")" <<'PY'
import json, sys
run, srv = (json.load(open(p)) for p in sys.argv[1:3])
n = int(sys.argv[3])
print(json.dumps({"images": n, "occ_run": run, "server": srv}, indent=1))
ok = run["correct"] == srv["correct"] and srv.get("agree") == n
print("check-fmnist-server: occ run %d correct, server %d correct (agreement %s): %s"
      % (run["correct"], srv["correct"], srv.get("agree"), "OK" if ok else "FAILED"), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
