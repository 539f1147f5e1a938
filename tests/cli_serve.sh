#!/usr/bin/env bash
# occ serve / attest / infer end to end on loopback, in the emulated enclave:
#  - attest + infer give exactly the scores of `occ run` (binary and JSON tensors, --image too);
#  - a policy with the wrong MRENCLAVE, the wrong model id, another root or no root is refused
#    and the server sees no request from it;
#  - curl with the saved certificate (--cacert) and with the pinned key gets correct JSON and
#    binary answers;
#  - 8 concurrent clients all get correct answers, served by a pool of two engines;
#  - in occlumency mode the model's budget is split among its engines: one too small to
#    split is refused at start, with the reason, while one engine fits it; without --workers
#    the pool is one engine per core unless the split would make the model stream weights;
#  - dynamic batching (--max-batch 4): concurrent clients get correct answers from batched
#    runs (partial batches included); in occlumency mode a model whose weights are all
#    resident is not batched, and the server says why;
#  - bad input (malformed JSON, shape, datatype, tensor name, unknown model, body over the limit,
#    a content length that never arrives, a truncated binary tensor, garbage instead of TLS, a
#    stalled client, a client leaving mid-inference) gets the right status or a clean close, and
#    the server keeps serving everyone else (checked after each);
#  - the boundary recording holds no plaintext request or response body.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
SERVER_PID=
on_exit() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

pack_fmnist
mkdir -m 700 "$T/emu" "$T/emu2"

"$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" \
  --metrics 127.0.0.1:0 --max-body 1M --request-timeout 1500 --threads 2 --workers 2 \
  --record-boundary "$T/boundary.bin" >"$T/serve.log" 2>"$T/serve.err" &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/serve.log" 2>/dev/null && break; sleep 0.1; done
