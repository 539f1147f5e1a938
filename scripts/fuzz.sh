#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD for SECONDS each on its committed seed
# corpus (fuzz/corpus/<target>/, copied to a scratch dir so runs don't grow
# the repo), and prints executions and coverage per target. Exits non-zero on
# any crash, leak or timeout; the reproducer is left in build/fuzz-artifacts/.
# FUZZ_TARGETS="quote policy" limits the run to those targets (names without
# the fuzz_ prefix), e.g. to split a long run across cores.
set -euo pipefail
build=${1:?usage: fuzz.sh BUILD_DIR SECONDS}
secs=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
art="$root/build/fuzz-artifacts"
mkdir -p "$art"
status=0
printf '%-22s %12s %8s %8s %s\n' target execs cov ft result
for bin in "$build"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  if [ -n "${FUZZ_TARGETS:-}" ] && ! grep -qw -- "${name#fuzz_}" <<<"$FUZZ_TARGETS"; then
    continue
  fi
  seeds="$root/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  log="$art/$name.log"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix="$art/$name-" "$work" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log)"
    status=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  printf '%-22s %12s %8s %8s %s\n' "$name" "$execs" "$cov" "$ft" "$result"
  rm -rf "$work"
done
exit $status
