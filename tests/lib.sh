# Shared helpers of the CLI-level tests (tests/cli_*.sh): source it after
# `set -euo pipefail`. Gives a scratch dir $T (removed at exit, after the
# script's own on_exit if it has one), pass/fail counters with ok/bad,
# san_clean, expect_error, and finish (prints "N passed, N failed" and sets
# the exit status).
# A script that starts servers defines on_exit (stopping them) before it
# sources this file; it runs at exit, before $T is removed.
T=$(mktemp -d)
lib_exit() {
  if declare -F on_exit >/dev/null; then on_exit || true; fi
  rm -rf "$T"
}
trap lib_exit EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# san_clean FILE: no sanitizer report in FILE
san_clean() { ! grep -qE 'LeakSanitizer|AddressSanitizer|runtime error:' "$1"; }

# expect_error NAME PATTERN CMD...: CMD exits non-zero (not by a signal),
# without a sanitizer report, and its stderr matches the extended regex PATTERN.
expect_error() {
  local name=$1 pattern=$2; shift 2
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  if [ "$rc" -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ "$rc" -gt 128 ]; then bad "$name: killed by signal $((rc - 128))"; cat "$T/err" >&2; return; fi
  if grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' "$T/err"; then bad "$name: sanitizer report"; cat "$T/err" >&2; return; fi
  if ! grep -qE -e "$pattern" "$T/err"; then bad "$name: stderr does not match '$pattern'"; cat "$T/err" >&2; return; fi
  ok
}

finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}

# pack_fmnist: packs the bundled model into $T/m.occ (needs $OCC, $SRC, $PY)
# and sets MODEL_ID.
pack_fmnist() {
  # shellcheck disable=SC2046
  "$OCC" pack "$SRC/models/fmnist.onnx" -o "$T/m.occ" --labels "$SRC/models/fmnist.labels" \
    $(cat "$SRC/models/fmnist.packargs") --quiet >/dev/null
  MODEL_ID=$("$OCC" inspect "$T/m.occ" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')
}

# fmnist_input SEED: a seeded random input $T/x.bin and occ run's answer to it, $T/ref.bin.
fmnist_input() {
  "$PY" - "$T" "$1" <<'PY'
import struct, sys, random
r = random.Random(int(sys.argv[2]))
open(f"{sys.argv[1]}/x.bin", "wb").write(struct.pack("784f", *[r.uniform(-1, 2) for _ in range(784)]))
PY
  "$OCC" run "$T/m.occ" --input "$T/x.bin" --output "$T/ref.bin" >/dev/null
}
