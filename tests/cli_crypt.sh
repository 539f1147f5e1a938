#!/usr/bin/env bash
# Encrypted packs at the command line: occ pack --encrypt-key makes the key
# (mode 0600) when it does not exist and reuses it when it does; occ inspect
# says whether a pack is encrypted; occ run --key gives the same output as
# the plain pack, in native and occlumency mode and in the emulated enclave;
# a missing, wrong, malformed or superfluous key and a flipped ciphertext
# byte are one clear error each, with no output written. The recording of
# the boundary (--record-boundary) holds no 16-byte window of the weights.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck disable=SC2046
args=(--labels "$SRC/models/fmnist.labels" $(cat "$SRC/models/fmnist.packargs") --quiet)
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/p.occ" "${args[@]}" >/dev/null && ok || bad "pack plain"
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/e.occ" "${args[@]}" --encrypt-key "$T/k" >"$T/id1" 2>"$T/err" &&
  ok || { bad "pack --encrypt-key"; cat "$T/err" >&2; }
[ "$(stat -c %s "$T/k")" -eq 32 ] && [ "$(stat -c %a "$T/k")" = 600 ] && ok || bad "new key: 32 bytes, mode 0600"
grep -q "made a new model key" "$T/err" && ok || bad "pack says it made a key"
# an existing key is used, not replaced; a new pack id makes a new model id
cp "$T/k" "$T/k.before"
"$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/e2.occ" "${args[@]}" --encrypt-key "$T/k" >"$T/id2" 2>"$T/err2" && ok || bad "pack with an existing key"
cmp -s "$T/k" "$T/k.before" && ! grep -q "made a new" "$T/err2" && ok || bad "existing key kept"
! cmp -s "$T/id1" "$T/id2" && ok || bad "re-encryption has another model id"
[ "$(stat -c %s "$T/e.occ")" -eq "$(stat -c %s "$T/p.occ")" ] && ok || bad "same size as the plain pack"

# --- inspect ---
"$OCC" inspect "$T/e.occ" | grep -q "^encrypted: yes" && ok || bad "inspect: encrypted yes"
"$OCC" inspect "$T/p.occ" | grep -q "^encrypted: no" && ok || bad "inspect: encrypted no"
"$OCC" inspect "$T/e.occ" --json | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["encrypted"] is True and d["encryption"] == "AES-256-GCM" and len(d["pack_id"]) == 32' && ok || bad "inspect --json encrypted"
"$OCC" inspect "$T/p.occ" --json | $PY -c 'import json,sys; d=json.load(sys.stdin); assert d["encrypted"] is False and "pack_id" not in d' && ok || bad "inspect --json plain"
expect_error "inspect --plan without key" "encrypted.*--key" "$OCC" inspect "$T/e.occ" --plan
"$OCC" inspect "$T/e.occ" --plan --key "$T/k" >/dev/null && ok || bad "inspect --plan --key"
expect_error "inspect --key without --plan" "need --plan" "$OCC" inspect "$T/e.occ" --key "$T/k"

# --- same answers ---
$PY -c "import numpy as np; np.random.default_rng(3).standard_normal((1,1,28,28)).astype(np.float32).tofile('$T/x.bin')"
"$OCC" run "$T/p.occ" --input "$T/x.bin" --output "$T/yp.bin" --threads 1 && ok || bad "run plain"
for mode in native occlumency; do
  "$OCC" run "$T/e.occ" --key "$T/k" --mode $mode --input "$T/x.bin" --output "$T/ye.bin" --threads 1 &&
    cmp -s "$T/yp.bin" "$T/ye.bin" && ok || bad "run encrypted ($mode): same output as plain"
done
"$OCC" run "$T/e.occ" --key "$T/k" --mode occlumency --enclave emu --epc 8M --cost-model none \
  --input "$T/x.bin" --output "$T/ye.bin" --threads 1 --record-boundary "$T/rec.bin" >/dev/null &&
  cmp -s "$T/yp.bin" "$T/ye.bin" && ok || bad "run encrypted in the emulated enclave"
