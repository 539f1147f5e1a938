#!/usr/bin/env bash
# Native-mode speed: occ vs ONNX Runtime (CPU), batch 1, side by side.
#
#   bench/native.sh [OCC_BIN] [ZOO_DIR] [OUT.md]        (make bench-native)
#
# For each model and thread count (1 and 2), runs `occ run --repeat N --stats
# --json` and `node tools/ort/run.js --repeat N` alternately, ROUNDS times each
# (interleaved, so drift in machine load hits both alike); every invocation
# does 1 warm-up run then REPEAT timed runs and reports its median. The figure
# reported is the median of the per-round medians; peak RSS is /usr/bin/time's
# maximum resident set size of the whole process (the largest over rounds; the
# ORT figure includes node itself, ~45 MB).
# Writes a Markdown table to stdout and to OUT.md (default build/bench-native.md),
# and every round's figures to OUT.csv (same name, .csv) so the spread is visible.
# The load average before and after is in the header: other work on the
# machine (a build, another benchmark) skews the 2-thread figures most.
#
# Environment: MODELS, THREADS (default "1 2"), REPEAT (default 10),
# ROUNDS (default 3), WORK_DIR (packs, default build/bench).
# The models must already be exported into ZOO_DIR (make check-zoo does it,
# or tools/export_models.py ZOO_DIR NAME...).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
ZOO_DIR=${2:-$ROOT/build/zoo}
OUT_MD=${3:-$ROOT/build/bench-native.md}
MODELS=${MODELS:-resnet50 vgg16 mobilenet_v2 googlenet alexnet squeezenet1_0}
THREADS=${THREADS:-1 2}
REPEAT=${REPEAT:-10}
ROUNDS=${ROUNDS:-3}
WORK_DIR=${WORK_DIR:-$ROOT/build/bench}
PY=/usr/bin/python3
ORT_RUN=$ROOT/tools/ort/run.js
TIME=/usr/bin/time

die() { echo "bench-native: $*" >&2; exit 2; }

[[ -x $OCC_BIN ]] || die "occ binary not found: $OCC_BIN (run make build)"
[[ -x $TIME ]] || die "$TIME missing (Debian package 'time'; bash scripts/install-deps.sh)"
[[ -d $ROOT/tools/ort/node_modules/onnxruntime-node ]] ||
  die "onnxruntime-node missing (bash scripts/install-deps.sh)"
((REPEAT >= 10)) || echo "bench-native: warning: REPEAT=$REPEAT < 10" >&2
cache=${OCC_ZOO_CACHE-$ROOT/../zoo}   # shared export cache, as in scripts/check-zoo.sh
if [[ ! -e $ZOO_DIR && -n $cache && -d $cache ]]; then
  echo "bench-native: $ZOO_DIR missing, using $cache" >&2
  ZOO_DIR=$cache
fi
mkdir -p "$WORK_DIR" "$(dirname "$OUT_MD")"
read -r -a model_list <<<"$MODELS"
read -r -a thread_list <<<"$THREADS"
for m in "${model_list[@]}"; do
  for f in "$m.onnx" "$m.input.bin"; do
    [[ -s $ZOO_DIR/$f ]] || die "$ZOO_DIR/$f missing: export the zoo first (make check-zoo ZOO_DIR=$ZOO_DIR)"
  done
done

# median_ms from the last JSON object of a tool's stdout (may be pretty-printed)
median_of() { "$PY" "$ROOT/tools/jsonfield.py" "$1" median_ms; }
median_list() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
max_list() { printf '%s\n' "$@" | sort -g | tail -n1; }

