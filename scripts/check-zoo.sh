#!/usr/bin/env bash
# Numerical fidelity on the torchvision zoo (seeded random weights).
#
#   scripts/check-zoo.sh [OCC_BIN] [ZOO_DIR]        (make check-zoo [ZOO_DIR=...])
#
# For each model: exports it into ZOO_DIR with tools/export_models.py
# unless ZOO_DIR already holds NAME.onnx, NAME.input.bin and NAME.output.bin
# (so an existing, shared export directory is reused as is), packs it with
# `occ pack`, runs `occ run` on the reference input and compares the output
# with PyTorch's (NAME.output.bin) and with ONNX Runtime's on the same input:
# max|out-ref|/max|ref| <= TOL and the same top-1. Prints a table; exits 1 if
# any model fails.
#
# If ZOO_DIR does not exist and ../zoo (the shared cache beside the repo, or
# $OCC_ZOO_CACHE) does, ZOO_DIR is made a symlink to it.
# Environment: MODELS (space-separated subset), TOL (default 1e-3),
# OCC_THREADS (passed as --threads), WORK_DIR (packs and outputs, default
# build/check-zoo; never written into ZOO_DIR), SKIP_ORT=1, EXPORT_MODELS
# (path of export_models.py), STEP_TIMEOUT (seconds per step, default 900).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OCC_BIN=${1:-$ROOT/build/release/occ}
ZOO_DIR=${2:-$ROOT/build/zoo}
MODELS=${MODELS:-alexnet vgg16 vgg19 resnet50 resnet101 resnet152 googlenet squeezenet1_0 mobilenet_v2}
TOL=${TOL:-1e-3}
WORK_DIR=${WORK_DIR:-$ROOT/build/check-zoo}
EXPORT_MODELS=${EXPORT_MODELS:-$ROOT/tools/export_models.py}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
PY=/usr/bin/python3
ORT_RUN=$ROOT/tools/ort/run.js

die() { echo "check-zoo: $*" >&2; exit 2; }

[[ -x $OCC_BIN ]] || die "occ binary not found or not executable: $OCC_BIN (run make build)"
OCC_BIN=$(cd "$(dirname "$OCC_BIN")" && pwd)/$(basename "$OCC_BIN")
# A shared export cache beside the repository (../zoo, or $OCC_ZOO_CACHE; set
# it empty to disable) is reused when ZOO_DIR does not exist yet: ZOO_DIR
# becomes a symlink to it, so `make check-zoo` does not re-export 2 GB.
cache=${OCC_ZOO_CACHE-$ROOT/../zoo}
if [[ ! -e $ZOO_DIR && -n $cache && -d $cache ]]; then
  mkdir -p "$(dirname "$ZOO_DIR")"
  ln -s "$(cd "$cache" && pwd)" "$ZOO_DIR"
  echo "check-zoo: $ZOO_DIR -> $(cd "$cache" && pwd) (existing export cache)" >&2
fi
mkdir -p "$ZOO_DIR" "$WORK_DIR"
ZOO_DIR=$(cd "$ZOO_DIR" && pwd)

use_ort=1
if [[ ${SKIP_ORT:-0} == 1 ]]; then
  use_ort=0
elif [[ ! -d $ROOT/tools/ort/node_modules/onnxruntime-node ]] || ! command -v node >/dev/null; then
  die "onnxruntime-node missing (run: bash scripts/install-deps.sh), or set SKIP_ORT=1"
fi

# ---- export what is missing ----
read -r -a model_list <<<"$MODELS"
to_export=()
for m in "${model_list[@]}"; do
  for f in "$m.onnx" "$m.input.bin" "$m.output.bin"; do
    if [[ ! -s $ZOO_DIR/$f ]]; then to_export+=("$m"); break; fi
  done