grep -q '^listening' "$T/serve.log" || { cat "$T/serve.log" "$T/serve.err" >&2; echo "server did not start" >&2; exit 1; }
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
MPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
MRENCLAVE=$(awk '/^mrenclave /{print $2}' "$T/serve.log")
URL=https://127.0.0.1:$PORT
[ "$(awk '/^model fmnist /{print $3}' "$T/serve.log")" = "$MODEL_ID" ] && ok || bad "serve prints the model id"
[ ${#MRENCLAVE} -eq 64 ] && ok || bad "serve prints the MRENCLAVE"

printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$MODEL_ID" >"$T/policy.json"
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$(printf 'ab%.0s' $(seq 32))" "$MODEL_ID" >"$T/wrong_mr.json"
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$(printf 'cd%.0s' $(seq 32))" >"$T/wrong_id.json"
"$OCC" attest --emu-dir "$T/emu2" --make-quote "$T/q2" 2>/dev/null # creates another root

metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
responses() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk '/^occ_http_responses_total/ {s += $2} END {print s + 0}'; }
alive() { # the server still answers an attested client correctly
  "$OCC" infer "$URL" --model fmnist --tensor "$T/x0.bin" --output "$T/alive.bin" --policy "$T/policy.json" \
    --root "$T/emu/root.pem" 2>"$T/alive.err" && cmp -s "$T/alive.bin" "$T/ref0.bin"
}

# inputs and the reference scores from occ run
"$PY" - "$T" <<'PY'
import struct, sys, random
for k in range(9):
    r = random.Random(k)
    open(f"{sys.argv[1]}/x{k}.bin", "wb").write(struct.pack("784f", *[r.uniform(-1, 2) for _ in range(784)]))
PY
for k in $(seq 0 8); do "$OCC" run "$T/m.occ" --input "$T/x$k.bin" --output "$T/ref$k.bin" >/dev/null; done

# --- attest ---
"$OCC" attest "$URL" --policy "$T/policy.json" --root "$T/emu/root.pem" --save-cert "$T/cert.pem" --json >"$T/att.json" &&
  ok || bad "attest accepted"
"$PY" - "$T/att.json" "$MRENCLAVE" "$MODEL_ID" <<'PY' && ok || bad "attest --json fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["accepted"] and d["emulated"] and not d["hardware_backed"], d
assert d["mrenclave"] == sys.argv[2] and d["report_data"][64:] == sys.argv[3]
assert d["key_binding"] == "occlumency" and d["pinnedpubkey"].startswith("sha256//")
PY
PIN=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pinnedpubkey"])' "$T/att.json")

# --- refusals: nothing is sent to a refused server ---
before=$(responses)
for p in wrong_mr wrong_id; do
  rc=0; "$OCC" attest "$URL" --policy "$T/$p.json" --root "$T/emu/root.pem" >"$T/out" 2>&1 || rc=$?
  [ $rc -eq 1 ] && grep -q 'REFUSED' "$T/out" && ok || { bad "attest $p: rc $rc"; cat "$T/out" >&2; }
  rc=0; "$OCC" infer "$URL" --model fmnist --tensor "$T/x0.bin" --policy "$T/$p.json" --root "$T/emu/root.pem" \
    >"$T/out" 2>&1 || rc=$?
  [ $rc -eq 1 ] && grep -q 'refused by the policy' "$T/out" && ok || { bad "infer $p: rc $rc"; cat "$T/out" >&2; }
done
grep -qi 'mrenclave' "$T/out" || true
rc=0; "$OCC" infer "$URL" --model fmnist --tensor "$T/x0.bin" --policy "$T/policy.json" --root "$T/emu2/root.pem" \
  >"$T/out" 2>&1 || rc=$?
[ $rc -eq 1 ] && ok || { bad "another root: rc $rc"; cat "$T/out" >&2; }
rc=0; "$OCC" infer "$URL" --model fmnist --tensor "$T/x0.bin" --policy "$T/policy.json" >"$T/out" 2>&1 || rc=$?
[ $rc -eq 1 ] && ok || { bad "no root: rc $rc"; cat "$T/out" >&2; }
[ "$(responses)" = "$before" ] && ok || bad "a refused client got an HTTP answer (sent a request)"
[ "$(metric occ_tls_handshake_failures_total)" -ge 4 ] && ok || bad "refusals abort the handshake"

# --- same scores as occ run ---
"$OCC" infer "$URL" --model fmnist --tensor "$T/x1.bin" --output "$T/y1.bin" --policy "$T/policy.json" \
  --root "$T/emu/root.pem" >/dev/null 2>&1 && cmp -s "$T/y1.bin" "$T/ref1.bin" && ok || bad "infer (binary) == occ run"
"$OCC" infer "$URL" --model fmnist --tensor "$T/x2.bin" --output "$T/y2.bin" --json-tensors --policy "$T/policy.json" \
  --root "$T/emu/root.pem" >/dev/null 2>&1 && cmp -s "$T/y2.bin" "$T/ref2.bin" && ok || bad "infer (JSON) == occ run"
IMG=$(ls "$SRC/models/samples/"*.png | head -1)
"$OCC" run "$T/m.occ" --image "$IMG" --top 3 --json >"$T/run_img.json"
"$OCC" infer "$URL" --model fmnist --image "$IMG" --top 3 --json --policy "$T/policy.json" \
  --root "$T/emu/root.pem" >"$T/inf_img.json" 2>/dev/null && ok || bad "infer --image"
"$PY" - "$T/run_img.json" "$T/inf_img.json" <<'PY' && ok || bad "infer --image top-3 == occ run --image"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert [(t["index"], t["label"], t["score"]) for t in a["top"]] == [(t["index"], t["label"], t["score"]) for t in b["top"]], (a, b)
PY

# --- curl with the verified certificate ---
CURL=(curl -sS --max-time 20 --cacert "$T/cert.pem" --pinnedpubkey "$PIN")
"${CURL[@]}" "$URL/v2/health/ready" | grep -q '"ready":true' && ok || bad "curl --cacert health"
curl -sS --max-time 20 -k --pinnedpubkey "$PIN" "$URL/v2/models/fmnist" | grep -q '"shape":\[1,1,28,28\]' &&
  ok || bad "curl pinned-key metadata"
rc=0; curl -sS --max-time 20 -k --pinnedpubkey "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" \
  "$URL/v2/health/live" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] && ok || bad "curl with another pinned key must fail"
