#!/usr/bin/env bash
# End-to-end accuracy on the Fashion-MNIST test set (10,000 images).
#
#   scripts/check-fmnist.sh [OCC_BIN]
#
# Packs models/fmnist.onnx (preprocessing flags from models/fmnist.packargs),
# classifies every test image with occ and with ONNX Runtime, and requires
# occ's accuracy >= MIN_ACC (default 0.90) and agreement with ORT >=
# MIN_AGREE (default 0.999, i.e. 9,990/10,000). Exit 1 otherwise.
#
# occ is fed the preprocessed tensors (`occ run --input`, one process per
# image, or one `--batch-input` call if occ supports it). MODE=image feeds it
# the PNGs instead (`occ run --image`: exercises the pack's preprocessing).
# Environment: COUNT (first N test images only), MODE (tensor|image),
# JOBS (parallel occ processes, default nproc), WORK_DIR (default build/fmnist).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
MIN_ACC=${MIN_ACC:-0.90}
MIN_AGREE=${MIN_AGREE:-0.999}
MODE=${MODE:-tensor}
JOBS=${JOBS:-$(nproc)}
WORK_DIR=${WORK_DIR:-$ROOT/build/fmnist}
PY=/usr/bin/python3
MODEL=$ROOT/models/fmnist.onnx

die() { echo "check-fmnist: $*" >&2; exit 2; }
[[ -x $OCC_BIN ]] || die "occ binary not found: $OCC_BIN (run make build)"
[[ -d $ROOT/tools/ort/node_modules/onnxruntime-node ]] ||
  die "onnxruntime-node missing (bash scripts/install-deps.sh)"
[[ $MODE == tensor || $MODE == image ]] || die "MODE must be tensor or image"
mkdir -p "$WORK_DIR"

read -r -a pack_args <"$ROOT/models/fmnist.packargs"
"$OCC_BIN" pack "$MODEL" -o "$WORK_DIR/fmnist.occ" --labels "$ROOT/models/fmnist.labels" \
  "${pack_args[@]}" >"$WORK_DIR/pack.log" 2>&1 ||
  { cat "$WORK_DIR/pack.log" >&2; die "occ pack failed"; }

count_args=()
[[ -n ${COUNT:-} ]] && count_args=(--count "$COUNT")
echo "check-fmnist: extracting test images" >&2
extract_args=(--raw "$WORK_DIR/test.bin" --labels "$WORK_DIR/test.labels")
[[ $MODE == image ]] && extract_args+=(--png-dir "$WORK_DIR/png")
"$PY" "$ROOT/tools/fmnist_extract.py" "${count_args[@]}" "${extract_args[@]}"

echo "check-fmnist: ONNX Runtime" >&2
node "$ROOT/tools/ort/run.js" "$MODEL" --batch-input "$WORK_DIR/test.bin" \
  --predictions "$WORK_DIR/ort.pred" --threads 1 >"$WORK_DIR/ort.json"
cat "$WORK_DIR/ort.json" >&2

echo "check-fmnist: occ ($MODE mode, $JOBS jobs)" >&2
start=$(date +%s)
if [[ $MODE == image ]]; then
  src_args=(--png-dir "$WORK_DIR/png")
else
  src_args=(--raw "$WORK_DIR/test.bin")
fi
"$PY" "$ROOT/tools/fmnist_check.py" predict-occ --occ "$OCC_BIN" --pack "$WORK_DIR/fmnist.occ" \
  "${src_args[@]}" --out "$WORK_DIR/occ.pred" --jobs "$JOBS"
echo "check-fmnist: occ took $(($(date +%s) - start)) s" >&2

if "$PY" "$ROOT/tools/fmnist_check.py" score --labels "$WORK_DIR/test.labels" \
     --pred "$WORK_DIR/occ.pred" --ref "$WORK_DIR/ort.pred" \
     --min-acc "$MIN_ACC" --min-agree "$MIN_AGREE" | tee "$WORK_DIR/result.json"; then
  echo "check-fmnist: OK"
else
  echo "check-fmnist: FAILED (accuracy >= $MIN_ACC and agreement with ORT >= $MIN_AGREE required)" >&2
  exit 1
fi
