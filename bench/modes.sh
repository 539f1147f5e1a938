#!/bin/bash
# Occlumency vs native latency (issue 3): every zoo model, native and
# occlumency at 93M and 32M, same threads, batch 1; configurations are
# interleaved round by round (the machine is shared and noisy) and each
# round's `occ run --repeat R` median is itself a median of R runs after a
# warm-up; the table reports the median over rounds.
# usage: bench/modes.sh [OCC] [PACKDIR] [ZOODIR]   env: THREADS=1 ROUNDS=3 REPEAT=10 MODELS="..."
#        BATCH_MODELS="vgg16" BATCH=8: afterwards, native vs occlumency 93M at
#        --batch BATCH, interleaved the same way (BATCH_MODELS="" skips it)
# Each side at its best (issue 14: native at its best of 1 and 2 threads vs
# occ run's defaults) is bench/allcores.sh.
# occ sets libgomp's spin count itself (src/cli/main.c); an OMP_WAIT_POLICY
# or GOMP_SPINCOUNT in the environment is kept as given.
set -u
echo "load before: $(uptime)" >&2
OCC=${1:-build/occ3/occ}
PACKS=${2:-/work/zoo-packs}
ZOO=${3:-/work/zoo}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
REPEAT=${REPEAT:-10}
MODELS=${MODELS:-"alexnet vgg16 vgg19 resnet50 resnet101 resnet152 googlenet squeezenet1_0 mobilenet_v2"}
CONFS=("native" "occlumency --budget 93M" "occlumency --budget 32M")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { grep "\"$1\"" | head -1 | sed 's/.*:[[:space:]]*//; s/,$//'; }
# measure ROUND MODEL OUTFILE RUN-ARGS...: one `occ run`, its median and peak appended to OUTFILE
measure() {
  local r=$1 m=$2 out=$3 j; shift 3
  # shellcheck disable=SC2068
  local p=$PACKS/$m.occ
  [ -f "$p" ] || p=${EXTRA_PACKS:-build/packs}/$m.occ
  # shellcheck disable=SC2068
  j=$("$OCC" run "$p" --input "$ZOO/$m.input.bin" $@ \
        --repeat "$REPEAT" --stats --json 2>/dev/null) || { echo "$m $* failed" >&2; return 0; }
  echo "$(echo "$j" | field median_ms) $(echo "$j" | field peak_enclave_bytes)" >> "$out"
  echo "round $r $m $*: $(echo "$j" | field median_ms) ms" >&2
}
med() { sort -g | awk '{a[NR]=$1} END {if (!NR) print "-"; else print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODELS; do
    for c in 0 1 2; do measure "$r" "$m" "$tmp/$m.$c" --mode ${CONFS[$c]} --threads "$THREADS"; done
  done
done
printf "| model | native ms | occ 93M ms | ratio 93M | occ 32M ms | ratio 32M | peak 93M MiB | peak 32M MiB |\n|---|---|---|---|---|---|---|---|\n"
g93=0; g32=0; n=0
for m in $MODELS; do
  [ -s "$tmp/$m.0" ] && [ -s "$tmp/$m.1" ] && [ -s "$tmp/$m.2" ] || continue
  a=$(cut -d' ' -f1 "$tmp/$m.0" | med); b=$(cut -d' ' -f1 "$tmp/$m.1" | med); c=$(cut -d' ' -f1 "$tmp/$m.2" | med)
  p1=$(cut -d' ' -f2 "$tmp/$m.1" | sort -g | tail -1); p2=$(cut -d' ' -f2 "$tmp/$m.2" | sort -g | tail -1)
  read r1 r2 <<<"$(awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN{printf "%.3f %.3f", b/a, c/a}')"
  g93=$(awk -v g="$g93" -v r="$r1" 'BEGIN{print g+log(r)}'); g32=$(awk -v g="$g32" -v r="$r2" 'BEGIN{print g+log(r)}'); n=$((n+1))
  awk -v m="$m" -v a="$a" -v b="$b" -v c="$c" -v r1="$r1" -v r2="$r2" -v p1="$p1" -v p2="$p2" \
    'BEGIN{printf "| %s | %.1f | %.1f | %.2f | %.1f | %.2f | %.1f | %.1f |\n", m, a, b, r1, c, r2, p1/1048576, p2/1048576}'
done
[ "$n" -gt 0 ] && awk -v g1="$g93" -v g2="$g32" -v n="$n" 'BEGIN{printf "| **geomean** | | | **%.2f** | | **%.2f** | | |\n", exp(g1/n), exp(g2/n)}'
# batch: each streamed FC segment is loaded once for the batch in occlumency
BATCH=${BATCH:-8}
BATCH_MODELS=${BATCH_MODELS-vgg16}
BCONFS=("native" "occlumency --budget 93M")
for r in $(seq 1 "$ROUNDS"); do
  for m in $BATCH_MODELS; do
    for c in 0 1; do measure "$r" "$m" "$tmp/$m.b$c" --mode ${BCONFS[$c]} --threads "$THREADS" --batch "$BATCH"; done
  done
done
for m in $BATCH_MODELS; do
  [ -s "$tmp/$m.b0" ] && [ -s "$tmp/$m.b1" ] || continue
  a=$(cut -d' ' -f1 "$tmp/$m.b0" | med); b=$(cut -d' ' -f1 "$tmp/$m.b1" | med)
  p1=$(cut -d' ' -f2 "$tmp/$m.b1" | sort -g | tail -1)
  one=$( [ -s "$tmp/$m.0" ] && cut -d' ' -f1 "$tmp/$m.0" | med || echo 0)
  awk -v m="$m" -v a="$a" -v b="$b" -v p1="$p1" -v n="$BATCH" -v one="$one" \
    'BEGIN{printf "| %s batch %d | %.1f | %.1f | %.2f | | | %.1f | |\n", m, n, a, b, b/a, p1/1048576;
           if (one > 0) printf "(%s batch %d at 93M vs %d x native batch 1 = %.1f ms: %.2f; per image %.1f ms)\n", m, n, n, n*one, b/(n*one), b/n}'
done
echo "load after: $(uptime)" >&2