"$PY" - "$T" <<'PY'
import json, struct, sys
T = sys.argv[1]
x = struct.unpack("784f", open(f"{T}/x3.bin", "rb").read())
json.dump({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": [float("%.9g" % v) for v in x]}]},
          open(f"{T}/req3.json", "w"))
hdr = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                  "parameters": {"binary_data_size": 3136}}], "parameters": {"binary_data_output": True}}).encode()
open(f"{T}/req4.bin", "wb").write(hdr + open(f"{T}/x4.bin", "rb").read())
open(f"{T}/req4.len", "w").write(str(len(hdr)))
# a truncated binary tensor, wrong shape / datatype / name, malformed JSON
open(f"{T}/trunc.bin", "wb").write(hdr + open(f"{T}/x4.bin", "rb").read()[:1000])
good = json.load(open(f"{T}/req3.json"))
def variant(key, val, name):
    d = json.loads(json.dumps(good)); d["inputs"][0][key] = val; json.dump(d, open(f"{T}/{name}.json", "w"))
variant("shape", [1, 28, 28], "bad_shape"); variant("datatype", "INT32", "bad_dtype"); variant("name", "pixels", "bad_name")
open(f"{T}/bad_json.json", "w").write('{"inputs": [{"name": "input",')
PY
"${CURL[@]}" -H 'Content-Type: application/json' --data-binary @"$T/req3.json" "$URL/v2/models/fmnist/infer" >"$T/r3.json" &&
  "$PY" - "$T/r3.json" "$T/ref3.bin" <<'PY' && ok || bad "curl JSON infer == occ run"
import json, struct, sys
d = json.load(open(sys.argv[1]))
ref = struct.unpack("10f", open(sys.argv[2], "rb").read())
got = d["outputs"][0]["data"]
assert d["model_name"] == "fmnist" and d["outputs"][0]["shape"] == [1, 10]
assert all(struct.unpack("f", struct.pack("f", g))[0] == r for g, r in zip(got, ref)), (got, ref)
PY
"${CURL[@]}" -D "$T/h4" -H "Inference-Header-Content-Length: $(cat "$T/req4.len")" -H 'Content-Type: application/octet-stream' \
  --data-binary @"$T/req4.bin" "$URL/v2/models/fmnist/infer" -o "$T/r4.bin" &&
  "$PY" - "$T/r4.bin" "$T/h4" "$T/ref4.bin" <<'PY' && ok || bad "curl binary infer == occ run"
import json, sys
body, head, ref = open(sys.argv[1], "rb").read(), open(sys.argv[2]).read(), open(sys.argv[3], "rb").read()
n = int([l.split(":")[1] for l in head.splitlines() if l.lower().startswith("inference-header-content-length")][0])
h = json.loads(body[:n]); assert h["outputs"][0]["parameters"]["binary_data_size"] == 40
assert body[n:] == ref
PY

# --- 8 concurrent clients ---
pids=()
for k in $(seq 1 8); do
  "$OCC" infer "$URL" --model fmnist --tensor "$T/x$k.bin" --output "$T/c$k.bin" --repeat 5 --policy "$T/policy.json" \
    --root "$T/emu/root.pem" >/dev/null 2>"$T/c$k.err" &
  pids+=($!)
done
for k in $(seq 1 8); do
  wait "${pids[$((k - 1))]}" && "$PY" - "$T/c$k.bin" "$T/ref$k.bin" <<'PY' && ok || bad "concurrent client $k"
import struct, sys
a, b = (struct.unpack("10f", open(p, "rb").read()) for p in sys.argv[1:3])
# batched runs may round differently from a single run: allow 1e-5 relative
assert all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a, b)), (a, b)
assert max(range(10), key=a.__getitem__) == max(range(10), key=b.__getitem__)
PY
done

# --- bad input: status codes, and the server keeps serving ---
expect() { # expect NAME STATUS CURL-ARGS...
  local name=$1 want=$2; shift 2
  local got
  got=$("${CURL[@]}" -o "$T/err.json" -w '%{http_code}' "$@" || true)
  if [ "$got" = "$want" ] && grep -q '"error"' "$T/err.json"; then ok; else bad "$name: HTTP $got (want $want): $(cat "$T/err.json" 2>/dev/null)"; fi
  alive && ok || bad "$name: server no longer serves"
}
INF=$URL/v2/models/fmnist/infer
expect "malformed JSON" 400 --data-binary @"$T/bad_json.json" "$INF"
expect "wrong shape" 400 --data-binary @"$T/bad_shape.json" "$INF"
expect "wrong datatype" 400 --data-binary @"$T/bad_dtype.json" "$INF"
expect "wrong tensor name" 400 --data-binary @"$T/bad_name.json" "$INF"
expect "unknown model" 404 --data-binary @"$T/req3.json" "$URL/v2/models/nope/infer"
head -c 2000000 /dev/zero >"$T/big.bin"
expect "body over the limit" 413 --data-binary @"$T/big.bin" "$INF"
expect "truncated binary tensor" 400 -H "Inference-Header-Content-Length: $(cat "$T/req4.len")" --data-binary @"$T/trunc.bin" "$INF"
expect "content length never arrives" 408 -H 'Content-Length: 5000' --data-binary '{"inputs"' "$INF"
# garbage instead of TLS: the connection is closed, promptly
rc=0; timeout 10 "$PY" - "$PORT" <<'PY' || rc=$?
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
while s.recv(4096):
    pass
