#!/usr/bin/env bash
# Soak test: C attested connections against `occ serve --enclave emu` on loopback for M minutes.
#   scripts/soak.sh OCC_BIN [CONNECTIONS] [MINUTES] [MODEL]      (make soak CONNECTIONS=32 MINUTES=10)
# Bounded in time (rounds start only before the deadline; a hard timeout stops a stuck round) and in
# count (each round sends REQUESTS inputs, default 8 per connection). Loopback only.
# Each round is one `occ infer --tensors FILE --connections C` (fresh attested connections, every
# answer compared with the first round's: see same_answers); it reports requests/s, p50, p99 of the round.
# Warm-up: WARMUP rounds (default 3) before RSS is first read.
# Reports: requests, requests/s, median of the rounds' p50, worst round p99, failed requests, and
# the server's RSS after the warm-up round and at the end (VmRSS), with the growth in percent.
# MODEL: a zoo name (packed from ZOO/NAME.onnx; ZOO = /work/zoo, ../zoo or build/zoo, exported
# with tools/export_models.py when missing) or fmnist (the bundled model).
# Extra server options: SERVE_OPTS="--mode occlumency --budget 32M". Result: SOAK_OUT (soak.json).
set -euo pipefail
OCC=$(realpath "${1:?usage: soak.sh OCC_BIN [CONNECTIONS] [MINUTES] [MODEL]}")
C=${2:-32}
MIN=${3:-10}
MODEL=${4:-mobilenet_v2}
REQUESTS=${REQUESTS:-$((8 * C))}
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
W=${SOAK_DIR:-$SRC/build/soak}
OUT=${SOAK_OUT:-$W/soak.json}
mkdir -p "$W"
T=$(mktemp -d)
SP=
cleanup() { [ -n "$SP" ] && kill "$SP" 2>/dev/null && wait "$SP" 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
case "$C$MIN" in *[!0-9.]*) echo "soak: CONNECTIONS and MINUTES are numbers" >&2; exit 2 ;; esac
[ "$C" -ge 1 ] && [ "$C" -le 256 ] || { echo "soak: 1..256 connections" >&2; exit 2; }

# ---- the model ----
PACK= INPUT=
if [ "$MODEL" != fmnist ]; then
  ZOO=
  for d in /work/zoo "$SRC/../zoo" "$SRC/build/zoo"; do [ -f "$d/$MODEL.onnx" ] && { ZOO=$d; break; }; done
  if [ -z "$ZOO" ] && [ -f "$SRC/tools/export_models.py" ]; then
    echo "soak: exporting $MODEL with tools/export_models.py into build/zoo"
    mkdir -p "$SRC/build/zoo"
    nice -n 10 "$PY" "$SRC/tools/export_models.py" "$SRC/build/zoo" "$MODEL" >/dev/null 2>&1 || true
    [ -f "$SRC/build/zoo/$MODEL.onnx" ] && ZOO=$SRC/build/zoo
  fi
  if [ -n "$ZOO" ]; then
    PACK=$W/$MODEL.occ
    [ -s "$PACK" ] && [ "$PACK" -nt "$ZOO/$MODEL.onnx" ] || "$OCC" pack "$ZOO/$MODEL.onnx" -o "$PACK" --quiet >/dev/null
    INPUT=$ZOO/$MODEL.input.bin
  else
    echo "soak: no $MODEL.onnx in /work/zoo, ../zoo or build/zoo and no exporter: using the bundled fmnist model" >&2
    MODEL=fmnist
  fi
fi
if [ "$MODEL" = fmnist ]; then
  PACK=$W/fmnist.occ
  # shellcheck disable=SC2046
  "$OCC" pack "$SRC/models/fmnist.onnx" -o "$PACK" --labels "$SRC/models/fmnist.labels" \
    $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null
  INPUT=
fi
# REQUESTS inputs: the zoo's input, or seeded random ones, varied a little per request
"$PY" - "$OCC" "$PACK" "${INPUT:-}" "$REQUESTS" "$T/x.bin" <<'PY'
import json, random, struct, subprocess, sys
occ, pack, inp, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
info = json.loads(subprocess.run([occ, "inspect", pack, "--json"], capture_output=True, text=True, check=True).stdout)
count = 1
for d in info["inputs"][0]["shape"]:
    count *= d
base = list(struct.unpack(f"{count}f", open(inp, "rb").read(4 * count))) if inp else None
r = random.Random(1)
with open(out, "wb") as f:
    for k in range(n):
        v = base[:] if base else [r.uniform(-1, 2) for _ in range(count)]
        v[k % count] += 0.5  # each request a different input
        f.write(struct.pack(f"{count}f", *v))
PY

# ---- the server ----
mkdir -m 700 -p "$T/emu"
# shellcheck disable=SC2086
"$OCC" serve --model "$MODEL=$PACK" --listen 127.0.0.1:0 --enclave emu --emu-dir "$T/emu" \
  --max-connections $((C + 16)) ${SERVE_OPTS:-} >"$T/serve.log" 2>"$T/serve.err" &
SP=$!
for _ in $(seq 1200); do grep -q '^listening' "$T/serve.log" 2>/dev/null && break; kill -0 "$SP" || break; sleep 0.1; done
grep -q '^listening' "$T/serve.log" || { cat "$T/serve.err" >&2; echo "soak: server did not start" >&2; exit 1; }
PORT=$(sed -n 's/^listening .*(port \([0-9]*\))$/\1/p' "$T/serve.log")
printf '{"mrenclave": ["%s"], "model_id": "%s", "allow_emulated": true}\n' "$(awk '/^mrenclave /{print $2}' "$T/serve.log")" \
  "$(awk '/^report_data_model_binding /{print $2}' "$T/serve.log")" >"$T/policy.json"
