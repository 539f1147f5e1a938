#!/usr/bin/env bash
# Quick end-to-end accuracy test (ctest): the committed Fashion-MNIST model,
# packed with occ, on the first N=200 test images.
#   - tensor path (`occ run --input`): accuracy >= 0.85 and agreement with
#     ONNX Runtime (or, without it, with models/fmnist.test200.pred, ORT's
#     committed predictions) >= 0.995;
#   - image path (`occ run --image` on the first 50 as PNG, preprocessing from
#     the pack): agreement with the same reference >= 0.98.
# Environment (set by ctest): OCC_BIN, OCC_SRC.
set -euo pipefail

OCC_SRC=${OCC_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
OCC_BIN=${OCC_BIN:-$OCC_SRC/build/release/occ}
N=${N:-200}
N_IMG=${N_IMG:-50}
PY=/usr/bin/python3
TOOLS=$OCC_SRC/tools
MODELS=$OCC_SRC/models

fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x $OCC_BIN ]] || fail "OCC_BIN not executable: $OCC_BIN"
[[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ||
   -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte ]] ||
  fail "dataset-fashion-mnist not installed (bash scripts/install-deps.sh)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

read -r -a pack_args <"$MODELS/fmnist.packargs"
"$OCC_BIN" pack "$MODELS/fmnist.onnx" -o "$tmp/fmnist.occ" --labels "$MODELS/fmnist.labels" \
  "${pack_args[@]}" >"$tmp/pack.log" 2>&1 || { cat "$tmp/pack.log" >&2; fail "occ pack"; }

"$PY" "$TOOLS/fmnist_extract.py" --count "$N" --raw "$tmp/x.bin" --labels "$tmp/y.txt"
"$PY" "$TOOLS/fmnist_extract.py" --count "$N_IMG" --png-dir "$tmp/png" --labels "$tmp/y_img.txt"

# reference predictions: ORT when installed, else the committed ones
ref=$tmp/ref.pred
if [[ -d $TOOLS/ort/node_modules/onnxruntime-node ]] && command -v node >/dev/null; then
  node "$TOOLS/ort/run.js" "$MODELS/fmnist.onnx" --batch-input "$tmp/x.bin" \
    --predictions "$ref" >/dev/null
  echo "reference: ONNX Runtime"
else
  head -n "$N" "$MODELS/fmnist.test200.pred" >"$ref"
  echo "reference: $MODELS/fmnist.test200.pred"
fi
# the committed predictions must stay in sync with the model
if [[ $N -le 200 ]]; then
  cmp -s "$ref" <(head -n "$N" "$MODELS/fmnist.test200.pred") ||
    fail "reference predictions differ from models/fmnist.test200.pred (model changed without regenerating it?)"
fi

"$PY" "$TOOLS/fmnist_check.py" predict-occ --occ "$OCC_BIN" --pack "$tmp/fmnist.occ" \
  --raw "$tmp/x.bin" --out "$tmp/occ.pred" --jobs "$(nproc)"
echo -n "tensor path: "
"$PY" "$TOOLS/fmnist_check.py" score --labels "$tmp/y.txt" --pred "$tmp/occ.pred" --ref "$ref" \
  --min-acc 0.85 --min-agree 0.995 || fail "tensor path accuracy/agreement"

"$PY" "$TOOLS/fmnist_check.py" predict-occ --occ "$OCC_BIN" --pack "$tmp/fmnist.occ" \
  --png-dir "$tmp/png" --out "$tmp/occ_img.pred" --jobs "$(nproc)"
# labels.csv lists the PNGs in index order, so the first N_IMG reference lines match
head -n "$N_IMG" "$ref" >"$tmp/ref_img.pred"
echo -n "image path: "
"$PY" "$TOOLS/fmnist_check.py" score --labels "$tmp/y_img.txt" --pred "$tmp/occ_img.pred" \
  --ref "$tmp/ref_img.pred" --min-acc 0.80 --min-agree 0.98 || fail "image path accuracy/agreement"
echo "PASS"
