#!/usr/bin/env bash
# The emulated-enclave comparison (issue 14, item 7): occ bench over the zoo with
# its defaults (sgx1, 93 MiB EPC, all cores), measured and cost-model-only figures
# side by side, with the machine's load before and after (the machine may be shared).
#   bench/enclave.sh [OCC] [OUT] [MODELS]
set -euo pipefail
OCC=${1:-build/release/occ}
OUT=${2:-build/bench-enclave}
MODELS=${3:-alexnet,vgg16,resnet50,googlenet,squeezenet1_0,mobilenet_v2}
ZOO=${OCC_ZOO:-/work/zoo}
PACKS=${OCC_PACKS:-/work/zoo-packs}
mkdir -p "$OUT"
{ echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"; echo "before: $(uptime)"; } >"$OUT/machine.txt"
# a configuration that fails (e.g. a model that cannot plan at 32 MiB) makes bench
# exit 1 with the rest measured: still note the load, then pass the status on
rc=0
"$OCC" bench --models "$MODELS" --zoo "$ZOO" --packs "$PACKS" --out "$OUT" --repeat "${REPEAT:-5}" \
  --warmup "${WARMUP:-1}" --quiet || rc=$?
echo "after: $(uptime)" >>"$OUT/machine.txt"
cat "$OUT/machine.txt"
exit "$rc"
