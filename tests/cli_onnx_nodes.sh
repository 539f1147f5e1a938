#!/usr/bin/env bash
# A quick subset of the ONNX project's node tests (tests/onnx_nodes_quick.txt)
# through occ pack + occ run, with the test build's occ (ASan/UBSan): every
# listed test must pass and none may crash. `make check-onnx` runs them all.
# libonnx-testdata is a dependency (scripts/install-deps.sh installs it).
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
DATA=/usr/share/libonnx-testdata/data/node
if [ ! -d "$DATA" ]; then
  echo "FAIL: $DATA is missing: install libonnx-testdata (bash scripts/install-deps.sh)" >&2
  exit 1
fi
exec /usr/bin/python3 "$SRC/tools/onnx_node_check.py" --occ "$OCC" --data "$DATA" \
  --list "$SRC/tests/onnx_nodes_quick.txt" --jobs 2 --timeout 120