PY
[ $rc -eq 0 ] && ok || bad "garbage instead of TLS: not closed (rc $rc)"
alive && ok || bad "garbage: server no longer serves"
# a client that stalls mid-request (after the handshake) gets 408 and a close
timeout 10 "$PY" - "$PORT" >"$T/stall.out" <<'PY' && grep -q ' 408 ' "$T/stall.out" && ok || bad "stalled client: $(cat "$T/stall.out")"
import socket, ssl, sys
ctx = ssl._create_unverified_context()  # only the timeout is tested here
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"in")
data = b""
while True:
    try:
        d = s.recv(4096)
    except (ssl.SSLError, OSError):
        break
    if not d:
        break
    data += d
print(data.decode(errors="replace").splitlines()[0] if data else "nothing")
PY
alive && ok || bad "stall: server no longer serves"
# clients that leave mid-inference
timeout 10 "$PY" - "$PORT" "$T/req3.json" <<'PY' && ok || bad "disconnect mid-inference client"
import socket, ssl, sys
body = open(sys.argv[2], "rb").read()
ctx = ssl._create_unverified_context()
for _ in range(10):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
    s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    s.close()
PY
alive && ok || bad "disconnect: server no longer serves"

# --- metrics carry no request data; the boundary saw no plaintext ---
curl -s "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt"
grep -q '^occ_inferences_total{model="fmnist"}' "$T/metrics.txt" && grep -q '^occ_request_timeouts_total [1-9]' "$T/metrics.txt" &&
  grep -q '^occ_enclave_transitions_total [1-9]' "$T/metrics.txt" && ok || bad "metrics"
grep -q '^occ_engines{model="fmnist"} 2$' "$T/metrics.txt" && ok || bad "two engines in the pool"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok || bad "serve exits 0 on SIGTERM"; SERVER_PID=
# under ASan (make test: detect_leaks=1) a leak would also make the exit status 23
grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$T/serve.err" && { bad "sanitizer report in serve"; cat "$T/serve.err" >&2; } || ok
"$PY" - "$T/boundary.bin" "$T/x4.bin" "$T/ref4.bin" "$T/ref3.bin" <<'PY' && ok || bad "plaintext crossed the boundary"
import sys, struct
rec = open(sys.argv[1], "rb").read()
assert len(rec) > 10000, len(rec)
for needle in (open(sys.argv[2], "rb").read()[:64], open(sys.argv[3], "rb").read()[:16],
               b'"binary_data_size"', b'"outputs"', b'"ready":true', b"/v2/models/fmnist/infer"):
    assert needle not in rec, needle
# (the plaintext metrics port's answers cross too: public aggregates, no request data)
PY

# --- a budget that cannot be split among the engines: refused at start, saying why;
# the same budget serves one engine (a check, then a clean stop) ---
rc=0; "$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 2 \
  --workers 2 --budget 1M >"$T/small.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q 'each of its 2 engines gets 1/2 of the budget' "$T/small.out" && ok ||
  { bad "a budget too small for 2 engines: rc $rc"; cat "$T/small.out" >&2; }
"$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --budget 1M --max-batch 4 >"$T/one.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/one.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^engines: 1 per model' "$T/one.out" && ok || { bad "1M serves one engine"; cat "$T/one.out" >&2; }
grep -q '^batch fmnist 1 request per run (every weight resident' "$T/one.out" && ok ||
  { bad "a resident model is not batched"; cat "$T/one.out" >&2; }
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=

