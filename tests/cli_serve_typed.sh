#!/usr/bin/env bash
# occ serve with a typed, multi-input, multi-output model (KServe INT64 /
# FP32 / BOOL), in the emulated enclave:
#  - occ infer --tensor NAME=FILE ... --output-dir D equals occ run --output-dir
#    byte for byte, over the binary extension and JSON (--json-tensors);
#    --output is every output back to back;
#  - metadata lists each input and output with its KServe datatype;
#  - an id outside the embedding table is a 400 with one line (CLI and curl),
#    the server keeps serving, and a batch holding such a request still
#    answers its other members;
#  - wrong datatype / shape, INT64 beyond 2^53 as a JSON number: 400 naming
#    the input; an INT64 beyond 2^53 as a decimal string is taken exactly;
#  - curl with the certificate saved by occ attest (docs/server.md).
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
PY=/usr/bin/python3
SERVER_PID=
on_exit() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

# ids int64 [1,4], x float [1,3]; emb float [10,3] (the vocabulary: 10 ids)
#   "scores/0" = Gather(emb, ids) + x     float [1,4,3]
#   cls        = ArgMax(scores, axis 2)   int64 [1,4]
#   same       = Equal(cls, ids)          bool  [1,4]
$PY - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP, numpy_helper as nh
t = sys.argv[1]
rng = np.random.default_rng(7)
emb = rng.standard_normal((10, 3)).astype(np.float32)
g = h.make_graph(
    [h.make_node("Gather", ["emb", "ids"], ["e"]),
     h.make_node("Add", ["e", "x"], ["scores/0"]),
     h.make_node("ArgMax", ["scores/0"], ["cls"], axis=2, keepdims=0),
     h.make_node("Equal", ["cls", "ids"], ["same"])],
    "tok",
    [h.make_tensor_value_info("ids", TP.INT64, [1, 4]),
     h.make_tensor_value_info("x", TP.FLOAT, [1, 3])],
    [h.make_tensor_value_info("scores/0", TP.FLOAT, None),
     h.make_tensor_value_info("cls", TP.INT64, None),
     h.make_tensor_value_info("same", TP.BOOL, None)],
    [nh.from_array(emb, "emb")])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), f"{t}/tok.onnx")
