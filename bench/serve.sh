#!/usr/bin/env bash
# Server throughput vs `occ run --mode native` (issue 6's performance check).
#
#   bench/serve.sh [OCC_BIN] [ZOO_DIR] [OUT.md]
#
# For each model (MODELS, default "mobilenet_v2 resnet50"): packs ZOO/NAME.onnx
# if needed; measures `occ run --mode native --threads T --repeat N` (one
# stream: throughput = runs / time = 1000 / mean_ms, like the server's
# requests / time; 1000 / median_ms is shown beside it, and the best round:
# native 2-thread runs are bimodal on this VM, see docs/benchmarks.md); starts `occ serve` in the emulated
# enclave (EPC 93 MiB, sgx1 cost model, MODE/BUDGET below, same threads) and
# sends REQUESTS requests over CONNECTIONS attested connections with
# `occ infer --tensors` (requests/s, p50, p99); then the attested handshake
# cost (`occ attest`, client side, quote verification included). ROUNDS
# rounds, native and server interleaved; medians reported. The reference
# (issue 14) is per round the better of that one THREADS-thread stream and
# THREADS 1-thread `occ run` processes side by side.
#
# Environment: MODELS, THREADS (2), CONNECTIONS (8), REQUESTS (200),
# REPEAT (50), ROUNDS (5), SERVE_ARGS (default "--budget 93M": occlumency mode
# within 93 MiB; several configurations to compare side by side: separate
# them with ';', each gets its own row and its own interleaved native runs),
# WORK_DIR (build/bench-serve). CPU columns: the server's CPU time per request
# (/proc/PID/stat) and the client's (`/usr/bin/time`; its attested handshakes
# and reading the tensors included), beside the 1-thread native processes'
# wall time per image (their CPU per image when nothing else wants the cores):
# steadier than throughput here.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC=${1:-$ROOT/build/release/occ}
ZOO=${2:-$ROOT/build/zoo}
OUT_MD=${3:-$ROOT/build/bench-serve.md}
MODELS=${MODELS:-mobilenet_v2 resnet50}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-8}
REQUESTS=${REQUESTS:-200}
REPEAT=${REPEAT:-50}
ROUNDS=${ROUNDS:-5}
SERVE_ARGS=${SERVE_ARGS:---budget 93M}
WORK=${WORK_DIR:-$ROOT/build/bench-serve}
PY=/usr/bin/python3
mkdir -p "$WORK"
[[ -d $WORK/emu ]] || mkdir -m 700 "$WORK/emu"
SERVER_PID=
stop_server() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; }
trap stop_server EXIT
field() { "$PY" "$ROOT/tools/jsonfield.py" - "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { "$PY" -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.3f" % statistics.median(v))' "$@"; }

