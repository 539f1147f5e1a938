#!/usr/bin/env bash
# Sequence models (issue 13): occ run (native, 1 and 2 threads) vs ONNX
# Runtime, and occlumency at 93M and 32M (1 compute thread + 1 loader),
# interleaved per round; prints one line per model and configuration with the
# median over rounds of each run's median.
#   bench/seq.sh [OCC_BIN] [SEQZOO] [PACKS]     (ROUNDS=3 REPEAT=5 MODELS=... CONFIGS=...)
# CONFIGS (default all six: occ_t1 ort_t1 occ_t2 ort_t2 occ93_t1 occ32_t1)
# picks some, e.g. CONFIGS="occ_t1 ort_t1 occ_t2 ort_t2" for native vs ORT
# only. OCC_B=other/occ adds "occB_t1 occB_t2": a second build, interleaved
# in the same rounds (old vs new), on packs from PACKS_B (default PACKS: a
# build whose packer rewrites differently needs its own). CHECK=1 also
# compares occ's native output with PyTorch's (max|d|/max|ref|, bar 1e-3)
# and occlumency's with native's.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC=${1:-$ROOT/build/release/occ}
Z=${2:-/work/seqzoo}
P=${3:-$Z}
ROUNDS=${ROUNDS:-3} REPEAT=${REPEAT:-5}
MODELS=${MODELS:-bert_base vit_b_16 wav2vec2_base lstm_kws}
CONFIGS=${CONFIGS:-occ_t1 ort_t1 occ_t2 ort_t2 occ93_t1 occ32_t1}
OCC_B=${OCC_B:-}
PB=${PACKS_B:-$P}
[ -n "$OCC_B" ] && CONFIGS="$CONFIGS occB_t1 occB_t2"
has() { case " $CONFIGS " in *" $1 "*) return 0;; esac; return 1; }
declare -A OCCIN=(
  [bert_base]="--input input_ids=$Z/bert_base.input_ids.bin --input attention_mask=$Z/bert_base.attention_mask.bin"
  [vit_b_16]="--input $Z/vit_b_16.input.bin"
  [wav2vec2_base]="--input $Z/wav2vec2_base.waveform.bin"
  [lstm_kws]="--input $Z/lstm_kws.mfcc.bin")
declare -A ORTIN=(
  [bert_base]="--input input_ids=$Z/bert_base.input_ids.bin:int64:1,128 --input attention_mask=$Z/bert_base.attention_mask.bin:int64:1,128"
  [vit_b_16]="--input input=$Z/vit_b_16.input.bin:float32:1,3,224,224"
  [wav2vec2_base]="--input waveform=$Z/wav2vec2_base.waveform.bin:float32:1,16000"
  [lstm_kws]="--input mfcc=$Z/lstm_kws.mfcc.bin:float32:1,98,40")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
touch "$T/raw"
if [ "${CHECK:-0}" = 1 ]; then
  for m in $MODELS; do
    # shellcheck disable=SC2086
    "$OCC" run "$P/$m.occ" ${OCCIN[$m]} --threads 2 --output "$T/$m.native.bin" >/dev/null
    echo "$m native vs PyTorch: $(/usr/bin/python3 "$ROOT/tools/compare.py" "$T/$m.native.bin" "$Z/$m.output.bin" --tol 1e-3 || true)"
    for b in 93M 32M; do
      # shellcheck disable=SC2086
      "$OCC" run "$P/$m.occ" ${OCCIN[$m]} --threads 1 --mode occlumency --budget $b --output "$T/$m.$b.bin" >/dev/null
      echo "$m occlumency $b vs native: $(/usr/bin/python3 "$ROOT/tools/compare.py" "$T/$m.$b.bin" "$T/$m.native.bin" --tol 1e-5 || true)"
    done
  done
fi
med() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ortj() { node "$ROOT/bench/ort_named.js" "$Z/$1.onnx" ${ORTIN[$1]} --threads "$2" --repeat "$REPEAT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])'; }
occj() { "$OCC" run "$@" --repeat "$REPEAT" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])'; }
for r in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    pk=$P/$m.occ
    # shellcheck disable=SC2086
    {
      has occ_t1 && echo "$m occ_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1)"
      has occB_t1 && echo "$m occB_t1 $(OCC=$OCC_B occj "$PB/$m.occ" ${OCCIN[$m]} --threads 1)"
      has ort_t1 && echo "$m ort_t1 $(ortj "$m" 1)"
      has occ_t2 && echo "$m occ_t2 $(occj "$pk" ${OCCIN[$m]} --threads 2)"
      has occB_t2 && echo "$m occB_t2 $(OCC=$OCC_B occj "$PB/$m.occ" ${OCCIN[$m]} --threads 2)"
      has ort_t2 && echo "$m ort_t2 $(ortj "$m" 2)"
      has occ93_t1 && echo "$m occ93_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1 --mode occlumency --budget 93M)"
      has occ32_t1 && echo "$m occ32_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1 --mode occlumency --budget 32M)"
      true
    } >> "$T/raw"
  done
  echo "round $r done ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
for m in $MODELS; do
  for c in $CONFIGS; do
    echo "$m $c $(awk -v m="$m" -v c="$c" '$1==m && $2==c {print $3}' "$T/raw" | med)"
  done
done
# ratios: occ/ORT at 1 and 2 threads, geometric means over the models
awk -v cf=" $CONFIGS " '
  {v[$1" "$2]=$3; if (!($1 in seen)) {seen[$1]=1; ms[++n]=$1}}
  END {
    for (t=1; t<=2; t++) {
      if (index(cf, " occ_t" t " ") == 0 || index(cf, " ort_t" t " ") == 0) continue
      g=0; k=0; line=""
      for (i=1; i<=n; i++) { o=v[ms[i]" occ_t" t]; r=v[ms[i]" ort_t" t]
        if (o>0 && r>0) { q=o/r; g+=log(q); k++; line=line sprintf(" %s %.2f", ms[i], q) } }
      if (k) printf "occ/ORT t%d:%s  geomean %.2f\n", t, line, exp(g/k)
    }
  }' < <(for m in $MODELS; do for c in $CONFIGS; do
           echo "$m $c $(awk -v m="$m" -v c="$c" '$1==m && $2==c {print $3}' "$T/raw" | med)"; done; done)
