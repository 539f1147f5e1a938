#!/usr/bin/env bash
# Installs every Debian and npm package the build, tests, tools and benchmarks
# need. Idempotent: installs only what is missing. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PKGS=(
  build-essential cmake pkg-config clang libclang-rt-14-dev libfuzzer-14-dev
  libssl-dev libprotobuf-c-dev protobuf-c-compiler libonnx-dev
  libdnnl-dev libcjson-dev libstb-dev libhttp-parser-dev
  python3-torch python3-torchvision python3-torchaudio python3-onnx python3-numpy python3-yaml
  libonnx-testdata
  dataset-fashion-mnist darknet gnuplot-nox wrk valgrind nodejs npm curl time
  haproxy
)

missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from outside Debian on some machines: accept any working node+npm.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime (CPU) from npm, the reference implementation. Its install
# script would try to download GPU binaries; the CPU binary ships in the package.
if [ ! -d tools/ort/node_modules/onnxruntime-node ]; then
  echo "install-deps: installing onnxruntime-node"
  (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --ignore-scripts >/dev/null)
fi
