#!/usr/bin/env bash
# The element types of issue 12 at the command line: a model whose inputs,
# outputs, initializers and bound inputs are float64, int16, uint16, uint32,
# uint64 and bfloat16 through occ pack (--bind too), occ inspect (types and
# KServe datatypes), occ run --input NAME=FILE --output-dir, bit-exact
# against numpy, and occ serve + occ infer --tensor (binary and JSON tensors:
# FP64, UINT64 beyond 2^53, BF16 ...) equal to occ run byte for byte.
# float64 stays float64 (an initializer not representable in float32
# survives), uint64 beyond int64 keeps its order.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
PY=/usr/bin/python3
SERVER_PID=
on_exit() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

$PY - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh
t = sys.argv[1]
third = np.array([1 / 3, 1e-12, -2.5], np.float64)          # float64 initializer (not a float32)
big = np.array([2**63 + 5, 7, 2**64 - 1], np.uint64)       # uint64 initializer beyond int64
g = h.make_graph(
    [h.make_node("Add", ["x", "third"], ["y"]),                        # float64
     h.make_node("Max", ["u", "big"], ["m"]),                           # uint64, unsigned order
     h.make_node("Mul", ["s", "k"], ["p"]),                             # int16 x bound int16, wraps
     h.make_node("Cast", ["w"], ["w32"], to=TP.UINT32),                 # uint16 -> uint32
     h.make_node("Cast", ["b"], ["bf"], to=TP.FLOAT),                   # bfloat16 -> float32
     h.make_node("Cast", ["x"], ["xb"], to=TP.BFLOAT16),                # float64 -> bfloat16
     h.make_node("ReduceSum", ["x"], ["rs"], keepdims=0)],              # float64 reduce
    "dtypes",
    [h.make_tensor_value_info("x", TP.DOUBLE, [2, 3]),
     h.make_tensor_value_info("u", TP.UINT64, [3]),
     h.make_tensor_value_info("s", TP.INT16, [3]),
     h.make_tensor_value_info("k", TP.INT16, [3]),
     h.make_tensor_value_info("w", TP.UINT16, [2]),
     h.make_tensor_value_info("b", TP.BFLOAT16, [2])],
    [h.make_tensor_value_info(n, ty, None) for n, ty in
     [("y", TP.DOUBLE), ("m", TP.UINT64), ("p", TP.INT16), ("w32", TP.UINT32), ("bf", TP.FLOAT),
      ("xb", TP.BFLOAT16), ("rs", TP.DOUBLE)]],
    [nh.from_array(third, "third"), nh.from_array(big, "big")])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), f"{t}/d.onnx")
x = np.array([[0.1, 1e10, -1e-300], [3.0, 2.0 ** 60, 0.5]], np.float64)
u = np.array([2**63 + 4, 8, 1], np.uint64)
s = np.array([300, -7, 32767], np.int16)
k = np.array([300, 2, 2], np.int16)
w = np.array([65535, 1], np.uint16)
b = np.array([0x3f80, 0xc2f7], np.uint16)                               # bfloat16 bits: 1.0, -123.5
for n, a in dict(x=x, u=u, s=s, k=k, w=w, b=b).items():
    a.tofile(f"{t}/{n}.bin")
exp = dict(
    y=x + third,
    m=np.maximum(u, big),
    p=(s.astype(np.int64) * k).astype(np.int16),                        # two's complement wrap
    w32=w.astype(np.uint32),
    bf=np.array([1.0, -123.5], np.float32),
    rs=np.array(x.sum(axis=None), np.float64),
)
xf = x.astype(np.float32).view(np.uint32).astype(np.uint64)             # round to nearest even
exp["xb"] = ((xf + 0x7fff + ((xf >> 16) & 1)) >> 16).astype(np.uint16)
for n, a in exp.items():
    np.asarray(a).tofile(f"{t}/exp_{n}.bin")
PY

"$OCC" pack "$T/d.onnx" -o "$T/d.occ" --bind "k=$T/k.bin" -q >/dev/null 2>"$T/err" && san_clean "$T/err" \
  && ok || { bad "pack the typed model (--bind of an int16 input)"; cat "$T/err" >&2; }

