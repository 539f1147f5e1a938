#!/usr/bin/env bash
# Zero-size tensors at the command line: a model with empty graph inputs and
# outputs packs, `occ inspect` shows the 0 dims, `occ run --input NAME=FILE`
# takes an empty file for an empty input and `--output-dir` writes an empty
# file for an empty output (the non-empty output next to them is right);
# a non-empty file for an empty input, and an operator that does not take
# empty tensors, are refused with one line.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

$PY - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh
t = sys.argv[1]
i64 = lambda n, v: nh.from_array(np.array(v, np.int64), n)
g = h.make_graph(
    [h.make_node("Slice", ["x", "st", "en", "ax"], ["y"]),
     h.make_node("Split", ["x", "sp"], ["p", "q"], axis=1),
     h.make_node("Relu", ["q"], ["z"]),
     h.make_node("Reshape", ["e", "shp"], ["r"], allowzero=1),
     h.make_node("Trilu", ["t"], ["u"])],
    "zerosize",
    [h.make_tensor_value_info("x", TP.FLOAT, [2, 3]),
     h.make_tensor_value_info("e", TP.FLOAT, [0, 4]),
     h.make_tensor_value_info("t", TP.INT64, [0, 5])],
    [h.make_tensor_value_info(n, TP.FLOAT, None) for n in ["y", "p", "z", "r"]] +
    [h.make_tensor_value_info("u", TP.INT64, None)],
    [i64("st", [5]), i64("en", [10]), i64("ax", [1]), i64("sp", [0, 3]), i64("shp", [4, 0])])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 14)]), f"{t}/zs.onnx")
g2 = h.make_graph([h.make_node("Softmax", ["e"], ["s"])], "refused",
                  [h.make_tensor_value_info("e", TP.FLOAT, [0, 4])],
                  [h.make_tensor_value_info("s", TP.FLOAT, None)])
onnx.save(h.make_model(g2, opset_imports=[h.make_opsetid("", 14)]), f"{t}/refused.onnx")
g3 = h.make_graph([h.make_node("Flatten", ["s"], ["f"], axis=1)], "pinned",
                  [h.make_tensor_value_info("s", TP.FLOAT, ["N", 4])],
                  [h.make_tensor_value_info("f", TP.FLOAT, None)])
onnx.save(h.make_model(g3, opset_imports=[h.make_opsetid("", 14)]), f"{t}/pinned.onnx")
np.array([[-1, 2, -3], [4, -5, 6]], np.float32).tofile(f"{t}/x.bin")
open(f"{t}/empty.bin", "wb").close()
open(f"{t}/four.bin", "wb").write(b"\0" * 4)
PY

"$OCC" pack "$T/zs.onnx" -o "$T/zs.occ" -q >/dev/null 2>"$T/err" && san_clean "$T/err" && ok \
  || { bad "pack"; cat "$T/err" >&2; }
"$OCC" inspect "$T/zs.occ" >"$T/insp" 2>&1
grep -qE "input +e \[0,4\] float32" "$T/insp" && grep -qE "output +y \[2,0\] float32" "$T/insp" \
  && grep -qE "output +u \[0,5\] int64" "$T/insp" && ok || { bad "inspect"; cat "$T/insp" >&2; }

mkdir -p "$T/odir"
"$OCC" run "$T/zs.occ" --input "x=$T/x.bin" --input "e=$T/empty.bin" --input "t=$T/empty.bin" \
  --output-dir "$T/odir" >/dev/null 2>"$T/err" && san_clean "$T/err" && ok \
  || { bad "run with empty inputs"; cat "$T/err" >&2; }
for n in y p r u; do
  [ -f "$T/odir/$n.bin" ] && [ ! -s "$T/odir/$n.bin" ] && ok || bad "empty output file $n.bin"
done
$PY - "$T" <<'PY' && ok || bad "z = Relu(x)"
import sys, numpy as np
z = np.fromfile(f"{sys.argv[1]}/odir/z.bin", np.float32)
sys.exit(0 if z.tolist() == [0, 2, 0, 4, 0, 6] else 1)
PY

expect_error "bytes for an empty input" "four.bin has 4 bytes but input 'e' \(float32 \[0,4\]\) needs 0" \
  "$OCC" run "$T/zs.occ" --input "x=$T/x.bin" --input "e=$T/four.bin" --input "t=$T/empty.bin" \
  --output-dir "$T/odir"
expect_error "an op without zero-size support" "Softmax.*'e'.*empty" \
  "$OCC" pack "$T/refused.onnx" -o "$T/r.occ"
# a symbolic dim pinned to 0 at pack time
"$OCC" pack "$T/pinned.onnx" -o "$T/p.occ" --input-shape s=0,4 -q >/dev/null 2>"$T/err" \
  && "$OCC" inspect "$T/p.occ" | grep -qE "output +f \[0,4\] float32" && ok \
  || { bad "--input-shape with a 0 dim"; cat "$T/err" >&2; }
expect_error "--input-shape with a negative dim" "bad dim" \
  "$OCC" pack "$T/pinned.onnx" -o "$T/p.occ" --input-shape s=-1,4
finish
