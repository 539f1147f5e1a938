#!/usr/bin/env bash
# Typed, multi-input, multi-output models at the command line: occ pack
# --bind, occ inspect (types, --json), occ run --input NAME=FILE and
# --output-dir (file names sanitised), and the errors of each.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

# x float [2,3], ids int64 [2], shape int64 [2] (steers Reshape) ->
#   "rows/out:0" = Reshape(Gather(x, ids), shape) float, "eq" = Equal(ids, 1) bool
# and a second model whose only output is int64: ArgMax.
$PY - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh
t = sys.argv[1]
g = h.make_graph(
    [h.make_node("Gather", ["x", "ids"], ["rows"]),
     h.make_node("Reshape", ["rows", "shape"], ["rows/out:0"]),
     h.make_node("Equal", ["ids", "one"], ["eq"])],
    "typed",
    [h.make_tensor_value_info("x", TP.FLOAT, [2, 3]),
     h.make_tensor_value_info("ids", TP.INT64, [2]),
     h.make_tensor_value_info("shape", TP.INT64, [2])],
    [h.make_tensor_value_info("rows/out:0", TP.FLOAT, None),
     h.make_tensor_value_info("eq", TP.BOOL, None)],
    [nh.from_array(np.array([1], np.int64), "one")])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), f"{t}/typed.onnx")
g3 = h.make_graph([h.make_node("Relu", ["x"], ["a/b"]), h.make_node("Sigmoid", ["x"], ["a:b"])], "clash",
                  [h.make_tensor_value_info("x", TP.FLOAT, [1, 5])],
                  [h.make_tensor_value_info("a/b", TP.FLOAT, None), h.make_tensor_value_info("a:b", TP.FLOAT, None)])
onnx.save(h.make_model(g3, opset_imports=[h.make_opsetid("", 13)]), f"{t}/clash.onnx")
g2 = h.make_graph([h.make_node("ArgMax", ["x"], ["cls"], axis=1, keepdims=0)], "arg",
                  [h.make_tensor_value_info("x", TP.FLOAT, [1, 5])],
                  [h.make_tensor_value_info("cls", TP.INT64, None)])
onnx.save(h.make_model(g2, opset_imports=[h.make_opsetid("", 13)]), f"{t}/arg.onnx")
np.array([[1, 2, 3], [4, 5, 6]], np.float32).tofile(f"{t}/x.bin")
np.array([1, -2], np.int64).tofile(f"{t}/ids.bin")
np.array([3, 2], np.int64).tofile(f"{t}/shape.bin")
np.array([3, 2], np.int32).tofile(f"{t}/shape32.bin")
np.array([0.5, 3, -1, 7, 2], np.float32).tofile(f"{t}/x5.bin")
PY

# --- pack: the shape-steering input must be bound ---
expect_error "unbound steering input" "graph input 'shape'.*--bind shape=FILE" \
  "$OCC" pack "$T/typed.onnx" -o "$T/t.occ"
expect_error "bind of the wrong size" "--bind shape: 8 bytes given.*int64.*needs 16" \
  "$OCC" pack "$T/typed.onnx" -o "$T/t.occ" --bind "shape=$T/shape32.bin"
expect_error "bind of an unknown input" "--bind names 'nope'" \
  "$OCC" pack "$T/typed.onnx" -o "$T/t.occ" --bind "nope=$T/shape.bin"
expect_error "bind without a file" "--bind wants NAME=FILE" \
  "$OCC" pack "$T/typed.onnx" -o "$T/t.occ" --bind shape
expect_error "bind of a missing file" "cannot open" \
  "$OCC" pack "$T/typed.onnx" -o "$T/t.occ" --bind "shape=$T/none.bin"
"$OCC" pack "$T/typed.onnx" -o "$T/t.occ" --bind "shape=$T/shape.bin" -q >/dev/null 2>"$T/err" \
  && san_clean "$T/err" && ok || { bad "pack --bind"; cat "$T/err" >&2; }
"$OCC" pack "$T/arg.onnx" -o "$T/a.occ" -q >/dev/null && ok || bad "pack argmax"

# --- inspect: every input and output with its type ---
"$OCC" inspect "$T/t.occ" --json >"$T/i.json" && ok || bad "inspect --json"
$PY - "$T/i.json" <<'PY' && ok || bad "inspect json inputs/outputs"
import json, sys
d = json.load(open(sys.argv[1]))
io = lambda l: [(x["name"], x["type"], x["shape"]) for x in l]
assert io(d["inputs"]) == [("x", "float32", [2, 3]), ("ids", "int64", [2])], d["inputs"]
assert io(d["outputs"]) == [("rows/out:0", "float32", [3, 2]), ("eq", "bool", [2])], d["outputs"]
assert [x["datatype"] for x in d["outputs"]] == ["FP32", "BOOL"]
PY
"$OCC" inspect "$T/t.occ" >"$T/i.txt" && grep -q "^input     ids \[2\] int64$" "$T/i.txt" &&
  grep -q "^output    eq \[2\] bool$" "$T/i.txt" && ok || { bad "inspect text types"; cat "$T/i.txt" >&2; }

# --- run: named inputs, one file per output ---
mkdir "$T/od"
"$OCC" run "$T/t.occ" --input "ids=$T/ids.bin" --input "x=$T/x.bin" --output-dir "$T/od" \
  2>"$T/err" && san_clean "$T/err" && ok || { bad "run --input NAME=FILE --output-dir"; cat "$T/err" >&2; }
