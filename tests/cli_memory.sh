#!/usr/bin/env bash
# Request memory (issue 15, item 4): a client must not make the enclave
# reserve memory it was never sent, nor build a JSON tree out of proportion
# to what the model takes; one enclave-wide budget (--request-memory) answers
# 503 beyond it, and everybody else keeps being served. Against the real
# `occ serve --enclave emu` with the bundled fmnist model (784 inputs), the
# server's RSS sampled from /proc every 10 ms:
#  - 16 TLS connections announcing 60 MB bodies and sending 10 MB each (to
#    the infer route, chunked, and to another route) grow the server by at most
#    128 MiB, while an attested client is served exactly;
#  - a 4 MB JSON body for the 784-value input (sized and chunked) is refused,
#    the peak RSS growing by at most 32 MiB; a 100 KB one of 50,000 zeros (under
#    the model's body limit) is refused without building its tree;
#  - with --request-memory 128K, 8 connections each holding a 100 KB body
#    half sent: some get 503, the attested client is served meanwhile.
set -euo pipefail
OCC=${OCC_BIN:?OCC_BIN not set}
SRC=${OCC_SRC:?OCC_SRC not set}
PY=/usr/bin/python3
SERVER_PID=
on_exit() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; }
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"

pack_fmnist
mkdir -m 700 "$T/emu"
fmnist_input 1

start() { # start LOG ARGS...: starts occ serve, sets SERVER_PID, PORT, MPORT
  local log=$1; shift
  "$OCC" serve --model fmnist="$T/m.occ" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" \
    --metrics 127.0.0.1:0 --threads 2 --workers 2 "$@" >"$T/$log.log" 2>"$T/$log.err" &
  SERVER_PID=$!
  for _ in $(seq 300); do grep -q '^listening' "$T/$log.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^listening' "$T/$log.log" || { cat "$T/$log.log" "$T/$log.err" >&2; echo "server did not start" >&2; exit 1; }
  PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/$log.log")
  MPORT=$(sed -n 's/^metrics .*(port \([0-9]*\))$/\1/p' "$T/$log.log")
  MRENCLAVE=$(awk '/^mrenclave /{print $2}' "$T/$log.log")
  printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$MRENCLAVE" "$MODEL_ID" >"$T/policy.json"
}
stop() { # stop NAME: SIGTERM, exit 0, no sanitizer report
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" && ok || bad "$1: serve exits 0 on SIGTERM"; SERVER_PID=
  san_clean "$T/$1.err" && ok || { bad "$1: sanitizer report"; cat "$T/$1.err" >&2; }
}
served() { # an attested client gets the exact answer
  "$OCC" infer "https://127.0.0.1:$PORT" --model fmnist --tensor "$T/x.bin" --output "$T/y.bin" \
    --policy "$T/policy.json" --root "$T/emu/root.pem" --repeat "${1:-1}" 2>"$T/infer.err" && cmp -s "$T/y.bin" "$T/ref.bin"
}
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v k="$1" '$1 == k {print $2}'; }

# attack.py PID PORT KIND CONNS -> prints "<peak RSS growth in KiB> <HTTP statuses seen>"
cat >"$T/attack.py" <<'PY'
import socket, ssl, sys, threading, time
pid, port, kind, conns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
base = rss(); peak = base; done = False
def sample():
    global peak
    while not done:
        peak = max(peak, rss()); time.sleep(0.01)
