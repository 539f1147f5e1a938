#!/usr/bin/env bash
# The test-only fault switch (occ/fault.h, OCC_FAULT) is compiled out of
# release builds (issue 15, item 7): compiled as CMake compiles a Release
# build (no OCC_FAULT_INJECTION), src/common/fault.c defines no occ_fault_*
# symbol and code calling the hooks (as the enclave's server.c and exec.c
# do) references none, so nothing in a shipped binary reads OCC_FAULT. With
# OCC_FAULT_INJECTION=1 (test builds) the same objects do: the check can fail.
# The configured release build, when there is one, must not define it.
set -euo pipefail
SRC=${OCC_SRC:?OCC_SRC not set}
CC=${CC:-cc}
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cat >"$T/probe.c" <<'C'
#include "occ/fault.h"
int probe(void);
int probe(void) { occ_fault_worker(); return occ_fault_hit(OCC_FAULT_ALLOC) + (int)occ_fault_flip(0, 0); }
C
for mode in release test; do
  def=; [ $mode = test ] && def=-DOCC_FAULT_INJECTION=1
  "$CC" -std=c11 -O2 -D_GNU_SOURCE $def -I "$SRC/include" -c "$SRC/src/common/fault.c" -o "$T/fault.o"
  "$CC" -std=c11 -O2 -D_GNU_SOURCE $def -I "$SRC/include" -c "$T/probe.c" -o "$T/probe.o"
  n=$(nm "$T/fault.o" "$T/probe.o" | grep -c ' [TU] occ_fault_' || true)
  if [ $mode = release ]; then
    [ "$n" -eq 0 ] && ok || { bad "release: $n occ_fault_* symbols"; nm "$T/fault.o" "$T/probe.o" | grep occ_fault_ >&2; }
    ! strings "$T/fault.o" | grep -q 'FAULT INJECTION ACTIVE' && ok || bad "release: the switch's message is in the object"
  else
    [ "$n" -ge 2 ] && ok || bad "test build: the switch is missing ($n symbols): this check would pass vacuously"
  fi
done
# the release configuration of this tree, if configured
if [ -f "$SRC/build/release/compile_commands.json" ]; then
  ! grep -q 'OCC_FAULT_INJECTION' "$SRC/build/release/compile_commands.json" && ok ||
    bad "build/release compiles with OCC_FAULT_INJECTION"
fi
finish