done
if ((${#to_export[@]})); then
  [[ -f $EXPORT_MODELS ]] || die "exporter not found: $EXPORT_MODELS"
  echo "check-zoo: exporting ${to_export[*]} into $ZOO_DIR (takes a few minutes)" >&2
  "$PY" "$EXPORT_MODELS" "$ZOO_DIR" "${to_export[@]}" >&2 || die "export failed"
fi

threads_args=()
[[ -n ${OCC_THREADS:-} ]] && threads_args=(--threads "$OCC_THREADS")

# compare OUT REF -> prints "rel top1out top1ref ok" (ok = 1/0); never fails
compare() {
  "$PY" "$ROOT/tools/compare.py" --tol "$TOL" --json "$1" "$2" |
    "$PY" -c 'import json,sys; r=json.load(sys.stdin)
print("%s %s %s %d" % ("%.2e" % r["rel"] if "rel" in r else "n/a",
      r.get("top1_out", "-"), r.get("top1_ref", "-"), 1 if r["ok"] else 0))' ||
    echo "n/a - - 0"
}

now_ms() { date +%s%3N; }

rows=()
fail=0
for m in "${model_list[@]}"; do
  onnx=$ZOO_DIR/$m.onnx
  input=$ZOO_DIR/$m.input.bin
  ref=$ZOO_DIR/$m.output.bin
  pack=$WORK_DIR/$m.occ
  out=$WORK_DIR/$m.occ.output.bin
  ort_out=$WORK_DIR/$m.ort.output.bin
  log=$WORK_DIR/$m.log
  : >"$log"
  status=ok pack_s=- run_s=- t_rel=- t_top=- o_rel=- o_top=-
  rm -f "$pack" "$out" "$ort_out"
  if [[ ! -s $onnx || ! -s $input || ! -s $ref ]]; then
    status="FAIL(export)"
  else
    t0=$(now_ms)
    if timeout "$STEP_TIMEOUT" "$OCC_BIN" pack "$onnx" -o "$pack" >>"$log" 2>&1; then
      pack_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN{printf "%.1f", (b-a)/1000}')
      t0=$(now_ms)
      if timeout "$STEP_TIMEOUT" "$OCC_BIN" run "$pack" --input "$input" --output "$out" \
           "${threads_args[@]}" >>"$log" 2>&1; then
        run_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN{printf "%.2f", (b-a)/1000}')
        read -r t_rel a b ok < <(compare "$out" "$ref")
        t_top="$a/$b"
        ((ok)) || status="FAIL(torch)"
        if ((use_ort)); then
          if timeout "$STEP_TIMEOUT" node "$ORT_RUN" "$onnx" --input "$input" --output "$ort_out" \
               >>"$log" 2>&1; then
            read -r o_rel a b ok < <(compare "$out" "$ort_out")
            o_top="$a/$b"
            if ((!ok)); then
              [[ $status == ok ]] && status="FAIL(ort)" || status="$status+ort"
            fi
          else
            [[ $status == ok ]] && status="FAIL(ort-run)" || status="$status+ort-run"
          fi
        fi
      else
        status="FAIL(run)"
      fi
    else
      status="FAIL(pack)"
    fi
  fi
  [[ $status == ok ]] || fail=1
  rows+=("$(printf '%-14s %7s %7s  %9s %9s  %9s %9s  %s' "$m" "$pack_s" "$run_s" \
    "$t_rel" "$t_top" "$o_rel" "$o_top" "$status")")
  if [[ $status != ok ]]; then
    echo "check-zoo: $m: $status (log: $log)" >&2
    tail -n 5 "$log" | sed 's/^/    /' >&2
  fi
done

echo
printf '%-14s %7s %7s  %9s %9s  %9s %9s  %s\n' model pack_s run_s rel_torch top1 rel_ort top1 status
printf '%-14s %7s %7s  %9s %9s  %9s %9s  %s\n' -------------- ------- ------- --------- \
  --------- --------- --------- ------
printf '%s\n' "${rows[@]}"
echo "(tolerance: max|occ-ref|/max|ref| <= $TOL and same top-1; top1 = occ/ref class;" \
  "run_s includes process start and pack loading)"
if ((fail)); then
  echo "check-zoo: FAILED" >&2
  exit 1
fi
echo "check-zoo: all ${#model_list[@]} models OK"
