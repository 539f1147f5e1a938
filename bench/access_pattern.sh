#!/usr/bin/env bash
# Access-pattern check on real models (too slow for `make test` under ASan;
# tests/test_access_pattern.c does the same on the bundled model in ctest).
#
#   bench/access_pattern.sh [OCC_BIN] [ZOO_DIR] [PACKS_DIR]
#
# For each model (MODELS, default "resnet50 mobilenet_v2") and each setting:
#   occlumency at its default budget in a 93 MiB EPC (no paging), and
#   occlumency with an EPC smaller than its budget (CAP_SMALL, default 12M,
#   budget 93M: pages fault in every inference),
# runs `occ run --enclave emu --trace --repeat 1` on the zoo's reference
# input and on a second, different input (seeded noise), one compute thread,
# and compares the two traces of the inference after the warm-up byte for
# byte. Prints one line per
# case. Exit 0 when the traces without paging are identical, and the traces
# with paging are identical or — since there the loader thread and the
# compute thread fault concurrently and the scheduler orders their faults —
# have identical chunk-load order and identical sets of pages faulted.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC=${1:-$ROOT/build/release/occ}
ZOO=${2:-/work/zoo}
PACKS=${3:-$ZOO}
MODELS=${MODELS:-resnet50 mobilenet_v2}
CAP_SMALL=${CAP_SMALL:-12M}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rc=0
for m in $MODELS; do
  pack=$PACKS/$m.occ
  [ -s "$pack" ] || pack=$ZOO/$m.occ
  [ -s "$pack" ] || { "$OCC" pack "$ZOO/$m.onnx" -o "$T/$m.occ" --quiet; pack=$T/$m.occ; }
  cp "$ZOO/$m.input.bin" "$T/x1.bin"
  $PY -c "import numpy as np,os; n=os.path.getsize('$T/x1.bin')//4; np.random.default_rng(99).standard_normal(n).astype(np.float32).tofile('$T/x2.bin')"
  for setting in "fits:--epc 93M" "pages:--epc $CAP_SMALL --budget 93M"; do
    name=${setting%%:*} args=${setting#*:}
    for i in 1 2; do
      # shellcheck disable=SC2086
      # --repeat 1: the traced inference is the one after the warm-up
      "$OCC" run "$pack" --input "$T/x$i.bin" --enclave emu --mode occlumency $args --threads 1 \
        --repeat 1 --trace "$T/$m.$name.$i.trace" --top 1 --json --stats >"$T/$m.$name.$i.json"
    done
    same=no; cmp -s "$T/$m.$name.1.trace" "$T/$m.$name.2.trace" && same=yes
    s1=$($PY "$ROOT/tools/jsonfield.py" "$T/$m.$name.1.json" top.0.score)
    s2=$($PY "$ROOT/tools/jsonfield.py" "$T/$m.$name.2.json" top.0.score)
    diffout=yes; [ "$s1" = "$s2" ] && diffout=no
    ev=$(wc -l <"$T/$m.$name.1.trace")
    ch=$(grep -c '^chunk' "$T/$m.$name.1.trace" || true)
    fa=$(grep -c '^fault' "$T/$m.$name.1.trace" || true)
    ze=$(grep -c '^zero' "$T/$m.$name.1.trace" || true)
    # Where the loader thread and the compute thread fault concurrently the
    # order of faults is the scheduler's: then compare what it cannot change.
    proj=n/a
    if [ "$same" = no ]; then
      proj=no
      if cmp -s <(grep '^chunk' "$T/$m.$name.1.trace") <(grep '^chunk' "$T/$m.$name.2.trace") &&
         cmp -s <(grep -v '^chunk' "$T/$m.$name.1.trace" | sort -u) <(grep -v '^chunk' "$T/$m.$name.2.trace" | sort -u); then
        proj=yes
      fi
    fi
    echo "$m $name ($args): trace $ev events ($ch chunk loads, $fa faults, $ze first touches); identical for two inputs: $same; else chunk order + set of pages faulted identical: $proj; outputs differ: $diffout"
    if [ "$same" != yes ] && [ "$proj" != yes ]; then rc=1; fi
  done
done
exit $rc
