#!/usr/bin/env bash
# occ inspect MODEL --plan --budget SIZE [--json]: the occlumency memory plan
# printed readably and as JSON (per layer + totals + peak), consistent with
# itself and with the peak occ run measures at the same budget; an
# over-budget plan exits non-zero naming the needed and available bytes and
# the bottleneck layer; bad options give one error line.
# If the zoo packs exist beside the repo (../zoo-packs, or OCC_ZOO_PACKS),
# a model that streams (VGG-16 at 32M) is planned too.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2046
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/m.occ" --labels "$SRC/models/fmnist.labels" \
  $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null && ok || bad "pack"
head -c 3136 /dev/zero >"$T/x.bin"

# --- readable plan ---
if "$OCC" inspect "$T/m.occ" --plan --budget 4M >"$T/plan.txt" 2>"$T/err"; then
  grep -q '^plan .*occlumency, budget 4.00 MiB' "$T/plan.txt" && ok || bad "plan header"
  grep -qE '^ +[0-9]+  /conv1/Conv +Conv ' "$T/plan.txt" && ok || bad "plan has no conv1 row"
  grep -qE '^ +[0-9]+  /fc2/Gemm +Gemm ' "$T/plan.txt" && ok || bad "plan has no fc2 row"
  for w in 'arena (feature maps)' 'working buffer' 'streaming window' 'resident weights' 'peak ' 'segments '; do
    grep -q "^$w" "$T/plan.txt" && ok || bad "plan lacks '$w'"
  done
else
  bad "inspect --plan --budget 4M failed: $(cat "$T/err")"
fi

# --- JSON plan: self-consistent, within budget, and occ run's measured peak
# stays within the same budget ---
for b in 4M 768K; do
  if "$OCC" inspect "$T/m.occ" --plan --budget $b --json >"$T/plan.json" 2>"$T/err" &&
     "$OCC" run "$T/m.occ" --input "$T/x.bin" --mode occlumency --budget $b --stats --json \
       >"$T/run.json" 2>"$T/err"; then
    /usr/bin/python3 - "$T/plan.json" "$T/run.json" $b <<'PY' && ok || bad "plan json at $b"
import json, sys
p = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
budget = {"4M": 4 << 20, "768K": 768 << 10}[sys.argv[3]]
assert p["mode"] == "occlumency" and p["budget_bytes"] == budget, p
assert len(p["model_id"]) == 64 and p["model_id"] == r["model_id"]
parts = ["arena_bytes", "work_bytes", "window_bytes", "resident_bytes", "operator_bytes"]
assert p["peak_bytes"] == sum(p[k] for k in parts), p
assert 0 < p["peak_bytes"] <= budget, p
L = p["layers"]
assert [l["name"] for l in L][:1] == ["/conv1/Conv"], L[0]
assert sum(l["resident_bytes"] for l in L) <= p["resident_bytes"]
assert sum(l["streamed_bytes"] for l in L) == p["streamed_bytes"]
assert sum(l["resident_segments"] + l["streamed_segments"] for l in L) == p["segments"]
assert all(l["activation_bytes"] <= p["arena_bytes"] for l in L)
# occlumency places each step's working buffer in the arena (alive during its step)
assert max(l["work_bytes"] for l in L) <= p["work_bytes"] or \
    all(l["activation_bytes"] + l["work_bytes"] <= p["arena_bytes"] for l in L), L
assert p["segments_streamed"] == sum(l["streamed_segments"] for l in L)
# the engine's measured peak (creation and run) stays within the budget
assert r["budget_bytes"] == budget and 0 < r["peak_enclave_bytes"] <= budget, r
assert r["plan_peak_bytes"] == p["peak_bytes"], (r["plan_peak_bytes"], p["peak_bytes"])
PY
  else
    bad "plan/run at $b failed: $(cat "$T/err")"
  fi
done

# batch 4 keeps four images' feature maps
"$OCC" inspect "$T/m.occ" --plan --budget 4M --json >"$T/b1.json" 2>/dev/null &&
"$OCC" inspect "$T/m.occ" --plan --budget 4M --batch 4 --json >"$T/b4.json" 2>/dev/null &&
/usr/bin/python3 - "$T/b1.json" "$T/b4.json" <<'PY' && ok || bad "batch 4 plan"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert b["batch"] == 4 and a["batch"] == 1
assert b["arena_bytes"] > a["arena_bytes"], (a["arena_bytes"], b["arena_bytes"])
PY

# --- over budget: non-zero, needed/available bytes, bottleneck layer ---
expect_error "over budget" 'needs at least [0-9]+ bytes, 65536 available.*|layer .*needs at least [0-9]+ bytes, 65536 available' \
  "$OCC" inspect "$T/m.occ" --plan --budget 64K
grep -qE "layer /[A-Za-z0-9_/]+ \(" "$T/err" && ok || bad "over budget names no layer: $(cat "$T/err")"
[ ! -s "$T/out" ] && ok || bad "over budget printed a plan"
expect_error "over budget json" 'available' "$OCC" inspect "$T/m.occ" --plan --budget 64K --json

# --- bad options ---
expect_error "budget without plan" 'need --plan' "$OCC" inspect "$T/m.occ" --budget 32M
expect_error "bad budget" 'budget needs a size' "$OCC" inspect "$T/m.occ" --plan --budget lots
expect_error "zero budget" 'budget needs a size' "$OCC" inspect "$T/m.occ" --plan --budget 0
expect_error "batch 0" 'batch needs' "$OCC" inspect "$T/m.occ" --plan --batch 0
expect_error "budget no value" 'needs a value' "$OCC" inspect "$T/m.occ" --plan --budget
expect_error "missing model" '.' "$OCC" inspect "$T/none.occ" --plan

# --- a model that streams (optional: the zoo packs) ---
ZP=${OCC_ZOO_PACKS:-$SRC/../zoo-packs}
if [ -f "$ZP/vgg16.occ" ]; then
  if "$OCC" inspect "$ZP/vgg16.occ" --plan --budget 32M --json >"$T/vgg.json" 2>"$T/err"; then
    /usr/bin/python3 - "$T/vgg.json" <<'PY' && ok || bad "vgg16 32M plan"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["peak_bytes"] <= 32 << 20, p["peak_bytes"]
assert p["window_bytes"] > 0 and p["window_slots"] >= 2
assert p["streamed_bytes"] > 400 << 20, p["streamed_bytes"]   # most of 553 MB streams
fc = [l for l in p["layers"] if l["op"] == "Gemm"]
assert len(fc) == 3 and fc[0]["parts"] > 1 and fc[0]["streamed_segments"] > 0, fc[0]
PY
  else
    bad "vgg16 plan at 32M: $(cat "$T/err")"
  fi
  # batch 8 at 93M: the convolutions run image by image (eight images'
  # 224x224 maps alone would be 196 MiB), the Gemms once for the batch
  if "$OCC" inspect "$ZP/vgg16.occ" --plan --budget 93M --batch 8 --json >"$T/vgg8.json" 2>"$T/err"; then
    /usr/bin/python3 - "$T/vgg8.json" <<'PY' && ok || bad "vgg16 batch 8 93M plan"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["batch"] == 8 and 0 < p["peak_bytes"] <= 93 << 20, p["peak_bytes"]
assert p["arena_bytes"] < 64 << 20, p["arena_bytes"]
PY
  else
    bad "vgg16 batch 8 plan at 93M: $(cat "$T/err")"
  fi
else
  echo "note: no zoo packs at $ZP, skipping the streaming model"
fi

finish