"$OCC" run "$T/e.occ" --key "$T/k" --input "$T/x.bin" --stats --json >"$T/s.json" && ok || bad "run --stats --json"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["encrypted"] is True and d["bytes_decrypted"] > 300000, d' "$T/s.json" && ok || bad "stats: bytes decrypted"
"$OCC" run "$T/e.occ" --key "$T/k" --input "$T/x.bin" --stats | grep -q "MiB decrypted (AES-256-GCM)" && ok || bad "stats text: decrypted"

# --- what crosses the boundary: ciphertext only (the plain pack's weights do cross) ---
"$OCC" run "$T/p.occ" --mode occlumency --enclave emu --epc 8M --cost-model none \
  --input "$T/x.bin" --top 1 --record-boundary "$T/recp.bin" >/dev/null && ok || bad "record plain"
$PY - "$T/p.occ" "$T/e.occ" "$T/rec.bin" "$T/recp.bin" <<'PY' && ok || bad "windows of the weights in the recording"
import struct, sys
plain, enc, rec, recp = (open(p, "rb").read() for p in sys.argv[1:5])
doff, dsize = struct.unpack_from("<QQ", plain, 32)
data = plain[doff:doff + dsize]
# 16-byte windows of the weights at every offset, skipping those that say
# too little to be found only by a leak: four equal words (padding) or more
# than 8 zero bytes (15 zeros of padding and the first byte of a chunk
# match the encrypted pack by chance, 1 in 256 per page boundary)
wins = {data[i:i + 16] for i in range(len(data) - 15)}
wins = {w for w in wins if not (w[0:4] == w[4:8] == w[8:12] == w[12:16]) and w.count(0) <= 8}
assert len(wins) > 300000, len(wins)
def hits(b):
    return sum(1 for i in range(len(b) - 15) if b[i:i + 16] in wins)
assert hits(enc) == 0, "encrypted pack"
assert hits(rec) == 0, "recording of the encrypted run"
assert hits(recp) > 300000, "control: the plain run's recording holds the weights"
PY

# --- refusals, no output ---
rm -f "$T/yx.bin"
expect_error "no key" "encrypted \(AES-256-GCM\).*--key" "$OCC" run "$T/e.occ" --input "$T/x.bin" --output "$T/yx.bin"
head -c 32 /dev/urandom >"$T/wrong" && chmod 600 "$T/wrong"
expect_error "wrong key" "does not match this pack" "$OCC" run "$T/e.occ" --key "$T/wrong" --input "$T/x.bin" --output "$T/yx.bin"
head -c 31 /dev/urandom >"$T/short"
expect_error "short key file" "has 31 bytes.*32 raw bytes" "$OCC" run "$T/e.occ" --key "$T/short" --input "$T/x.bin"
expect_error "missing key file" "cannot open key file" "$OCC" run "$T/e.occ" --key "$T/nokey" --input "$T/x.bin"
expect_error "key for a plain pack" "not encrypted" "$OCC" run "$T/p.occ" --key "$T/k" --input "$T/x.bin"
expect_error "pack with a short key file" "has 31 bytes" "$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/z.occ" --encrypt-key "$T/short"
data_off=$($PY -c "import struct; print(struct.unpack_from('<Q', open('$T/e.occ','rb').read(64), 32)[0])")
cp "$T/e.occ" "$T/flip.occ"   # (a byte of conv2's chunk, the data section's second page, inverted)
$PY -c "import sys; b=open(sys.argv[1],'rb').read(); sys.stdout.buffer.write(bytes([b[$data_off + 4096 + 1000] ^ 255]))" "$T/e.occ" | dd of="$T/flip.occ" bs=1 seek=$((data_off + 4096 + 1000)) conv=notrunc status=none
expect_error "flipped ciphertext" "integrity|verification" "$OCC" run "$T/flip.occ" --key "$T/k" --input "$T/x.bin" --output "$T/yx.bin"
[ ! -e "$T/yx.bin" ] && ok || bad "output written despite a refusal"
# a readable key file is used, with a warning
cp "$T/k" "$T/kr" && chmod 644 "$T/kr"
"$OCC" run "$T/e.occ" --key "$T/kr" --input "$T/x.bin" --top 1 >/dev/null 2>"$T/err" && grep -q "readable by others" "$T/err" && ok || bad "warning on a readable key"
finish
