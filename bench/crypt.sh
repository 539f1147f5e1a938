#!/bin/bash
# Encrypted packs vs plain packs (issue 16): per zoo model, `occ run` in
# native mode and in occlumency mode at BUDGET with the plain pack and with
# the encrypted pack (same weights, --encrypt-key), interleaved round by
# round (the machine is shared and noisy); each round's `--repeat R` median
# is itself a median of R runs after a warm-up; the table reports the median
# over rounds, the bytes decrypted per inference (the stash segments the plan
# streams) and the create time (every chunk SHA-256-checked, and decrypted
# when encrypted). Then the primitives in isolation (`openssl speed`, one
# core) for the floor.
# usage: bench/crypt.sh [OCC] [PACKDIR] [ZOODIR]
#   env: THREADS=1 ROUNDS=5 REPEAT=10 BUDGET=93M MODELS="alexnet vgg16 resnet50 mobilenet_v2"
#        BEST=1: native also at --threads 1, and "native" is the faster of the two
#        (issue 16's "each at its best"; occlumency keeps THREADS)
set -u
echo "load before: $(uptime)" >&2
OCC=${1:-build/release/occ}
PACKS=${2:-build/crypt-packs}
ZOO=${3:-/work/zoo}
THREADS=${THREADS:-1}
BEST=${BEST:-0}
ROUNDS=${ROUNDS:-5}
REPEAT=${REPEAT:-10}
BUDGET=${BUDGET:-93M}
MODELS=${MODELS:-"alexnet vgg16 resnet50 mobilenet_v2"}
mkdir -p "$PACKS"
KEY="$PACKS/model.key"
for m in $MODELS; do
  [ -s "$PACKS/$m.occ" ] || "$OCC" pack "$ZOO/$m.onnx" -o "$PACKS/$m.occ" -q >/dev/null || exit 1
  [ -s "$PACKS/$m.enc.occ" ] || "$OCC" pack "$ZOO/$m.onnx" -o "$PACKS/$m.enc.occ" -q --encrypt-key "$KEY" >/dev/null 2>&1 || exit 1
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { grep "\"$1\"" | head -1 | sed 's/.*:[[:space:]]*//; s/,$//'; }
# measure ROUND MODEL CONF OUTFILE PACK RUN-ARGS...: median, create time, decrypted bytes
measure() {
  local r=$1 m=$2 c=$3 out=$4 pack=$5 j th=$THREADS; shift 5
  [ "$c" = native1 ] && th=1
  # shellcheck disable=SC2068
  j=$("$OCC" run "$pack" --input "$ZOO/$m.input.bin" $@ \
        --threads "$th" --repeat "$REPEAT" --stats --json 2>/dev/null) || { echo "$m $c failed" >&2; return 0; }
  local runs=$(echo "$j" | field runs)
  echo "$(echo "$j" | field median_ms) $(echo "$j" | field load_ms) $(echo "$j" | field bytes_decrypted) $runs" >> "$out"
  echo "round $r $m $c: $(echo "$j" | field median_ms) ms" >&2
}
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODELS; do
    measure "$r" "$m" native "$tmp/$m.0" "$PACKS/$m.occ" --mode native
    [ "$BEST" = 1 ] && measure "$r" "$m" native1 "$tmp/$m.3" "$PACKS/$m.occ" --mode native
    measure "$r" "$m" plain "$tmp/$m.1" "$PACKS/$m.occ" --mode occlumency --budget "$BUDGET"
    measure "$r" "$m" encrypted "$tmp/$m.2" "$PACKS/$m.enc.occ" --mode occlumency --budget "$BUDGET" --key "$KEY"
  done
done
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf "| model | native ms | occ %s plain ms | occ %s encrypted ms | encrypted / plain | encrypted / native | decrypted per inference MiB | create plain / encrypted ms |\n|---|---|---|---|---|---|---|---|\n" "$BUDGET" "$BUDGET"
for m in $MODELS; do
  [ -s "$tmp/$m.0" ] && [ -s "$tmp/$m.1" ] && [ -s "$tmp/$m.2" ] || continue
  a=$(cut -d' ' -f1 "$tmp/$m.0" | med); b=$(cut -d' ' -f1 "$tmp/$m.1" | med); c=$(cut -d' ' -f1 "$tmp/$m.2" | med)
  if [ -s "$tmp/$m.3" ]; then a1=$(cut -d' ' -f1 "$tmp/$m.3" | med); a=$(awk -v a="$a" -v b="$a1" 'BEGIN{print (b < a) ? b : a}'); fi
  lb=$(cut -d' ' -f2 "$tmp/$m.1" | med); lc=$(cut -d' ' -f2 "$tmp/$m.2" | med)
  # bytes decrypted per inference: the stash segments the plan streams (each
  # copied in and AES-256-GCM-decrypted); one encrypted `occ run` decrypts
  # every chunk once at create plus that per inference (its bytes_decrypted)
  per=$("$OCC" inspect "$PACKS/$m.enc.occ" --plan --budget "$BUDGET" --threads "$THREADS" --key "$KEY" --json | field streamed_bytes)
  total=$(head -1 "$tmp/$m.2" | cut -d' ' -f3); runs=$(head -1 "$tmp/$m.2" | cut -d' ' -f4)
  awk -v m="$m" -v a="$a" -v b="$b" -v c="$c" -v lb="$lb" -v lc="$lc" -v per="$per" -v t="$total" -v runs="$runs" \
    'BEGIN{printf "| %s | %.1f | %.1f | %.1f | %.3f | %.2f | %.1f (run total %.0f over %d+1) | %.0f / %.0f |\n", m, a, b, c, c/b, c/a, per/1048576, t/1048576, runs, lb, lc}'
done
echo
echo "primitives in isolation (openssl speed, one core, 64 KiB and 16 KiB blocks; k = 1000 bytes/s):"
openssl speed -seconds 2 -bytes 65536 -evp aes-256-gcm 2>/dev/null | tail -1
openssl speed -seconds 2 -bytes 16384 -evp aes-256-gcm 2>/dev/null | tail -1
openssl speed -seconds 2 -bytes 65536 -evp chacha20-poly1305 2>/dev/null | tail -1
openssl speed -seconds 2 -bytes 65536 sha256 2>/dev/null | tail -1
echo "load after: $(uptime)" >&2