np.array([[1, 9, 0, -3]], np.int64).tofile(f"{t}/ids.bin")
np.array([[2, 0, 2, 1]], np.int64).tofile(f"{t}/ids2.bin")
np.array([[1, 10, 0, 2]], np.int64).tofile(f"{t}/oov.bin")
np.array([[0.5, -1.25, 3]], np.float32).tofile(f"{t}/x.bin")
np.array([[1, 2, 3]], np.int32).tofile(f"{t}/x_short.bin")
PY
"$OCC" pack "$T/tok.onnx" -o "$T/tok.occ" -q >/dev/null && ok || bad "pack"
MODEL_ID=$("$OCC" inspect "$T/tok.occ" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
mkdir "$T/ref" "$T/ref2"
"$OCC" run "$T/tok.occ" --input "ids=$T/ids.bin" --input "x=$T/x.bin" --output-dir "$T/ref" --output "$T/ref.all" \
  >/dev/null && ok || bad "run reference"
"$OCC" run "$T/tok.occ" --input "ids=$T/ids2.bin" --input "x=$T/x.bin" --output-dir "$T/ref2" >/dev/null \
  && ok || bad "run reference 2"

mkdir -m 700 "$T/emu"
# one worker that waits for a batch: concurrent requests share an engine run
"$OCC" serve --model tok="$T/tok.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" \
  --metrics 127.0.0.1:0 --threads 1 --workers 1 --max-batch 4 --batch-wait-us 200000 \
  >"$T/serve.log" 2>"$T/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$T/serve.log" || { cat "$T/serve.log" "$T/serve.err" >&2; echo "server did not start" >&2; exit 1; }
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
MPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
MRENCLAVE=$(awk '/^mrenclave /{print $2}' "$T/serve.log")
URL=https://127.0.0.1:$PORT
grep -q '^batch tok up to 4 requests per run' "$T/serve.log" && ok || { bad "the typed model batches"; cat "$T/serve.log" >&2; }
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$MODEL_ID" >"$T/policy.json"
AUTH=(--policy "$T/policy.json" --root "$T/emu/root.pem")

infer_dir() { # infer_dir DIR IDS [extra args]: occ infer into DIR
  local d=$1 ids=$2; shift 2
  mkdir -p "$d"
  "$OCC" infer "$URL" --model tok --tensor "ids=$ids" --tensor "x=$T/x.bin" --output-dir "$d" "${AUTH[@]}" "$@"
}
same_dir() { for f in scores_0.bin cls.bin same.bin; do cmp -s "$1/$f" "$2/$f" || return 1; done; }
alive() { rm -rf "$T/alive"; infer_dir "$T/alive" "$T/ids.bin" 2>"$T/alive.err" >/dev/null && same_dir "$T/alive" "$T/ref"; }

# --- occ infer = occ run, byte for byte, binary and JSON ---
ls "$T/ref" | sort | tr '\n' ' ' | grep -qx 'cls.bin same.bin scores_0.bin ' && ok || bad "run output names: $(ls "$T/ref")"
infer_dir "$T/bin" "$T/ids.bin" >"$T/out" 2>"$T/err" && same_dir "$T/bin" "$T/ref" && ok \
  || { bad "infer --output-dir (binary) = run"; cat "$T/err" >&2; }
infer_dir "$T/json" "$T/ids.bin" --json-tensors >"$T/out" 2>"$T/err" && same_dir "$T/json" "$T/ref" && ok \
  || { bad "infer --output-dir (JSON) = run"; cat "$T/err" >&2; }
"$OCC" infer "$URL" --model tok --tensor "x=$T/x.bin" --tensor "ids=$T/ids.bin" --output "$T/all.bin" "${AUTH[@]}" \
  2>"$T/err" && cmp -s "$T/all.bin" "$T/ref.all" && ok || { bad "infer --output = run --output"; cat "$T/err" >&2; }
[ "$(stat -c %s "$T/all.bin")" -eq $((48 + 32 + 4)) ] && ok || bad "--output holds every output"

# --- CLI refusals before sending ---
expect_error "bare --tensor for two inputs" "name the input as NAME=FILE.*takes ids, x" \
  "$OCC" infer "$URL" --model tok --tensor "$T/ids.bin" --tensor "x=$T/x.bin" "${AUTH[@]}"
expect_error "missing input" "missing input 'x' \(FP32, 3 values\): give --tensor x=FILE" \
  "$OCC" infer "$URL" --model tok --tensor "ids=$T/ids.bin" "${AUTH[@]}"
expect_error "file of the wrong size" "input 'x' \(3 FP32 values\)" \
  "$OCC" infer "$URL" --model tok --tensor "ids=$T/ids.bin" --tensor "x=$T/ids.bin" "${AUTH[@]}"
expect_error "input twice" "input 'ids' is given twice" \
  "$OCC" infer "$URL" --model tok --tensor "ids=$T/ids.bin" --tensor "ids=$T/ids.bin" --tensor "x=$T/x.bin" "${AUTH[@]}"

# --- an id outside the vocabulary: 400, one line, the server keeps serving ---
for mode in "" --json-tensors; do
  rc=0; infer_dir "$T/oov" "$T/oov.bin" $mode >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 1 ] && grep -q 'HTTP 400: input refused: .*index 10 .*outside \[-10, 10)' "$T/err" \
    && [ "$(wc -l <"$T/err")" -le 2 ] && san_clean "$T/err" && ok || { bad "oov $mode: rc $rc"; cat "$T/err" >&2; }
  alive && ok || bad "oov $mode: server no longer serves"
done

# --- a batch holding a refused request: the others are answered ---
for round in 1 2 3; do
  pids=()
  for k in 1 2 3; do
    rm -rf "$T/b$k"; infer_dir "$T/b$k" "$T/ids2.bin" >/dev/null 2>"$T/b$k.err" & pids+=($!)
  done
  rm -rf "$T/bo"; infer_dir "$T/bo" "$T/oov.bin" >/dev/null 2>"$T/bo.err" & bo=$!
  good=0
  for k in 1 2 3; do wait "${pids[$((k - 1))]}" && same_dir "$T/b$k" "$T/ref2" && good=$((good + 1)) || cat "$T/b$k.err" >&2; done
  rc=0; wait $bo || rc=$?
  [ "$good" -eq 3 ] && [ "$rc" -eq 1 ] && grep -q 'HTTP 400: input refused' "$T/bo.err" && ok \
    || bad "batch round $round: $good of 3 served, bad request rc $rc"
