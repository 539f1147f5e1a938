#!/usr/bin/env bash
# occ run --enclave emu: the interface the checks use (issue 4). JSON fields,
# paging where expected (baseline under a small EPC) and not where not
# (occlumency within its budget), the trace of one inference identical for
# two different inputs, the same output as --enclave none, and bad options.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# A small CNN (x[1,16,8,8] -> Conv 3x3 x2 -> Gemm(200), 3.4 MiB of weights)
# made with the onnx package: big enough to page under a 512K EPC and to be
# streamed by occlumency at 3M.
$PY - "$T/m.onnx" <<'PY'
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
    helper.make_node("Flatten", ["r2"], ["f"]),
    helper.make_node("Gemm", ["f", "gw", "gc"], ["y"], transB=1),
]
g = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 200])], inits)
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
"$OCC" pack "$T/m.onnx" -o "$T/m.occ" --chunk-size 128K --quiet >/dev/null
$PY -c "
import numpy as np
r = np.random.default_rng(7)
r.standard_normal((1,16,8,8)).astype(np.float32).tofile('$T/x1.bin')
x = np.full((1,16,8,8), -1.0, np.float32); x[..., 2:6, 1:7] = 2.0; x.tofile('$T/x2.bin')"

# --- JSON fields; --enclave none is unchanged ---
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --output "$T/y_none.bin" --threads 1 && ok || bad "run none"
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --output "$T/y_emu.bin" --threads 1 --enclave emu && ok || bad "run emu"
cmp -s "$T/y_none.bin" "$T/y_emu.bin" && ok || bad "emu output differs from native"
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --stats --json --threads 1 >"$T/none.json" && ok || bad "none json"
$PY - "$T/none.json" <<'PY' && ok || bad "none json has no enclave fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert "epc_faults" not in d and "enclave" not in d, d
PY

# --- baseline under a small EPC pages; every inference's counters ---
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc 512K --cost-model sgx1 --mode baseline \
  --stats --json --repeat 2 --threads 1 >"$T/base.json" && ok || bad "baseline emu"
$PY - "$T/base.json" <<'PY' && ok || bad "baseline json"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("epc_faults", "transitions", "bytes_verified", "evictions", "charged_ms", "epc_peak_bytes"):
    assert k in d, k
assert d["enclave"] == "emu" and d["cost_model"] == "sgx1" and d["epc_cap_bytes"] == 512 * 1024
assert d["epc_faults"] > 100 and d["evictions"] > 100, d
assert d["bytes_verified"] >= d["epc_faults"] * 4096 * 0.5, d
assert d["charged_ms"] > 0 and d["integrity"] == "ok"
# each fault's charge against the emulator's own time for it
assert d["emu_handle_ms"] > 0 and d["emu_wait_ms"] >= 0 and d["emu_excess_ms"] >= 0, d
assert 0 <= d["emu_overrun_faults"] <= d["epc_faults"], d
PY
# same under cost model none: paging counted, nothing charged
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc 512K --cost-model none --mode baseline \
  --stats --json --threads 1 >"$T/none_cost.json" && ok || bad "cost none"
$PY - "$T/none_cost.json" <<'PY' && ok || bad "cost none json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cost_model"] == "none" and d["charged_ms"] == 0 and d["epc_faults"] > 100, d
# nothing to make up, so all of the emulator's time is beyond the model
assert d["emu_wait_ms"] == 0 and d["emu_excess_ms"] > 0 and d["emu_handle_ms"] > 0, d
PY

# --- occlumency within its budget does not page ---
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc 8M --mode occlumency --budget 3M \
  --stats --json --repeat 2 --threads 1 >"$T/occ.json" && ok || bad "occlumency emu"
$PY - "$T/occ.json" <<'PY' && ok || bad "occlumency json"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["epc_faults"] == 0 and d["evictions"] == 0, d
assert d["epc_peak_bytes"] <= 8 * 1024 * 1024
assert d["chunks_loaded"] > 0, d  # weights streamed in every inference
PY

# --- trace of one inference: identical for two inputs ---
# occlumency within its budget; baseline paging under a 512K EPC (one
# compute thread, so the order of faults is the program's).
for m in occlumency baseline; do
  if [ $m = occlumency ]; then args="--epc 32M --budget 3M"; else args="--epc 512K"; fi
  for i in 1 2; do
    # shellcheck disable=SC2086
    "$OCC" run "$T/m.occ" --input "$T/x$i.bin" --enclave emu $args --mode $m \
      --threads 1 --trace "$T/$m.$i.trace" --top 1 >"$T/$m.$i.top" || bad "trace $m $i"
  done
  cmp -s "$T/$m.1.top" "$T/$m.2.top" && bad "$m: both inputs gave the same class (pick other inputs)" || ok
  [ -s "$T/$m.1.trace" ] && ok || bad "$m: empty trace"
  if [ $m = baseline ]; then [ "$(grep -c '^fault' "$T/$m.1.trace")" -gt 100 ] && ok || bad "baseline trace: few faults"; fi
  if [ $m = occlumency ]; then grep -q '^chunk' "$T/$m.1.trace" && ok || bad "occlumency trace: no chunk loads"; fi
  grep -qvE '^(fault|zero|chunk) [0-9]+$' "$T/$m.1.trace" && bad "$m: trace line not '<kind> <n>'" || ok
  cmp -s "$T/$m.1.trace" "$T/$m.2.trace" && ok || { bad "$m: traces of two inputs differ"; diff "$T/$m.1.trace" "$T/$m.2.trace" | head -5 >&2; }
done

# --- the boundary recorder from the CLI: weights cross, the input never ---
"$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc 512K --mode baseline --threads 1 \
  --record-boundary "$T/rec.bin" --top 1 >/dev/null && ok || bad "--record-boundary"
$PY - "$T/rec.bin" "$T/x1.bin" <<'PY' && ok || bad "recording"
import sys
rec, x = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert len(rec) > 3_000_000 and rec[:4] == b"BCCO", len(rec)  # all weights came in, records well-formed
windows = {x[i:i + 16] for i in range(len(x) - 15)}
assert not any(rec[i:i + 16] in windows for i in range(len(rec) - 15)), "input bytes crossed the boundary"
PY

# --- bad options ---
expect_error "enclave value" "--enclave takes emu or none" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave sgx
expect_error "epc size" "--epc takes a size" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc lots
expect_error "epc tiny" "--epc takes a size" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --epc 4K
expect_error "cost model" "--cost-model takes" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --cost-model sgx3
expect_error "trace needs emu" "need --enclave emu" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --trace "$T/t"
expect_error "trace unwritable" "cannot write" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --enclave emu --trace "$T/no/such/dir/t"
expect_error "epc no value" "needs a value" "$OCC" run "$T/m.occ" --input "$T/x1.bin" --epc

finish
