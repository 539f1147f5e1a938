#!/usr/bin/env bash
# BERT's words in the emulated enclave (issue 13, docs/security.md
# "Embedding lookups"): two different sentences (other ids, other mask
# lengths), each in its own process and emulated EPC, occlumency at a 32 MiB
# budget, one compute thread; compares the traced inference after the
# warm-up: weight-chunk load order, and the multiset of page events.
#   bench/seq_trace.sh [OCC_BIN] [SEQZOO] [PACK]     (EPC=93M BUDGET=32M)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC=${1:-$ROOT/build/release/occ}
Z=${2:-/work/seqzoo}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
PACK=${3:-$T/bert_base.occ}
[ -s "$PACK" ] || "$OCC" pack "$Z/bert_base.onnx" -o "$PACK" >/dev/null
EPC=${EPC:-93M} BUDGET=${BUDGET:-32M}
# sentence 2: other ids (in the 30,522-word table), 60 tokens instead of 96
python3 - "$T" <<'PY'
import struct, sys
t = sys.argv[1]
ids = [101] + [(i * 7919 + 1000) % 29000 + 1000 for i in range(1, 127)] + [102]
open(t + '/ids2.bin', 'wb').write(struct.pack('<128q', *ids))
open(t + '/mask2.bin', 'wb').write(struct.pack('<128q', *([1] * 60 + [0] * 68)))
PY
run() {
  "$OCC" run "$PACK" --input input_ids="$1" --input attention_mask="$2" --enclave emu --epc "$EPC" \
    --mode occlumency --budget "$BUDGET" --threads 1 --repeat 1 --trace "$3" --output "$4" >/dev/null 2>&1
}
run "$Z/bert_base.input_ids.bin" "$Z/bert_base.attention_mask.bin" "$T/t1" "$T/y1"
run "$T/ids2.bin" "$T/mask2.bin" "$T/t2" "$T/y2"
grep '^chunk' "$T/t1" > "$T/c1" || true
grep '^chunk' "$T/t2" > "$T/c2" || true
grep -v '^chunk' "$T/t1" | sort > "$T/p1" || true
grep -v '^chunk' "$T/t2" | sort > "$T/p2" || true
same_c=$(cmp -s "$T/c1" "$T/c2" && echo same || echo DIFFERENT)
same_p=$(cmp -s "$T/p1" "$T/p2" && echo same || echo DIFFERENT)
outs=$(cmp -s "$T/y1" "$T/y2" && echo "SAME (suspicious)" || echo differ)
echo "bert_base epc $EPC budget $BUDGET: $(wc -l < "$T/c1") chunk events, order $same_c;" \
     "$(wc -l < "$T/p1") page events, multiset $same_p; outputs $outs"
[ "$same_c" = same ] && [ "$same_p" = same ]