# timed LABEL OUTFILE CMD...: runs CMD under /usr/bin/time, stdout to OUTFILE;
# sets RSS_KB. Fails loudly with the tool's stderr.
timed() {
  local label=$1 out=$2; shift 2
  local err=$WORK_DIR/.stderr rss=$WORK_DIR/.rss
  if ! "$TIME" -f %M -o "$rss" "$@" >"$out" 2>"$err"; then
    echo "bench-native: $label failed:" >&2
    tail -n 20 "$err" >&2
    exit 1
  fi
  RSS_KB=$(tail -n1 "$rss")
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
ort_ver=$(node -p "require('$ROOT/tools/ort/node_modules/onnxruntime-node/package.json').version" 2>/dev/null || echo '?')
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')

OUT_CSV=${OUT_MD%.md}.csv
echo "model,threads,round,occ_ms,ort_ms,occ_rss_kb,ort_rss_kb" >"$OUT_CSV"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
declare -A ratios
for m in "${model_list[@]}"; do
  pack=$WORK_DIR/$m.occ
  echo "bench-native: packing $m" >&2
  "$OCC_BIN" pack "$ZOO_DIR/$m.onnx" -o "$pack" >"$WORK_DIR/$m.pack.log" 2>&1 ||
    { tail -n 20 "$WORK_DIR/$m.pack.log" >&2; die "occ pack $m failed"; }
  for t in "${thread_list[@]}"; do
    occ_ms=() ort_ms=() occ_rss=() ort_rss=()
    for ((r = 1; r <= ROUNDS; r++)); do
      echo "bench-native: $m threads=$t round $r/$ROUNDS" >&2
      timed "occ $m t=$t" "$WORK_DIR/occ.json" "$OCC_BIN" run "$pack" \
        --input "$ZOO_DIR/$m.input.bin" --output "$WORK_DIR/$m.occ.out.bin" \
        --threads "$t" --repeat "$REPEAT" --stats --json
      occ_ms+=("$(median_of "$WORK_DIR/occ.json")"); occ_rss+=("$RSS_KB")
      timed "ORT $m t=$t" "$WORK_DIR/ort.json" node "$ORT_RUN" "$ZOO_DIR/$m.onnx" \
        --input "$ZOO_DIR/$m.input.bin" --output "$WORK_DIR/$m.ort.out.bin" \
        --threads "$t" --repeat "$REPEAT"
      ort_ms+=("$(median_of "$WORK_DIR/ort.json")"); ort_rss+=("$RSS_KB")
      echo "$m,$t,$r,${occ_ms[-1]},${ort_ms[-1]},${occ_rss[-1]},${ort_rss[-1]}" >>"$OUT_CSV"
    done
    o=$(median_list "${occ_ms[@]}")
    n=$(median_list "${ort_ms[@]}")
    ratio=$(awk -v a="$o" -v b="$n" 'BEGIN{printf "%.3f", a/b}')
    ratios[$t]="${ratios[$t]:-} $ratio"
    rows+=("$(awk -v m="$m" -v t="$t" -v o="$o" -v n="$n" -v r="$ratio" \
      -v ro="$(max_list "${occ_rss[@]}")" -v rn="$(max_list "${ort_rss[@]}")" \
      'BEGIN{printf "| %s | %d | %.2f | %.2f | %.2f | %.0f | %.0f |", m, t, o, n, r, ro/1024, rn/1024}')")
  done
done

{
  echo "## Native mode: occ vs ONNX Runtime (batch 1)"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores ($cpu), occ $commit, onnxruntime-node $ort_ver;"
  echo "median of $ROUNDS interleaved rounds x (1 warm-up + $REPEAT runs); ratio < 1 means occ is faster;"
  echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg); per-round figures: $(basename "$OUT_CSV")."
  echo
  echo "| model | threads | occ ms | ORT ms | occ/ORT | occ peak RSS MB | ORT peak RSS MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  for t in "${thread_list[@]}"; do
    # shellcheck disable=SC2086  # word splitting of the ratio list is intended
    printf '%s\n' ${ratios[$t]} | awk -v t="$t" '{s+=log($1); n++}
      END{printf "| **geometric mean** | %d | | | **%.2f** | | |\n", t, exp(s/n)}'
  done
} | tee "$OUT_MD"
echo "bench-native: written to $OUT_MD and $OUT_CSV" >&2