ls "$T/od" >"$T/ls"
[ "$(cat "$T/ls")" = "$(printf 'eq.bin\nrows_out_0.bin')" ] && ok || { bad "output file names"; cat "$T/ls" >&2; }
$PY - "$T" <<'PY' && ok || bad "output values"
import sys, numpy as np
t = sys.argv[1]
rows = np.fromfile(f"{t}/od/rows_out_0.bin", np.float32)
eq = np.fromfile(f"{t}/od/eq.bin", np.uint8)
assert rows.tolist() == [4, 5, 6, 1, 2, 3], rows
assert eq.tolist() == [1, 0], eq
PY
"$OCC" run "$T/t.occ" --input "x=$T/x.bin" --input "ids=$T/ids.bin" --output "$T/all.bin" \
  && cmp -s "$T/all.bin" <(cat "$T/od/rows_out_0.bin" "$T/od/eq.bin") && ok || bad "--output: all outputs back to back"
"$OCC" run "$T/t.occ" --input "x=$T/x.bin" --input "ids=$T/ids.bin" --top 2 --json >"$T/r.json" \
  && $PY -c "import json,sys; d=json.load(open(sys.argv[1])); assert [t['index'] for t in d['top']] == [2, 1], d" "$T/r.json" \
  && ok || bad "--top ranks the float output"

expect_error "unknown input name" "no input named 'nope' \\(its inputs: x, ids\\)" \
  "$OCC" run "$T/t.occ" --input "nope=$T/x.bin" --input "ids=$T/ids.bin"
expect_error "missing input" "missing input 'ids' \\(int64 \\[2\\]\\): give --input ids=FILE" \
  "$OCC" run "$T/t.occ" --input "x=$T/x.bin"
expect_error "input given twice" "input 'x' is given twice" \
  "$OCC" run "$T/t.occ" --input "x=$T/x.bin" --input "x=$T/x.bin" --input "ids=$T/ids.bin"
expect_error "bare --input on two inputs" "has 2 inputs; name each one with --input NAME=FILE" \
  "$OCC" run "$T/t.occ" --input "$T/x.bin"
expect_error "input of the wrong size" "has 24 bytes but input 'ids' \\(int64 \\[2\\]\\) needs 16 bytes" \
  "$OCC" run "$T/t.occ" --input "x=$T/x.bin" --input "ids=$T/x.bin"
expect_error "output dir missing" "output 'rows/out:0': cannot create" \
  "$OCC" run "$T/t.occ" --input "x=$T/x.bin" --input "ids=$T/ids.bin" --output-dir "$T/none"

# two output names that sanitise to one file name: an error, not an overwrite
"$OCC" pack "$T/clash.onnx" -o "$T/clash.occ" -q >/dev/null && ok || bad "pack clash"
mkdir "$T/cod"
expect_error "output names clash" "outputs 'a/b' and 'a:b' would both be written to a_b.bin" \
  "$OCC" run "$T/clash.occ" --input "$T/x5.bin" --output-dir "$T/cod"

# --- every input bound: nothing to give at run time ---
"$OCC" pack "$T/typed.onnx" -o "$T/all.occ" -q --bind "shape=$T/shape.bin" --bind "x=$T/x.bin" \
  --bind "ids=$T/ids.bin" >/dev/null && ok || bad "pack with every input bound"
mkdir "$T/bod"
"$OCC" run "$T/all.occ" --output-dir "$T/bod" >/dev/null 2>"$T/err" && cmp -s "$T/bod/eq.bin" "$T/od/eq.bin" \
  && cmp -s "$T/bod/rows_out_0.bin" "$T/od/rows_out_0.bin" && ok || { bad "run without inputs"; cat "$T/err" >&2; }
expect_error "input for a model without inputs" "no input named 'x'" \
  "$OCC" run "$T/all.occ" --input "x=$T/x.bin"

# --- an integer-only output: --top refused, files fine ---
expect_error "--top on int64 output" "--top needs a float32 output" \
  "$OCC" run "$T/a.occ" --input "$T/x5.bin" --top 3
mkdir "$T/aod"
"$OCC" run "$T/a.occ" --input "x=$T/x5.bin" --output-dir "$T/aod" >/dev/null && \
  $PY -c "import numpy as np,sys; assert np.fromfile(sys.argv[1], np.int64).tolist() == [3]" "$T/aod/cls.bin" \
  && ok || bad "argmax int64 output"
"$OCC" run "$T/a.occ" --input "$T/x5.bin" >/dev/null && ok || bad "no default top for an int output"

# --- occ serve takes typed models (tests/cli_serve_typed.sh serves and queries one) ---
mkdir -m 700 "$T/emu"
"$OCC" serve --model t="$T/t.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" >"$T/slog" 2>"$T/serr" &
spid=$!
for _ in $(seq 300); do grep -q '^listening' "$T/slog" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$T/slog" && ok || { bad "serve takes a typed model"; cat "$T/serr" >&2; }
kill -TERM $spid; wait $spid || true

# --- help documents the flags ---
"$OCC" run --help | grep -q -- "--input NAME=FILE" && "$OCC" run --help | grep -q -- "--output-dir DIR" \
  && ok || bad "run --help"
"$OCC" pack --help | grep -q -- "--bind NAME=FILE" && "$OCC" pack --help | grep -q -- "--input-shape" \
  && ok || bad "pack --help"
finish