done
multi=$(curl -s "http://127.0.0.1:$MPORT/metrics" | awk '$1 == "occ_batch_size_bucket{le=\"1\"}" {one = $2} $1 == "occ_batch_size_count" {all = $2} END {print all - one}')
[ "${multi:-0}" -gt 0 ] && ok || bad "no run served more than one request (batches: $multi)"

# --- curl with the saved certificate (docs/server.md) ---
"$OCC" attest "$URL" "${AUTH[@]}" --save-cert "$T/cert.pem" --json >"$T/att.json" && ok || bad "attest --save-cert"
PIN=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pinnedpubkey"])' "$T/att.json")
CURL=(curl -sS --max-time 20 --cacert "$T/cert.pem" --pinnedpubkey "$PIN")
INF=$URL/v2/models/tok/infer
"${CURL[@]}" "$URL/v2/models/tok" >"$T/meta.json" && $PY - "$T/meta.json" <<'PY' && ok || bad "metadata datatypes"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["inputs"] == [{"name": "ids", "datatype": "INT64", "shape": [1, 4]},
                       {"name": "x", "datatype": "FP32", "shape": [1, 3]}], d
assert [(o["name"], o["datatype"], o["shape"]) for o in d["outputs"]] == \
    [("scores/0", "FP32", [1, 4, 3]), ("cls", "INT64", [1, 4]), ("same", "BOOL", [1, 4])], d
PY
post() { # post NAME STATUS BODY-FILE [curl args]: status and, for errors, one line
  local name=$1 want=$2 body=$3; shift 3
  local got
  got=$("${CURL[@]}" -o "$T/resp" -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$body" "$@" "$INF" || true)
  [ "$got" = "$want" ] && ok || bad "$name: HTTP $got (want $want): $(head -c 300 "$T/resp")"
}
req() { # req FILE IDS-JSON [IDS-DATATYPE] [IDS-SHAPE]
  printf '{"inputs":[{"name":"ids","datatype":"%s","shape":%s,"data":%s},{"name":"x","datatype":"FP32","shape":[1,3],"data":[0.5,-1.25,3]}]}' \
    "${3:-INT64}" "${4:-[1,4]}" "$2" >"$1"
}
req "$T/r_ok.json" '[[1,9,0,-3]]'
post "curl JSON" 200 "$T/r_ok.json"
$PY - "$T/resp" "$T/ref" <<'PY' && ok || bad "curl JSON outputs = run"
import json, sys, numpy as np
d = json.load(open(sys.argv[1]))
o = {x["name"]: x for x in d["outputs"]}
assert o["cls"]["datatype"] == "INT64" and o["same"]["datatype"] == "BOOL" and o["scores/0"]["datatype"] == "FP32"
r = sys.argv[2]
assert o["cls"]["data"] == np.fromfile(f"{r}/cls.bin", np.int64).tolist()
assert o["same"]["data"] == [bool(v) for v in np.fromfile(f"{r}/same.bin", np.uint8)]
assert np.array(o["scores/0"]["data"], np.float32).tobytes() == open(f"{r}/scores_0.bin", "rb").read()
PY
req "$T/r_big.json" '[[1,9,0,9007199254740993]]'
post "INT64 beyond 2^53 as a number" 400 "$T/r_big.json"
grep -q "input 'ids' (INT64): an INT64 JSON number at or beyond 2^53" "$T/resp" && ok || bad "2^53 message: $(cat "$T/resp")"
req "$T/r_bigs.json" '[[1,9,0,"9007199254740993"]]'
post "INT64 beyond 2^53 as a string: exact, then outside the table" 400 "$T/r_bigs.json"
grep -q 'index 9007199254740993 ' "$T/resp" && ok || bad "string int64 exact: $(cat "$T/resp")"
req "$T/r_oov.json" '[[1,9,0,-11]]'
post "curl: id outside the table" 400 "$T/r_oov.json"
grep -q 'input refused: .*index -11' "$T/resp" && ok || bad "oov message: $(cat "$T/resp")"
req "$T/r_dt.json" '[[1,9,0,3]]' FP32
post "ids as FP32" 400 "$T/r_dt.json"
grep -q "input 'ids' has datatype 'FP32'; the model takes INT64" "$T/resp" && ok || bad "datatype message: $(cat "$T/resp")"
req "$T/r_len.json" '[[1,9,0,3,4]]' INT64 '[1,5]'
post "wrong sequence length" 400 "$T/r_len.json"
grep -q "input 'ids' has shape \[1,5\]; the model takes \[1,4\]" "$T/resp" && ok || bad "shape message: $(cat "$T/resp")"
# the binary extension from curl: header length + raw tensors
$PY - "$T" <<'PY'
import json, sys
t = sys.argv[1]
hdr = json.dumps({"inputs": [{"name": "ids", "datatype": "INT64", "shape": [1, 4], "parameters": {"binary_data_size": 32}},
                             {"name": "x", "datatype": "FP32", "shape": [1, 3], "parameters": {"binary_data_size": 12}}],
                  "outputs": [{"name": "cls", "parameters": {"binary_data": True}}]}).encode()
open(f"{t}/r.bin", "wb").write(hdr + open(f"{t}/ids.bin", "rb").read() + open(f"{t}/x.bin", "rb").read())
open(f"{t}/r.len", "w").write(str(len(hdr)))
PY
got=$("${CURL[@]}" -o "$T/resp.bin" -D "$T/resp.hdr" -w '%{http_code}' -H "Inference-Header-Content-Length: $(cat "$T/r.len")" \
  --data-binary @"$T/r.bin" "$INF" || true)
HL=$(tr -d '\r' <"$T/resp.hdr" | awk -F': ' 'tolower($1) == "inference-header-content-length" {print $2}')
[ "$got" = 200 ] && [ -n "$HL" ] && tail -c +$((HL + 1)) "$T/resp.bin" | cmp -s - "$T/ref/cls.bin" && ok \
  || bad "curl binary: HTTP $got, header $HL"
alive && ok || bad "server no longer serves after the curl requests"

kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok || bad "serve exits 0"; SERVER_PID=
san_clean "$T/serve.err" && ok || { bad "server sanitizer report"; cat "$T/serve.err" >&2; }

# --- one-byte datatypes: a UINT8 image of 49,152 values and a BOOL flag.
# The JSON bound counts values per element (at 4 bytes a value this body
# would be refused as holding too many values) ---
$PY - "$T" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as TP
t = sys.argv[1]
g = h.make_graph([h.make_node("Cast", ["img"], ["f"], to=TP.FLOAT), h.make_node("Not", ["flag"], ["nf"])], "u8",
                 [h.make_tensor_value_info("img", TP.UINT8, [1, 3, 128, 128]),
                  h.make_tensor_value_info("flag", TP.BOOL, [1, 2])],
                 [h.make_tensor_value_info("f", TP.FLOAT, None), h.make_tensor_value_info("nf", TP.BOOL, None)])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), f"{t}/u8.onnx")
