#!/usr/bin/env bash
# Configures and builds cnnrt into ${BUILD_DIR:-build} (Release, sm_90 + PTX by default).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} "$@" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
