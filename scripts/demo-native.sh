#!/usr/bin/env bash
# Native demo: packs the Fashion-MNIST model and classifies the sample images.
#
#   scripts/demo-native.sh [OCC_BIN]
#
# Packs models/fmnist.onnx into build/demo/fmnist.occ, shows `occ inspect`,
# then runs `occ run --image` on every PNG in models/samples/ and prints the
# prediction next to the true label (from models/samples/labels.csv).
# Exit 1 if occ fails; a wrong prediction is reported, not an error.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
OUT_DIR=${OUT_DIR:-$ROOT/build/demo}
SAMPLES=$ROOT/models/samples
PY=/usr/bin/python3

[[ -x $OCC_BIN ]] || { echo "demo: occ binary not found: $OCC_BIN (run make build)" >&2; exit 2; }
mkdir -p "$OUT_DIR"
pack=$OUT_DIR/fmnist.occ

read -r -a pack_args <"$ROOT/models/fmnist.packargs"
echo "\$ occ pack models/fmnist.onnx -o $pack --labels models/fmnist.labels ${pack_args[*]}"
"$OCC_BIN" pack "$ROOT/models/fmnist.onnx" -o "$pack" --labels "$ROOT/models/fmnist.labels" "${pack_args[@]}"
echo
echo "\$ occ inspect $pack"
"$OCC_BIN" inspect "$pack" || true
echo

printf '%-14s %-12s %-12s %7s  %s\n' image truth predicted p ""
n=0 right=0
while IFS=, read -r file _index label name; do
  [[ $file == file ]] && continue
  json=$("$OCC_BIN" run "$pack" --image "$SAMPLES/$file" --top 1 --json)
  read -r idx plabel prob < <("$PY" -c 'import json,sys
sys.path.insert(0, sys.argv[1]); from jsonfield import last_object
t=last_object(sys.stdin.read())["top"][0]
print(t["index"], (t.get("label") or "?").replace(" ", "_"), "%.3f" % t.get("probability", t["score"]))' \
    "$ROOT/tools" <<<"$json")
  plabel=${plabel//_/ }
  mark="ok"
  if [[ $idx != "$label" ]]; then mark="WRONG"; else right=$((right + 1)); fi
  n=$((n + 1))
  printf '%-14s %-12s %-12s %7s  %s\n' "$file" "$name" "$plabel" "$prob" "$mark"
done <"$SAMPLES/labels.csv"
echo
echo "$right/$n correct"
