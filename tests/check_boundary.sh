#!/usr/bin/env bash
# The trust boundary, enforced by the build (ctest boundary_check; see
# docs/architecture.md "Folders" and docs/security.md):
#
#  1. sources: nothing under the trusted folders (src/engine, src/ops,
#     src/enclave) includes an untrusted header: src/host/, src/pack/,
#     src/cli/, src/client/, src/sgxemu/, or occ/pack.h, occ/packer.h,
#     occ/client.h, occ/boundary_emu.h, occ/epc.h. The trusted core knows the
#     host only as the occ_ocalls table of occ/boundary.h.
#  2. symbols: no symbol that a trusted library leaves undefined is defined by
#     an untrusted library (occ_host, occ_pack): a trusted call to a host
#     function cannot link in the enclave, whatever header it came through.
#     (The CMake side, cmake/occ_boundary.cmake, also refuses at configure
#     time a trusted target whose link closure contains an untrusted one.)
#
# Each check first proves it can fail: a planted violation must be caught.
#
#   check_boundary.sh SRC_DIR --trusted LIB... --untrusted LIB...
set -euo pipefail
SRC=${1:?usage: check_boundary.sh SRC_DIR --trusted LIB... --untrusted LIB...}
shift
trusted=() untrusted=() which=
for a in "$@"; do
  case $a in
    --trusted) which=t ;;
    --untrusted) which=u ;;
    *) if [ "$which" = t ]; then trusted+=("$a"); elif [ "$which" = u ]; then untrusted+=("$a"); else echo "bad argument $a" >&2; exit 2; fi ;;
  esac
done
((${#trusted[@]} > 0 && ${#untrusted[@]} > 0)) || { echo "need --trusted and --untrusted libraries" >&2; exit 2; }
NM=${NM:-nm}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

FORBIDDEN='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]((\.\./)*(src/)?(host|pack|cli|client|sgxemu)/|occ/(pack|packer|client|boundary_emu|epc)\.h)'

# scan_includes DIR...: prints offending lines (file:line:text)
scan_includes() {
  local d
  for d in "$@"; do
    [ -d "$d" ] || continue
    grep -rnE --include='*.c' --include='*.h' "$FORBIDDEN" "$d" || true
  done
}

# --- 1. includes ---
mkdir -p "$T/planted"
printf '#include "occ/model.h"\n  #  include "host/ocalls_file.h"\n' >"$T/planted/a.c"
[ -n "$(scan_includes "$T/planted")" ] && ok || bad "the include scan misses a planted #include of host/"
out=$(scan_includes "$SRC/src/engine" "$SRC/src/ops" "$SRC/src/enclave")
if [ -n "$out" ]; then
  bad "trusted code includes untrusted headers:"
  echo "$out" >&2
else
  ok
fi

# --- 2. symbols ---
undefined_of() { "$NM" -u --format=posix "$@" 2>/dev/null | awk 'NF >= 2 && $2 == "U" {print $1}' | sort -u; }
defined_of() {
  "$NM" --defined-only --format=posix "$@" 2>/dev/null | awk 'NF >= 2 && $2 ~ /^[TDBRVWtdbr]$/ && $2 ~ /[A-Z]/ {print $1}' | sort -u
}
check_symbols() { # prints trusted-undefined symbols that an untrusted lib defines
  local -a tl=("${!1}") ul=("${!2}")
  comm -12 <(comm -23 <(undefined_of "${tl[@]}") <(defined_of "${tl[@]}")) <(defined_of "${ul[@]}")
}
# planted: a trusted object calling a host function must be caught
host_sym=$(defined_of "${untrusted[@]}" | grep -m1 '^occ_' || true)
if [ -n "$host_sym" ] && command -v "${CC:-cc}" >/dev/null; then
  printf 'extern void %s(void);\nvoid occ_planted_call(void) { %s(); }\n' "$host_sym" "$host_sym" >"$T/planted.c"
  "${CC:-cc}" -c "$T/planted.c" -o "$T/planted.o"
  planted=("${trusted[@]}" "$T/planted.o")
  [ -n "$(check_symbols planted[@] untrusted[@])" ] && ok || bad "the symbol check misses a planted call to $host_sym"
else
  bad "cannot plant a violation (no occ_ symbol in the untrusted libraries or no C compiler)"
fi
out=$(check_symbols trusted[@] untrusted[@])
if [ -n "$out" ]; then
  bad "trusted libraries call untrusted functions:"
  echo "$out" | sed 's/^/  /' >&2
else
  ok
fi
n_trusted_u=$(undefined_of "${trusted[@]}" | wc -l)
[ "$n_trusted_u" -gt 0 ] && ok || bad "nm found no undefined symbols in ${trusted[*]} (wrong files?)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