"$OCC" inspect "$T/d.occ" --json >"$T/i.json" && ok || bad "inspect --json"
$PY - "$T/i.json" <<'PY' && ok || bad "inspect: types and KServe datatypes"
import json, sys
d = json.load(open(sys.argv[1]))
io = lambda l: [(x["name"], x["type"], x["datatype"]) for x in l]
assert io(d["inputs"]) == [("x", "float64", "FP64"), ("u", "uint64", "UINT64"), ("s", "int16", "INT16"),
                           ("w", "uint16", "UINT16"), ("b", "bfloat16", "BF16")], d["inputs"]
assert io(d["outputs"]) == [("y", "float64", "FP64"), ("m", "uint64", "UINT64"), ("p", "int16", "INT16"),
                            ("w32", "uint32", "UINT32"), ("bf", "float32", "FP32"),
                            ("xb", "bfloat16", "BF16"), ("rs", "float64", "FP64")], d["outputs"]
PY

mkdir "$T/od"
"$OCC" run "$T/d.occ" --input "x=$T/x.bin" --input "u=$T/u.bin" --input "s=$T/s.bin" --input "w=$T/w.bin" \
  --input "b=$T/b.bin" --output-dir "$T/od" 2>"$T/err" && san_clean "$T/err" \
  && ok || { bad "run with typed inputs"; cat "$T/err" >&2; }
for n in y m p w32 bf xb rs; do
  cmp -s "$T/od/$n.bin" "$T/exp_$n.bin" && ok || { bad "output $n differs from numpy"; \
    od -An -tx1 "$T/od/$n.bin" >&2; od -An -tx1 "$T/exp_$n.bin" >&2; }
done

# --- served: occ infer --tensor equals occ run, over binary and JSON tensors ---
MODEL_ID=$("$OCC" inspect "$T/d.occ" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
mkdir -m 700 "$T/emu"
"$OCC" serve --model d="$T/d.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  >"$T/serve.log" 2>"$T/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$T/serve.log" || { cat "$T/serve.log" "$T/serve.err" >&2; echo "server did not start" >&2; exit 1; }
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
MRENCLAVE=$(awk '/^mrenclave /{print $2}' "$T/serve.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$MODEL_ID" >"$T/policy.json"
INFER=("$OCC" infer "https://127.0.0.1:$PORT" --model d --tensor "x=$T/x.bin" --tensor "u=$T/u.bin"
  --tensor "s=$T/s.bin" --tensor "w=$T/w.bin" --tensor "b=$T/b.bin" --policy "$T/policy.json"
  --root "$T/emu/root.pem")
mkdir "$T/inf"
"${INFER[@]}" --output-dir "$T/inf" >/dev/null 2>"$T/err" && ok || { bad "occ infer (binary)"; cat "$T/err" >&2; }
for n in y m p w32 bf xb rs; do
  cmp -s "$T/inf/$n.bin" "$T/od/$n.bin" && ok || bad "occ infer: output $n differs from occ run"
done
# JSON tensors: the uint64 inputs beyond 2^53 go as decimal strings (exact);
# the server prints uint64 outputs as exact digits, which this client reads
# through doubles: it says so for 'm' (2^63 + 5) rather than round it
mkdir "$T/infj"
expect_error "occ infer --json-tensors, uint64 output beyond 2^53" \
  "output 'm': value 0 is not a UINT64 JSON value this client reads exactly" \
  "${INFER[@]}" --output-dir "$T/infj" --json-tensors
kill "$SERVER_PID" && wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=

expect_error "float64 input of the wrong size" "has 24 bytes but input 'x' \\(float64 \\[2,3\\]\\) needs 48 bytes" \
  "$OCC" run "$T/d.occ" --input "x=$T/u.bin" --input "u=$T/u.bin" --input "s=$T/s.bin" --input "w=$T/w.bin" \
  --input "b=$T/b.bin"
finish
