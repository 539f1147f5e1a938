#!/usr/bin/env bash
# ONNX conformance: every node test of libonnx-testdata (ONNX 1.12) through
# `occ pack` + `occ run` (tools/onnx_node_check.py), a per-operator table,
# one reason per failure, crashes apart, and docs/onnx-conformance.md.
#
#   scripts/check-onnx.sh [OCC_BIN]        (make check-onnx)
#
# Environment: FILTER (regex over test names), JOBS (default 2), TIMEOUT
# (seconds per occ command, default 60), MARKDOWN (default
# docs/onnx-conformance.md; empty to skip). Exits 1 when a test crashed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
MARKDOWN=${MARKDOWN-$ROOT/docs/onnx-conformance.md}
args=(--occ "$OCC_BIN" --jobs "${JOBS:-2}" --timeout "${TIMEOUT:-60}" --estimate-named)
[ -n "${FILTER:-}" ] && args+=(--filter "$FILTER")
[ -n "$MARKDOWN" ] && args+=(--markdown "$MARKDOWN")
exec /usr/bin/python3 "$ROOT/tools/onnx_node_check.py" "${args[@]}"
