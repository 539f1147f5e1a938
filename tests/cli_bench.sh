#!/usr/bin/env bash
# occ bench on a small generated model: the files the checks read (results.csv with
# one row per model and configuration, results.md, the chart), packing a
# missing pack from ZOO/NAME.onnx, and bad arguments.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/zoo"
# A small CNN made with the onnx package, as a zoo entry: x[1,16,64,64] ->
# Conv 3x3 x2 -> MaxPool 8 -> Gemm(200), 3.4 MiB of weights, 1 MiB feature maps.
$PY - "$T/zoo/small.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
r = np.random.default_rng(5)
def w(name, *shape):
    return numpy_helper.from_array((r.standard_normal(shape) * 0.05).astype(np.float32), name)
inits = [w("w1", 64, 16, 3, 3), w("b1", 64), w("w2", 64, 64, 3, 3), w("b2", 64), w("gw", 200, 4096), w("gc", 200)]
nodes = [
    helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"]),
    helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c2"], ["r2"]),
    helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
    helper.make_node("Flatten", ["p"], ["f"]),
    helper.make_node("Gemm", ["f", "gw", "gc"], ["y"], transB=1),
]
g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 64, 64])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 200])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
$PY -c "import numpy as np; np.random.default_rng(3).standard_normal((1,16,64,64)).astype(np.float32).tofile('$T/zoo/small.input.bin')"

# The pack is missing: bench makes it (in --packs), then measures.
"$OCC" bench --models small --zoo "$T/zoo" --packs "$T/packs_dir_that_is_created_by_mkdir" --out "$T/out" \
  --repeat 3 --warmup 1 --threads 1 >"$T/stdout" 2>"$T/stderr" && bad "bench wrote into a missing --packs dir" || ok
mkdir -p "$T/packs"
"$OCC" bench --models small --zoo "$T/zoo" --packs "$T/packs" --out "$T/out" --repeat 3 --warmup 1 --threads 1 \
  >"$T/stdout" 2>"$T/stderr" && ok || { bad "bench"; cat "$T/stderr" >&2; }
[ -s "$T/packs/small.occ" ] && ok || bad "pack not made"
grep -q "round 4/4" "$T/stderr" && ok || bad "no progress on stderr"
grep -q "| small |" "$T/stdout" && ok || bad "table not printed"
$PY - "$T/out/results.csv" <<'PY' && ok || bad "results.csv"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
need = ["model", "config", "median_ms", "speedup_vs_baseline", "overhead_vs_native", "peak_enclave_bytes",
        "epc_faults", "evictions", "transitions", "bytes_verified", "charged_ms"]
assert all(k in rows[0] for k in need), rows[0].keys()
need += ["model_ms", "speedup_vs_baseline_model", "overhead_vs_native_best", "overhead_vs_native_best_model",
         "excess_ms"]
assert all(k in rows[0] for k in need), rows[0].keys()
assert [r["config"] for r in rows] == ["native", "native-1t", "baseline", "baseline-resident", "occlumency-93M",
                                       "occlumency-32M"], rows
rows_ok = rows
for r in rows_ok:
    assert r["model"] == "small" and r["status"] == "ok", r
    assert float(r["median_ms"]) > 0 and int(r["runs"]) == 3
base = [r for r in rows if r["config"] == "baseline"][0]
nat = [r for r in rows if r["config"] == "native"][0]
assert abs(float(base["speedup_vs_baseline"]) - 1) < 1e-9 and abs(float(nat["overhead_vs_native"]) - 1) < 1e-9
assert int(base["epc_cap_bytes"]) == 93 << 20
for occ in [r for r in rows_ok if r["config"].startswith("occlumency")]:
    assert int(occ["epc_cap_bytes"]) == int(occ["config"][11:-1]) << 20, occ
# 3.4 MiB fits any of these EPCs: nothing pages
assert all(int(r["epc_faults"]) == 0 for r in rows_ok), rows_ok
# the baseline in an EPC as large as its heap; one-thread native
res = [r for r in rows if r["config"] == "baseline-resident"][0]
assert int(res["epc_cap_bytes"]) > 1 << 30, res
# without faults the cost model alone is the measurement (a baseline that pages
# would take baseline-resident plus the faults charged)
for r in rows_ok:
    assert abs(float(r["model_ms"]) - float(r["median_ms"])) < 1e-3 and float(r["excess_ms"]) == 0, r
