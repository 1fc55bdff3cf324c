#!/usr/bin/env bash
# The test command: installs what it needs, builds, runs every GoogleTest suite through ctest,
# then the Python package's pytest suite (tools/test_python.sh).
# GPU parity tests skip with "no CUDA device" where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
# The Python package (python/): nanobind builds the module, pytest and numpy run its suite. Without
# them the module is not built and its suite is skipped, unless CNNRT_REQUIRE_PYTHON=1 (CI).
python3 -m pip install --quiet nanobind pytest numpy 2>/dev/null ||
  python3 -m pip install --quiet --break-system-packages nanobind pytest numpy ||
  echo "test: could not pip-install nanobind pytest numpy; the Python suite will be skipped" >&2
bash tools/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 600 -j "$(nproc)"
bash tools/test_python.sh
