#!/usr/bin/env bash
# Sequence models (issue 13): occ run (native, 1 and 2 threads) vs ONNX
# Runtime, and occlumency at 93M and 32M (1 compute thread + 1 loader),
# interleaved per round; prints one line per model and configuration with the
# median over rounds of each run's median.
#   bench/seq.sh [OCC_BIN] [SEQZOO] [PACKS]     (ROUNDS=3 REPEAT=5 MODELS=...)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC=${1:-$ROOT/build/release/occ}
Z=${2:-/work/seqzoo}
P=${3:-$Z}
ROUNDS=${ROUNDS:-3} REPEAT=${REPEAT:-5}
MODELS=${MODELS:-bert_base vit_b_16 wav2vec2_base lstm_kws}
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
med() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
occj() { "$OCC" run "$@" --repeat "$REPEAT" --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])'; }
for r in $(seq "$ROUNDS"); do
  for m in $MODELS; do
    pk=$P/$m.occ
    # shellcheck disable=SC2086
    {
      echo "$m occ_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1)"
      echo "$m ort_t1 $(node "$ROOT/bench/ort_named.js" "$Z/$m.onnx" ${ORTIN[$m]} --threads 1 --repeat "$REPEAT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')"
      echo "$m occ_t2 $(occj "$pk" ${OCCIN[$m]} --threads 2)"
      echo "$m ort_t2 $(node "$ROOT/bench/ort_named.js" "$Z/$m.onnx" ${ORTIN[$m]} --threads 2 --repeat "$REPEAT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')"
      echo "$m occ93_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1 --mode occlumency --budget 93M)"
      echo "$m occ32_t1 $(occj "$pk" ${OCCIN[$m]} --threads 1 --mode occlumency --budget 32M)"
    } >> "$T/raw"
  done
  echo "round $r done ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
for m in $MODELS; do
  for c in occ_t1 ort_t1 occ_t2 ort_t2 occ93_t1 occ32_t1; do
    echo "$m $c $(awk -v m="$m" -v c="$c" '$1==m && $2==c {print $3}' "$T/raw" | med)"
  done
done
