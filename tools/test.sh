#!/usr/bin/env bash
# The test command: installs what it needs, builds, runs every GoogleTest suite through ctest,
# then the Python package's pytest suite (tools/test_python.sh).
# GPU parity tests skip with "no CUDA device" where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 -j "$(nproc)"
bash tools/test_python.sh
