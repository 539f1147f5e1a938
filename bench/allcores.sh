#!/usr/bin/env bash
# Issue 14's latency bars in one interleaved run: for each zoo model, batch 1,
#   native --threads 1, native --threads 2      (native at its best = the faster)
#   occlumency with occ run's defaults at 93M and at 32M (no --threads)
#   occlumency --threads 2 at 93M               (same threads as native t2)
# round by round, so drift in machine load hits every configuration alike.
# Each invocation does 1 warm-up + REPEAT timed runs and reports its median;
# the table shows the median over ROUNDS of those, and the ratios:
#   93M/best and 32M/best (defaults vs native at its best), t2 93M / native t2.
#
#   bench/allcores.sh [OCC] [PACKDIR] [ZOODIR]
#   env: MODELS (the nine), ROUNDS (3), REPEAT (7), EXTRA_ENV (e.g.
#        "OCC_FUSED_FC=0", applied to the occlumency runs only)
# Packs: PACKDIR/NAME.occ (occ pack ZOODIR/NAME.onnx -o PACKDIR/NAME.occ).
set -u
OCC=${1:-build/release/occ}
PACKS=${2:-build/packs}
ZOO=${3:-build/zoo}
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-7}
MODELS=${MODELS:-"alexnet vgg16 vgg19 resnet50 resnet101 resnet152 googlenet squeezenet1_0 mobilenet_v2"}
EXTRA_ENV=${EXTRA_ENV:-}
CONFS=("native --threads 1" "native --threads 2" "occlumency --budget 93M"
       "occlumency --budget 32M" "occlumency --budget 93M --threads 2")
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
     "isa: $(grep -o -w -m1 -E 'avx512f' /proc/cpuinfo | head -1 || true)$(grep -q avx512f /proc/cpuinfo || echo avx2)"
echo "occ $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # model conf-index -> median ms (empty on failure)
  local m=$1 c=$2 envs=""
  [ "$c" -ge 2 ] && envs=$EXTRA_ENV
  # shellcheck disable=SC2086
  env $envs "$OCC" run "$PACKS/$m.occ" --input "$ZOO/$m.input.bin" --mode ${CONFS[$c]} \
      --repeat "$REPEAT" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])' 2>/dev/null
}
for r in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    for c in 0 1 2 3 4; do
      v=$(run "$m" "$c")
      [ -n "$v" ] && echo "$v" >> "$T/$m.$c"
      echo "round $r $m ${CONFS[$c]}: ${v:-failed}" >&2
    done
  done
done
med() { sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); median of $ROUNDS rounds x (1 warm-up + $REPEAT runs)"
echo
echo "| model | native t1 ms | native t2 ms | occ 93M ms | occ 32M ms | occ t2 93M ms | 93M/best | 32M/best | t2: 93M/native |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
/usr/bin/python3 - "$T" $MODELS <<'EOF'
import math, os, statistics, sys
d, models = sys.argv[1], sys.argv[2:]
def med(m, c):
    p = os.path.join(d, f"{m}.{c}")
    if not os.path.exists(p):
        return None
    v = [float(x) for x in open(p) if x.strip()]
    return statistics.median(v) if v else None
logs = {"93": [], "32": [], "t2": []}
for m in models:
    v = [med(m, c) for c in range(5)]
    best = min(x for x in v[:2] if x) if any(v[:2]) else None
    r93 = v[2] / best if v[2] and best else None
    r32 = v[3] / best if v[3] and best else None
    rt2 = v[4] / v[1] if v[4] and v[1] else None
    for k, r in (("93", r93), ("32", r32), ("t2", rt2)):
        if r:
            logs[k].append(math.log(r))
    f = lambda x, p=1: "-" if x is None else f"{x:.{p}f}"
    print(f"| {m} | {f(v[0])} | {f(v[1])} | {f(v[2])} | {f(v[3])} | {f(v[4])} | "
          f"{f(r93, 2)} | {f(r32, 2)} | {f(rt2, 2)} |")
g = lambda k: f"**{math.exp(sum(logs[k]) / len(logs[k])):.2f}** ({len(logs[k])})" if logs[k] else "-"
print(f"| **geomean** | | | | | | {g('93')} | {g('32')} | {g('t2')} |")
EOF