statuses = []; lock = threading.Lock(); hold = threading.Event()
MB = 1 << 20
def one(i):
    ctx = ssl._create_unverified_context()  # only memory is tested here; occ infer attests
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
    except OSError:
        return
    try:
        if kind == "announce":      # 60 MB announced, 10 MB sent
            s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: 60000000\r\n\r\n")
            for _ in range(10): s.sendall(b"0," * (MB // 2))
        elif kind == "chunked":     # 10 MB in 1 MB chunks, no length announced
            s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(10): s.sendall(b"100000\r\n" + b"0," * (MB // 2) + b"\r\n")
        elif kind == "other":       # 60 MB announced to a route that takes no body
            s.sendall(b"POST /v2/health/ready HTTP/1.1\r\nContent-Length: 60000000\r\n\r\n")
            for _ in range(10): s.sendall(b"\0" * MB)
        elif kind in ("json4m", "json4m_chunked"):  # a 4 MB JSON body of zeros for the 784-value input
            body = b'{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[' + b"0," * (2 * MB - 40) + b"0]}]}"
            if kind == "json4m":
                s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            else:
                s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                for k in range(0, len(body), 65536):
                    c = body[k:k + 65536]; s.sendall(b"%x\r\n" % len(c) + c + b"\r\n")
                s.sendall(b"0\r\n\r\n")
        elif kind == "json100k":    # 50,000 zeros: under the body limit, over the values the input needs
            body = b'{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[' + b"0," * 50000 + b"0]}]}"
            s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        elif kind == "hold":        # 100 KB announced (under the limit), 90 KB sent, then wait
            s.sendall(b"POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"0," * 45000)
            hold.wait(20)
    except OSError:
        pass
    try:
        s.settimeout(5 if kind != "hold" else 0.5)
        data = s.recv(4096)
        with lock: statuses.append(data.split(b" ")[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed")
    except (OSError, IndexError):
        with lock: statuses.append("closed")
    if kind == "hold":
        hold.wait(20)
    s.close()
t = threading.Thread(target=sample); t.start()
ths = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for x in ths: x.start()
if kind == "hold":
    time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 3)
    hold.set()
for x in ths: x.join()
time.sleep(0.2); done = True; t.join()
print((peak - base), " ".join(sorted(statuses)))
PY

# --- 16 connections announcing 60 MB bodies, sending 10 MB each ---
start big --max-body 64M
served 3 && ok || bad "warm-up"
for kind in announce chunked other; do
  "$PY" "$T/attack.py" "$SERVER_PID" "$PORT" "$kind" 16 >"$T/a.out" &
  apid=$!
  sleep 0.3
  served 5 && ok || { bad "$kind: the attested client was not served meanwhile"; cat "$T/infer.err" >&2; }
  wait "$apid"
  read -r grew statuses <"$T/a.out"
  echo "16 x $kind: peak RSS +$((grew / 1024)) MiB; answers: $(echo "$statuses" | tr ' ' '\n' | sort | uniq -c | tr -s ' \n' ' ')"
  [ "$grew" -le $((128 * 1024)) ] && ok || bad "16 x $kind: the server grew by $((grew / 1024)) MiB (> 128 MiB)"
  echo "$statuses" | grep -q 413 && ok || bad "16 x $kind: no 413 ($statuses)"
done
served && ok || bad "served after the announcements"

# --- JSON bodies out of proportion to the model's 784 values ---
for kind in json4m json4m_chunked; do
  "$PY" "$T/attack.py" "$SERVER_PID" "$PORT" "$kind" 1 >"$T/a.out"
  read -r grew statuses <"$T/a.out"
  echo "$kind: peak RSS +$((grew / 1024)) MiB; answer $statuses"
  [ "$grew" -le $((32 * 1024)) ] && ok || bad "$kind: the server grew by $((grew / 1024)) MiB (> 32 MiB)"
  [ "$statuses" = 413 ] && ok || bad "$kind: answered '$statuses' (want 413)"
done
"$PY" "$T/attack.py" "$SERVER_PID" "$PORT" json100k 1 >"$T/a.out"
read -r grew statuses <"$T/a.out"
[ "$statuses" = 400 ] && ok || bad "100 KB of zeros: answered '$statuses' (want 400)"
[ "$grew" -le $((32 * 1024)) ] && ok || bad "100 KB of zeros: the server grew by $((grew / 1024)) MiB"
served && ok || bad "served after the JSON bodies"
stop big

# --- one enclave-wide budget: 503 beyond it, the others served ---
start budget --request-memory 128K
"$PY" "$T/attack.py" "$SERVER_PID" "$PORT" hold 8 4 >"$T/a.out" &
apid=$!
sleep 1.5
served 3 && ok || { bad "budget: the attested client was not served while the budget was taken"; cat "$T/infer.err" >&2; }
refused=$(metric occ_request_memory_refusals_total)
wait "$apid"
read -r grew statuses <"$T/a.out"
echo "8 x 100 KB half sent under --request-memory 128K: answers $statuses; refusals $refused"
echo "$statuses" | grep -q 503 && ok || bad "budget: no 503 ($statuses)"
[ "${refused:-0}" -ge 1 ] && ok || bad "budget: occ_request_memory_refusals_total = ${refused:-?}"
[ "$(metric occ_request_memory_bytes)" = 0 ] && ok || bad "budget: request memory not returned: $(metric occ_request_memory_bytes)"
served && ok || bad "budget: served after"
stop budget
finish