np.random.default_rng(3).integers(0, 256, (1, 3, 128, 128), dtype=np.uint8).tofile(f"{t}/img.bin")
np.array([[1, 0]], np.uint8).tofile(f"{t}/flag.bin")
PY
"$OCC" pack "$T/u8.onnx" -o "$T/u8.occ" -q >/dev/null && ok || bad "pack u8"
U8_ID=$("$OCC" inspect "$T/u8.occ" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
mkdir "$T/u8ref"
"$OCC" run "$T/u8.occ" --input "img=$T/img.bin" --input "flag=$T/flag.bin" --output-dir "$T/u8ref" >/dev/null \
  && ok || bad "run u8"
"$OCC" serve --model u8="$T/u8.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  >"$T/serve2.log" 2>"$T/serve2.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/serve2.log" 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve2.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$U8_ID" >"$T/policy2.json"
for mode in "" --json-tensors; do
  rm -rf "$T/u8out"; mkdir "$T/u8out"
  "$OCC" infer "https://127.0.0.1:$PORT" --model u8 --tensor "img=$T/img.bin" --tensor "flag=$T/flag.bin" \
    --output-dir "$T/u8out" --policy "$T/policy2.json" --root "$T/emu/root.pem" $mode 2>"$T/err" \
    && cmp -s "$T/u8out/f.bin" "$T/u8ref/f.bin" && cmp -s "$T/u8out/nf.bin" "$T/u8ref/nf.bin" && ok \
    || { bad "u8/bool infer $mode = run"; cat "$T/err" >&2; }
done
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok || bad "serve u8 exits 0"; SERVER_PID=
san_clean "$T/serve2.err" && ok || { bad "server 2 sanitizer report"; cat "$T/serve2.err" >&2; }
finish
