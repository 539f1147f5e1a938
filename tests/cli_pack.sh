#!/usr/bin/env bash
# `occ pack` as a user runs it, on a model exported by torch: the zoo's
# squeezenet1_0/mobilenet_v2 when exported (tools/export_models.py), else a
# tiny model exported here with /usr/bin/python3 + torch; skipped (exit 0, with
# a SKIP line) when neither is available. OCC_PACK_ZOO_ALL=1 packs every
# model of the zoo.
set -u
OCC=${OCC_BIN:-build/release/occ}
SRC=${OCC_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d /tmp/occ-cli-pack.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

[ -x "$OCC" ] || { echo "FAIL: occ binary not found at $OCC"; exit 1; }

zoo=""
for d in "${OCC_ZOO:-}" "$SRC/build/zoo" "$SRC/../zoo"; do
  [ -n "$d" ] && [ -d "$d" ] && zoo=$d && break
done
model=""
for m in squeezenet1_0 mobilenet_v2; do
  if [ -n "$zoo" ] && [ -f "$zoo/$m.onnx" ]; then model="$zoo/$m.onnx"; break; fi
done
if [ -z "$model" ]; then
  if /usr/bin/python3 -c 'import torch, onnx' 2>/dev/null; then
    /usr/bin/python3 - "$tmp/tiny.onnx" <<'EOF' >/dev/null 2>&1
import sys, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.c = nn.Conv2d(3, 8, 3, padding=1); s.bn = nn.BatchNorm2d(8); s.fc = nn.Linear(8 * 16, 10)
    def forward(s, x):
        x = F.max_pool2d(F.relu(s.bn(s.c(x))), 2)
        return s.fc(F.dropout(x.view(x.size(0), -1), 0.5, s.training))
m = M().eval()
torch.onnx.export(m, torch.randn(1, 3, 8, 8), sys.argv[1], opset_version=13,
                  do_constant_folding=False, input_names=["input"], output_names=["output"])
EOF
    [ -f "$tmp/tiny.onnx" ] && model="$tmp/tiny.onnx"
  fi
fi
if [ -z "$model" ]; then
  echo "SKIP: no torch-exported model (no zoo at \$OCC_ZOO, build/zoo or ../zoo, and no torch to export one)"
  exit 0
fi
echo "model: $model"

# 1. the plain command
out="$tmp/model.occ"
if "$OCC" pack "$model" -o "$out" >"$tmp/stdout" 2>"$tmp/stderr"; then
  ok "occ pack $(basename "$model") -o model.occ"
else
  fail "occ pack exited $?: $(cat "$tmp/stderr")"
fi
id=$(grep -oE 'model id +[0-9a-f]{64}' "$tmp/stdout" | grep -oE '[0-9a-f]{64}')
[ -n "$id" ] && ok "prints the model id" || fail "no model id in: $(cat "$tmp/stdout")"
[ "$(head -c 7 "$out" 2>/dev/null)" = "OCCPACK" ] && ok "pack has the OCCPACK magic" || fail "bad pack header"
size=$(stat -c %s "$out" 2>/dev/null || echo 0)
[ $((size % 4096)) -eq 0 ] && [ "$size" -gt 4096 ] && ok "pack size $size is page-aligned" \
  || fail "pack size $size"

# 2. deterministic, --quiet prints the id alone
q=$("$OCC" pack -q "$model" -o "$tmp/again.occ" 2>/dev/null)
[ "$q" = "$id" ] && ok "--quiet prints the same id (deterministic)" || fail "--quiet gave '$q', want '$id'"
cmp -s "$out" "$tmp/again.occ" && ok "packs are byte-identical" || fail "two packs of one model differ"

# 3. labels and preprocessing change the manifest, hence the id
if [ "$(basename "$model")" != tiny.onnx ]; then n=1000; else n=10; fi
seq 1 $n | sed 's/^/class_/' >"$tmp/labels.txt"
id2=$("$OCC" pack "$model" -o "$tmp/pre.occ" --quiet --labels "$tmp/labels.txt" --channel-order RGB \
      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --name m 2>"$tmp/stderr")
if [ -n "$id2" ] && [ "$id2" != "$id" ]; then ok "labels + preprocessing: new id"; else
  fail "labels/preprocessing: '$id2' ($(cat "$tmp/stderr"))"; fi
seq 1 3 >"$tmp/few.txt"
if "$OCC" pack "$model" -o "$tmp/x.occ" --labels "$tmp/few.txt" 2>"$tmp/stderr"; then
  fail "3 labels for $n classes accepted"
else ok "wrong label count refused: $(cat "$tmp/stderr")"; fi

# 4. usage errors and untrusted input: one line, non-zero
"$OCC" pack --help | grep -q 'usage: occ pack' && ok "--help" || fail "--help"
"$OCC" pack "$model" >/dev/null 2>&1; [ $? -eq 2 ] && ok "missing -o: exit 2" || fail "missing -o"
"$OCC" pack "$model" -o "$tmp/x.occ" --chunk-size banana >/dev/null 2>&1 && fail "bad --chunk-size accepted" \
  || ok "bad --chunk-size refused"
head -c 3000 "$model" >"$tmp/trunc.onnx"
"$OCC" pack "$tmp/trunc.onnx" -o "$tmp/x.occ" >/dev/null 2>"$tmp/stderr"
rc=$?
if [ $rc -ne 0 ] && [ "$(wc -l <"$tmp/stderr")" -eq 1 ] && grep -q '^occ pack: error: ' "$tmp/stderr"; then
  ok "truncated model: exit $rc, $(cat "$tmp/stderr")"
else fail "truncated model: exit $rc, stderr: $(cat "$tmp/stderr")"; fi
[ -e "$tmp/x.occ" ] && fail "a failed pack left an output file" || ok "no output file on failure"
if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
  /usr/bin/python3 - "$tmp/unk.onnx" <<'EOF'
import sys, onnx
from onnx import helper as h, TensorProto as T
g = h.make_graph([h.make_node("Relu", ["x"], ["r"], name="r"),
                  h.make_node("Frobnicate", ["r"], ["y"], name="mystery")], "g",
                 [h.make_tensor_value_info("x", T.FLOAT, [1, 4])], [h.make_tensor_value_info("y", T.FLOAT, None)])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), sys.argv[1])
