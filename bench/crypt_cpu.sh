#!/bin/bash
# CPU cost of encrypted packs, robust to a loaded machine: CPU seconds
# (user + sys, both threads: compute and loader) of `occ run --mode
# occlumency --budget BUDGET` with --repeat 1 and --repeat 11 (2 and 12
# inferences), plain and encrypted pack, interleaved; the slope / 10 is the
# CPU per inference, and encrypted minus plain the decrypt's extra work
# (copy + AES-GCM instead of copy + Poly1305 for the same streamed bytes).
# usage: bench/crypt_cpu.sh [OCC] [PACKDIR] [ZOODIR]   (packs made by bench/crypt.sh)
#   env: ROUNDS=3 BUDGET=93M MODELS="alexnet vgg16 resnet50"
set -u
OCC=$(realpath "${1:-build/release/occ}")
PACKS=${2:-build/crypt-packs}
ZOO=${3:-/work/zoo}
ROUNDS=${ROUNDS:-3}
BUDGET=${BUDGET:-93M}
MODELS=${MODELS:-"alexnet vgg16 resnet50"}
echo "load before: $(uptime)" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for m in $MODELS; do
    for p in plain enc; do
      pack="$PACKS/$m.occ"; key=()
      [ $p = enc ] && { pack="$PACKS/$m.enc.occ"; key=(--key "$PACKS/model.key"); }
      for n in 1 11; do
        t=$( { /usr/bin/time -f "%U %S" "$OCC" run "$pack" --input "$ZOO/$m.input.bin" --mode occlumency \
               --budget "$BUDGET" --threads 1 "${key[@]}" --repeat $n --top 1 >/dev/null; } 2>&1 | tail -1)
        echo "$r $m $p $n $t" >> "$out"
      done
    done
  done
done
/usr/bin/python3 - "$out" <<'PY'
import collections, statistics, sys
d = collections.defaultdict(dict)
for l in open(sys.argv[1]):
    r, m, p, n, u, s = l.split()
    d[(r, m, p)][int(n)] = float(u) + float(s)
sl = collections.defaultdict(list)
for (r, m, p), v in sorted(d.items()):
    sl[(m, p)].append((v[11] - v[1]) / 10 * 1000)
print("| model | CPU ms per inference, plain | encrypted | extra (median of per-round differences) |")
print("|---|---|---|---|")
for m in dict.fromkeys(k[0] for k in sl):
    a, b = sl[(m, "plain")], sl[(m, "enc")]
    print("| %s | %.0f | %.0f | %+.0f (rounds: %s) |" % (m, statistics.median(a), statistics.median(b),
          statistics.median([y - x for x, y in zip(a, b)]), ", ".join("%+.0f" % (y - x) for x, y in zip(a, b))))
PY
echo "load after: $(uptime)" >&2
