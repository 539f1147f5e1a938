#!/usr/bin/env bash
# occ pack / inspect / run at the command line: the happy path on the bundled
# model, and every kind of bad input giving one clear error line and a
# non-zero exit, never a crash (the test build runs under ASan/UBSan, which
# would turn a memory error into a failed run with a report).
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# --- happy path ---
# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/m.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet && ok || bad "pack"
"$OCC" inspect "$T/m.occ" --json >"$T/inspect.json" && ok || bad "inspect --json"
/usr/bin/python3 - "$T/inspect.json" <<'PY' && ok || bad "inspect json fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["model_id"]) == 64 and int(d["model_id"], 16) >= 0
assert d["inputs"][0]["shape"] == [1, 1, 28, 28], d["inputs"]
assert d["outputs"][0]["shape"] == [1, 10]
assert d["params"] > 50000 and d["flops"] > 1000000
assert len(d["labels"]) == 10 and d["preprocessing"]["channel_order"] == "L"
assert len(d["layers"]) == d["nodes"]
PY
/usr/bin/python3 -c "import numpy as np; np.random.default_rng(1).standard_normal((1,1,28,28)).astype(np.float32).tofile('$T/x.bin')"
"$OCC" run "$T/m.occ" --input "$T/x.bin" --output "$T/y.bin" && ok || bad "run --output"
[ "$(stat -c %s "$T/y.bin")" -eq 40 ] && ok || bad "output size"
"$OCC" run "$T/m.occ" --input "$T/x.bin" --top 3 --json --repeat 3 --stats >"$T/run.json" && ok || bad "run --json"
/usr/bin/python3 - "$T/run.json" "$T/y.bin" <<'PY' && ok || bad "run json"
import json, sys, numpy as np
d = json.load(open(sys.argv[1]))
y = np.fromfile(sys.argv[2], dtype=np.float32)
top = d["top"]
assert len(top) == 3 and d["median_ms"] > 0
assert [t["index"] for t in top] == list(np.argsort(-y, kind="stable")[:3]), (top, y)
assert abs(top[0]["score"] - float(y.max())) < 1e-5
assert isinstance(top[0]["label"], str) and top[0]["label"]
PY
# Same input twice: same output, bit for bit.
"$OCC" run "$T/m.occ" --input "$T/x.bin" --output "$T/y2.bin" --threads 1 && cmp -s "$T/y.bin" "$T/y2.bin" && ok || bad "deterministic output"
# --lockstep (bench/paired.py): "ready" after the warm-up, then one median
# per line read ("N [W]": N timed runs after W untimed, 1 and 0 when
# absent), until end of input.
printf '3\n\n2 1\n' | "$OCC" run "$T/m.occ" --input "$T/x.bin" --lockstep --json >"$T/lock.txt" && ok || bad "run --lockstep"
/usr/bin/python3 - "$T/lock.txt" <<'PY' && ok || bad "lockstep protocol"
import sys
lines = open(sys.argv[1]).read().split("\n")
assert lines[0] == "ready", lines[:4]
assert all(float(v) > 0 for v in lines[1:4]), lines[:4]
PY
: | "$OCC" run "$T/m.occ" --input "$T/x.bin" --lockstep >"$T/lock0.txt" && [ "$(cat "$T/lock0.txt")" = ready ] && ok || bad "lockstep without lines"
"$OCC" --help >/dev/null && "$OCC" run --help >/dev/null && "$OCC" pack --help >/dev/null && "$OCC" inspect --help >/dev/null && ok || bad "--help"

# --- bad command lines ---
expect_error "no args" "no model" "$OCC" run
expect_error "unknown option" "unknown option" "$OCC" run "$T/m.occ" --frobnicate
expect_error "both inputs" "once per input. or --image FILE" "$OCC" run "$T/m.occ" --input "$T/x.bin" --image "$T/x.bin"
expect_error "bad threads" "threads" "$OCC" run "$T/m.occ" --input "$T/x.bin" --threads many
expect_error "unknown command" "unknown command" "$OCC" frobnicate

# --- bad inputs ---
head -c 100 "$T/x.bin" >"$T/short.bin"
expect_error "wrong-size input" "needs 3136 bytes" "$OCC" run "$T/m.occ" --input "$T/short.bin"
expect_error "missing input" "cannot open" "$OCC" run "$T/m.occ" --input "$T/nope.bin"
expect_error "image not an image" "cannot decode image" "$OCC" run "$T/m.occ" --image "$T/x.bin"
expect_error "missing pack" "cannot open" "$OCC" run "$T/nope.occ" --input "$T/x.bin"
expect_error "not a pack" "not an .occ pack" "$OCC" inspect "$T/x.bin"

size=$(stat -c %s "$T/m.occ")
head -c $((size - 5000)) "$T/m.occ" >"$T/trunc.occ"
expect_error "truncated pack" "truncated|inconsistent" "$OCC" run "$T/trunc.occ" --input "$T/x.bin"
head -c 5000 "$T/m.occ" >"$T/trunc2.occ"
expect_error "pack cut in the manifest" "truncated|inconsistent" "$OCC" inspect "$T/trunc2.occ"

# A flipped byte in the weights (the first weight of the data section, whose
# offset is the u64 at byte 32 of the header): an integrity error, no output.
data_off=$(/usr/bin/python3 -c "import struct; print(struct.unpack_from('<Q', open('$T/m.occ','rb').read(64), 32)[0])")
cp "$T/m.occ" "$T/flip.occ"
printf '\xff' | dd of="$T/flip.occ" bs=1 seek=$((data_off + 10)) conv=notrunc status=none
rm -f "$T/yflip.bin"
expect_error "flipped weight" "integrity|verification" "$OCC" run "$T/flip.occ" --input "$T/x.bin" --output "$T/yflip.bin"
[ ! -e "$T/yflip.bin" ] && ok || bad "output written despite integrity failure"
# A flipped byte in the manifest: refused, or a different model id.
cp "$T/m.occ" "$T/flipm.occ"
printf '\x7f' | dd of="$T/flipm.occ" bs=1 seek=4200 conv=notrunc status=none
id_good=$("$OCC" inspect "$T/m.occ" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
if id_bad=$("$OCC" inspect "$T/flipm.occ" --json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["model_id"])' 2>/dev/null); then
  [ "$id_bad" != "$id_good" ] && ok || bad "manifest flip kept the model id"
else
  ok
fi

# --- bad ONNX ---
head -c 2000 "$SRC/models/fmnist.onnx" >"$T/trunc.onnx"
expect_error "truncated onnx" "." "$OCC" pack "$T/trunc.onnx" -o "$T/t.occ"
head -c 4096 /dev/urandom >"$T/garbage.onnx"
expect_error "garbage onnx" "." "$OCC" pack "$T/garbage.onnx" -o "$T/g.occ"
expect_error "missing onnx" "." "$OCC" pack "$T/none.onnx" -o "$T/n.occ"

finish