EOF
  "$OCC" pack "$tmp/unk.onnx" -o "$tmp/x.occ" >/dev/null 2>"$tmp/stderr"
  rc=$?
  if [ $rc -ne 0 ] && grep -q "node 'mystery' (Frobnicate): " "$tmp/stderr" && [ "$(wc -l <"$tmp/stderr")" -eq 1 ]; then
    ok "unknown op: $(cat "$tmp/stderr")"
  else fail "unknown op: exit $rc, $(cat "$tmp/stderr")"; fi
fi

# 5. optionally the whole zoo
if [ "${OCC_PACK_ZOO_ALL:-0}" = 1 ] && [ -n "$zoo" ]; then
  for m in alexnet vgg16 vgg19 resnet50 resnet101 resnet152 googlenet squeezenet1_0 mobilenet_v2; do
    [ -f "$zoo/$m.onnx" ] || { echo "skip $m (not exported)"; continue; }
    t0=$(date +%s.%N)
    if "$OCC" pack "$zoo/$m.onnx" -o "$tmp/$m.occ" >"$tmp/$m.txt" 2>"$tmp/$m.err"; then
      t1=$(date +%s.%N)
      printf 'ok: %-14s %6.2f s  %s\n' "$m" "$(echo "$t1 - $t0" | bc)" \
        "$(grep -E '^  (nodes|file)' "$tmp/$m.txt" | sed 's/^ *//' | cut -c1-40 | tr '\n' ' ')"
    else fail "$m: $(cat "$tmp/$m.err")"; fi
    rm -f "$tmp/$m.occ"
  done
fi

[ $fails -eq 0 ] && echo "cli_pack: all passed" || echo "cli_pack: $fails failed"
[ $fails -eq 0 ]