rows=()
IFS=';' read -r -a CONFIGS <<<"$SERVE_ARGS"
for m in $MODELS; do
for cfg in "${CONFIGS[@]}"; do
  pack=$WORK/$m.occ
  [[ -f $pack ]] || "$OCC" pack "$ZOO/$m.onnx" -o "$pack" --quiet >/dev/null
  input=$ZOO/$m.input.bin
  tensors=$WORK/$m.tensors.bin
  "$PY" -c "import sys; d=open('$input','rb').read(); open('$tensors','wb').write(d*$REQUESTS)"
  model_id=$("$OCC" inspect "$pack" --json | field model_id)

  "$OCC" serve --model "$m=$pack" --listen 127.0.0.1:0 --enclave emu --emu-dir "$WORK/emu" \
    --threads "$THREADS" $cfg >"$WORK/serve.log" 2>"$WORK/serve.err" &
  SERVER_PID=$!
  for _ in $(seq 600); do grep -q '^listening' "$WORK/serve.log" 2>/dev/null && break; sleep 0.1; done
  grep -q '^listening' "$WORK/serve.log" || { cat "$WORK/serve.err" >&2; exit 1; }
  port=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$WORK/serve.log")
  mrenclave=$(awk '/^mrenclave /{print $2}' "$WORK/serve.log")
  printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_debug": false, "allow_emulated": true}\n' "$mrenclave" "$model_id" >"$WORK/policy.json"
  url=https://127.0.0.1:$port
  # warm-up
  "$OCC" infer "$url" --model "$m" --tensors "$input" --output /dev/null --policy "$WORK/policy.json" \
    --root "$WORK/emu/root.pem" --json >/dev/null

  nat=() natmed=() par=() ref=() thr=() p50=() p99=() hs=() scpu=() ccpu=() ncpu=()
  for r in $(seq "$ROUNDS"); do
    echo "bench-serve: $m [$cfg] round $r/$ROUNDS" >&2
    "$OCC" run "$pack" --mode native --threads "$THREADS" --input "$input" --output /dev/null \
      --repeat "$REPEAT" --stats --json >"$WORK/native.json"
    nat+=("$("$PY" -c "print(1000/$(field mean_ms <"$WORK/native.json"))")")
    natmed+=("$("$PY" -c "print(1000/$(field median_ms <"$WORK/native.json"))")")
    # the other way to use the cores: one 1-thread process per core, side
    # by side (their throughputs add up)
    pids=()
    for k in $(seq "$THREADS"); do
      "$OCC" run "$pack" --mode native --threads 1 --input "$input" --output /dev/null \
        --repeat "$REPEAT" --stats --json >"$WORK/native1.$k.json" & pids+=($!)
    done
    wait "${pids[@]}"
    par+=("$(for k in $(seq "$THREADS"); do field mean_ms <"$WORK/native1.$k.json"; done |
             "$PY" -c 'import sys; print(sum(1000/float(x) for x in sys.stdin.read().split()))')")
    ref+=("$("$PY" -c "print(max(${nat[-1]}, ${par[-1]}))")")
    # CPU time, steadier than throughput on a shared VM: the server's (from
    # /proc) and the client's, per request, beside the 1-thread native
    # processes' time per image
    c0=$(cpu_ticks "$SERVER_PID")
    /usr/bin/time -f '%U %S' -o "$WORK/client.time" \
    "$OCC" infer "$url" --model "$m" --tensors "$tensors" --connections "$CONNECTIONS" --output /dev/null \
      --policy "$WORK/policy.json" --root "$WORK/emu/root.pem" --json >"$WORK/infer.json"
    c1=$(cpu_ticks "$SERVER_PID")
    scpu+=("$("$PY" -c "print(($c1 - $c0) * 1000 / $(getconf CLK_TCK) / $REQUESTS)")")
    ccpu+=("$("$PY" -c "u, s = open('$WORK/client.time').read().split()[-2:]; print((float(u) + float(s)) * 1000 / $REQUESTS)")")
    ncpu+=("$(for k in $(seq "$THREADS"); do field mean_ms <"$WORK/native1.$k.json"; done |
              "$PY" -c 'import sys, statistics; print(statistics.mean(float(x) for x in sys.stdin.read().split()))')")
    thr+=("$(field throughput_per_s <"$WORK/infer.json")")
    echo "bench-serve:   native ${nat[-1]} req/s ($THREADS x 1 thread: ${par[-1]}), server ${thr[-1]} req/s" >&2
    p50+=("$(field p50_ms <"$WORK/infer.json")")
    p99+=("$(field p99_ms <"$WORK/infer.json")")
    t0=$(date +%s%N)
    "$OCC" attest "$url" --policy "$WORK/policy.json" --root "$WORK/emu/root.pem" >/dev/null
    hs+=("$(( ($(date +%s%N) - t0) / 1000000 ))")
  done
  stop_server
  n=$(median "${nat[@]}") s=$(median "${thr[@]}") pn=$(median "${par[@]}") rf=$(median "${ref[@]}")
  best=$("$PY" -c 'import sys; print("%.3f" % max(float(x) for x in sys.argv[1:]))' "${nat[@]}")
  rows+=("| $m | \`$cfg\` | $THREADS | $n | $(median "${natmed[@]}") | $best | $pn | $s | $("$PY" -c "print('%.2f' % ($s/$n))") | **$("$PY" -c "print('%.2f' % ($s/$rf))")** | $(median "${p50[@]}") | $(median "${p99[@]}") | $(median "${hs[@]}") | $(median "${scpu[@]}") | $(median "${ccpu[@]}") | $(median "${ncpu[@]}") |")
done
done

{
  echo "## Server throughput vs native (issue 6)"
  echo
  echo "$(date -u +%F), load before/after: see below; occ $(git -C "$ROOT" rev-parse --short HEAD); $CONNECTIONS attested"
  echo "connections, $REQUESTS requests per round, server: \`occ serve --enclave emu --epc 93M --cost-model sgx1 --threads $THREADS CONFIG\`;"
  echo "native: \`occ run --mode native --threads $THREADS --repeat $REPEAT\` (runs / time = 1000/mean; 1000/median beside it). Medians of $ROUNDS interleaved rounds."
  echo "Handshake: wall time of one \`occ attest\` process (TLS 1.3 + quote verification + policy), client side."
  echo
  echo "Reference (issue 14): per round the better of one $THREADS-thread stream and $THREADS 1-thread \`occ run\` processes side by side (their 1000/mean added)."
  echo
  echo "| model | config | threads | native req/s (1000/mean) | (1000/median) | native best round | $THREADS x 1-thread req/s | server req/s | server/native | server/reference | p50 ms | p99 ms | attest ms | server CPU ms/request | client CPU ms/request | native 1-thread ms/image (wall, two side by side) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT_MD"