best = min(float(nat["median_ms"]), float([r for r in rows if r["config"] == "native-1t"][0]["median_ms"]))
for r in rows_ok:
    # (from medians printed to the microsecond: a relative tolerance)
    assert abs(float(r["overhead_vs_native_best"]) - float(r["median_ms"]) / best) < 1e-2 * float(r["median_ms"]) / best, r

PY
grep -q "^| small | " "$T/out/results.md" && ok || bad "results.md"
[ -s "$T/out/results.gp" ] && ok || bad "chart script"
if [ -x /usr/bin/gnuplot ]; then grep -q "<svg" "$T/out/results.svg" 2>/dev/null && ok || bad "results.svg"; fi

# A subset of configurations; the existing pack is reused.
"$OCC" bench --models small --zoo "$T/zoo" --packs "$T/packs" --out "$T/out2" --repeat 1 --warmup 0 \
  --configs native,occlumency-32M --quiet >/dev/null 2>"$T/stderr" && ok || bad "bench --configs"
[ "$(grep -c '^small,' "$T/out2/results.csv")" -eq 2 ] && ok || bad "--configs rows"
[ -s "$T/stderr" ] && bad "--quiet printed: $(head -c 200 "$T/stderr")" || ok

# --json: one object on stdout (also DIR/results.json), measured and cost-model figures side by side
"$OCC" bench --models small --zoo "$T/zoo" --packs "$T/packs" --out "$T/out3" --repeat 1 --warmup 0 \
  --configs native,native-1t,baseline,baseline-resident,occlumency-93M --threads 1 --json --quiet \
  >"$T/json" 2>"$T/stderr" && ok || bad "bench --json"
$PY - "$T/json" "$T/out3/results.json" <<'PY' && ok || bad "bench --json output"
import json, sys
d = json.load(open(sys.argv[1]))
assert d == json.load(open(sys.argv[2]))
assert d["cost_model"] == "sgx1" and d["epc_bytes"] == 93 << 20
m = d["models"][0]
assert m["model"] == "small" and m["native_best"] in ("native", "native-1t"), m
c = m["configs"]
assert sorted(c) == sorted(["native", "native-1t", "baseline", "baseline-resident", "occlumency-93M"]), c.keys()
for k in ("median_ms", "model_ms", "speedup_vs_baseline", "speedup_vs_baseline_model", "overhead_vs_native_best",
          "overhead_vs_native_best_model", "charged_ms", "excess_ms", "epc_faults"):
    assert k in c["occlumency-93M"], k
assert c["baseline"]["speedup_vs_baseline"] == 1 and c["baseline"]["speedup_vs_baseline_model"] == 1
s = d["summary"]
for k in ("speedup_93M_vs_baseline_geomean", "speedup_93M_vs_baseline_model_geomean",
          "overhead_93M_vs_native_best_geomean", "overhead_93M_vs_native_best_model_geomean"):
    assert k in s, k
# 3.4 MiB of weights do not exceed the EPC: no speedup geomean, an overhead one
assert s["speedup_models"] == 0 and s["speedup_93M_vs_baseline_geomean"] is None
assert s["overhead_models"] == 1 and s["overhead_93M_vs_native_best_geomean"] > 0
PY

# Errors: one clear line, non-zero exit, no crash.
expect() {
  local name=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$T/o" 2>"$T/e" || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -gt 128 ]; then bad "$name: exit $rc"; return; fi
  grep -q 'ERROR: AddressSanitizer\|runtime error:' "$T/e" && { bad "$name: sanitizer"; return; }
  grep -qE -e "$pattern" "$T/e" && ok || { bad "$name: stderr"; cat "$T/e" >&2; }
}
expect "no models" "--models a,b,c is required" "$OCC" bench --out "$T/x"
expect "no out" "--out DIR is required" "$OCC" bench --models small
expect "missing model" "neither" "$OCC" bench --models nosuch --zoo "$T/zoo" --out "$T/o3" --quiet
expect "bad config" "unknown configuration" "$OCC" bench --models small --out "$T/o4" --configs fast
expect "bad repeat" "--repeat needs" "$OCC" bench --models small --out "$T/o4" --repeat 0

finish