# --- the default pool (no --workers): one engine per core unless splitting the budget makes
# the model stream more than the per-layer barriers of a multi-threaded engine cost. Eight
# 512x512 fully connected layers (8 MiB, few FLOPs): at 12M two engines fit but would stream,
# one engine keeps every weight resident; at 93M both keep them all, and one per core wins ---
"$PY" - "$T/fc8.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(1)
nodes, inits = [], []
for i in range(8):
    inits.append(nh.from_array((rng.standard_normal((512, 512)) / 22).astype(np.float32), f"W{i}"))
    nodes.append(h.make_node("Gemm", [f"x{i}", f"W{i}"], [f"x{i + 1}" if i < 7 else "y"]))
g = h.make_graph(nodes, "fc8", [h.make_tensor_value_info("x0", T.FLOAT, [1, 512])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, 512])], inits)
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), sys.argv[1])
PY
"$OCC" pack "$T/fc8.onnx" -o "$T/fc8.occ" --quiet >/dev/null
pool_of() { # BUDGET [PACK] -> the server's stderr up to 'listening'
  "$OCC" serve --model m="${2:-$T/fc8.occ}" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 2 \
    --mode occlumency --budget "$1" >"$T/pool.out" 2>"$T/pool.err" &
  SERVER_PID=$!
  for _ in $(seq 300); do grep -q '^listening' "$T/pool.out" 2>/dev/null && break; sleep 0.1; done
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=
}
pool_of 12M
grep -q '^occ serve: 1 engine of 2 threads per model' "$T/pool.err" &&
  grep -Eq 'equivalents: 2: [0-9.]+, 1: [0-9.]+$' "$T/pool.err" && grep -q '^engines: 1 per model' "$T/pool.out" &&
  ok || { bad "12M: one engine (two would fit but stream)"; cat "$T/pool.err" "$T/pool.out" >&2; }
pool_of 93M
grep -q '^occ serve: 2 engines of 1 thread per model' "$T/pool.err" && grep -q '^engines: 2 per model' "$T/pool.out" &&
  ok || { bad "93M: one engine per core"; cat "$T/pool.err" "$T/pool.out" >&2; }
# the host plans the pool as the enclave will (whole EPC pages): across the budgets where the
# split starts to fit, the pool it picks always loads
for b in 1400K 1450K 1500K 1550K 1600K 1650K; do
  pool_of "$b" "$T/m.occ"
  grep -q '^listening' "$T/pool.out" && ok || { bad "fmnist at $b: the default pool does not start"; cat "$T/pool.err" >&2; }
done

# --- dynamic batching: one engine planned for 4 requests at once ---
"$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" --threads 1 \
  --mode native --max-batch 4 --batch-wait-us 50000 --metrics 127.0.0.1:0 >"$T/batch.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do grep -q '^listening' "$T/batch.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^batching: the engine runs batches' "$T/batch.out" && grep -q '^batch fmnist up to 4 requests' "$T/batch.out" &&
  ok || { bad "batching on"; cat "$T/batch.out" >&2; }
BPORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/batch.out")
BMPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$T/batch.out")
pids=()
for k in $(seq 1 6); do
  "$OCC" infer "https://127.0.0.1:$BPORT" --model fmnist --tensor "$T/x$k.bin" --output "$T/b$k.bin" --repeat 4 \
    --policy "$T/policy.json" --root "$T/emu/root.pem" >/dev/null 2>"$T/b$k.err" &
  pids+=($!)
done
for k in $(seq 1 6); do
  wait "${pids[$((k - 1))]}" && "$PY" - "$T/b$k.bin" "$T/ref$k.bin" <<'PY' && ok || { bad "batched client $k"; cat "$T/b$k.err" >&2; }
import struct, sys
a, b = (struct.unpack("10f", open(p, "rb").read()) for p in sys.argv[1:3])
assert all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a, b)), (a, b)
PY
done
curl -s "http://127.0.0.1:$BMPORT/metrics" >"$T/bmetrics.txt"
"$PY" - "$T/bmetrics.txt" <<'PY' && ok || { bad "no batch of more than one request"; grep batch "$T/bmetrics.txt" >&2; }
import sys
m = dict(l.rsplit(" ", 1) for l in open(sys.argv[1]) if l[0] != "#" and " " in l)
ones, count = float(m['occ_batch_size_bucket{le="1"}']), float(m["occ_batch_size_count"])
assert m['occ_engine_batching{model="fmnist"}'].strip() == "4"
assert count > ones > -1, (ones, count)
PY
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok || bad "batching serve exits 0"; SERVER_PID=

finish