rss() { awk '/^VmRSS:/{print $2}' "/proc/$SP/status"; }
# Every answer of a round against the first round's: byte for byte, or - when
# requests were batched differently (a batched fully connected layer sums in
# another order than a single one) - within 1e-5 relative (as tests/cli_serve.sh) and the same top-1
# for every request. A corrupted answer fails either way.
same_answers() {
  cmp -s "$1" "$2" && return 0
  "$PY" - "$1" "$2" "$REQUESTS" <<'PY'
import sys
import numpy as np
a, b = (np.fromfile(p, dtype=np.float32) for p in sys.argv[1:3])
n = int(sys.argv[3])
ok = a.size == b.size and a.size % n == 0 and np.all(np.isfinite(a))
if ok:
    ok = bool(np.all(np.abs(a - b) <= 1e-5 * np.maximum(1.0, np.abs(b))))
    ok = ok and bool(np.all(a.reshape(n, -1).argmax(1) == b.reshape(n, -1).argmax(1)))
sys.exit(0 if ok else 1)
PY
}
round() { # round N: one pass over the inputs; appends its JSON line to rounds.jsonl
  local rc=0
  timeout 600 "$OCC" infer "https://127.0.0.1:$PORT" --model "$MODEL" --tensors "$T/x.bin" --connections "$C" \
    --output "$T/y.bin" --policy "$T/policy.json" --root "$T/emu/root.pem" --json >"$T/r.json" 2>"$T/r.err" || rc=$?
  if [ $rc -eq 0 ] && { [ ! -f "$T/y0.bin" ] || same_answers "$T/y.bin" "$T/y0.bin"; }; then
    [ -f "$T/y0.bin" ] || cp "$T/y.bin" "$T/y0.bin"
    "$PY" -c "import json,sys; d=json.load(open('$T/r.json')); d['failed']=0; d['round']=$1; d['rss_kib']=$(rss); print(json.dumps(d))" >>"$T/rounds.jsonl"
  else
    echo "soak: round $1 failed (rc $rc): $(tail -1 "$T/r.err")" >&2
    echo "{\"round\": $1, \"failed\": $REQUESTS, \"requests\": $REQUESTS, \"rc\": $rc, \"rss_kib\": $(rss)}" >>"$T/rounds.jsonl"
  fi
}

echo "soak: $MODEL, $C connections, $MIN min, $REQUESTS requests a round, server pid $SP ($(grep -c . "$T/serve.log") banner lines)"
# warm-up, not counted: the allocator's per-thread arenas and TLS/batch buffers reach their
# working size over the first rounds (RSS is flat after that; a leak grows it every round)
for w in $(seq 1 "${WARMUP:-3}"); do round "-$w"; done
echo "soak: warm-up done ($(grep -c '"failed": 0' "$T/rounds.jsonl" || true) of ${WARMUP:-3} rounds ok), server RSS $(rss) KiB"
: >"$T/rounds.jsonl"
RSS0=$(rss)
T0=$(date +%s.%N)
DEADLINE=$("$PY" -c "print($T0 + 60 * $MIN)")
n=0
while "$PY" -c "import time,sys; sys.exit(0 if time.time() < $DEADLINE else 1)"; do
  n=$((n + 1))
  round "$n"
  if [ $((n % 10)) -eq 0 ]; then echo "soak: round $n, server RSS $(rss) KiB"; fi
done
T1=$(date +%s.%N)
RSS1=$(rss)
kill "$SP"; rc=0; wait "$SP" || rc=$?; SP=
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/serve.err"; then
  grep -A30 -E 'Sanitizer|runtime error:' "$T/serve.err" | head -60 >&2
  [ $rc -ne 0 ] || rc=99
fi
"$PY" - "$T/rounds.jsonl" "$T0" "$T1" "$RSS0" "$RSS1" "$MODEL" "$C" "$MIN" "$rc" "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t0, t1, rss0, rss1 = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
okr = [r for r in rows if not r["failed"]]
req = sum(r["requests"] for r in rows)
failed = sum(r["failed"] for r in rows)
res = {
    "model": sys.argv[6], "connections": int(sys.argv[7]), "minutes": float(sys.argv[8]),
    "rounds": len(rows), "requests": req, "failed_requests": failed,
    "seconds": round(t1 - t0, 1), "requests_per_s": round((req - failed) / (t1 - t0), 2),
    "p50_ms_median_of_rounds": round(statistics.median(r["p50_ms"] for r in okr), 2) if okr else None,
    "p99_ms_worst_round": round(max(r["p99_ms"] for r in okr), 2) if okr else None,
    "p99_ms_median_of_rounds": round(statistics.median(r["p99_ms"] for r in okr), 2) if okr else None,
    "rss_kib_after_warmup": rss0, "rss_kib_end": rss1,
    "rss_kib_mid": rows[len(rows) // 2].get("rss_kib") if rows else None,
    "rss_kib_rounds_sampled": [r.get("rss_kib") for r in rows[:: max(1, len(rows) // 10)]],
    "rss_growth_pct": round(100.0 * (rss1 - rss0) / rss0, 2),
    "server_exit": int(sys.argv[9]),
}
json.dump(res, open(sys.argv[10], "w"), indent=1)
for k, v in res.items():
    print(f"  {k:26} {v}")
ok = failed == 0 and res["rss_growth_pct"] <= 10 and res["server_exit"] == 0
print("soak:", "PASS" if ok else "FAIL", "(no failed request, RSS growth <= 10%, clean exit)")
sys.exit(0 if ok else 1)
PY
