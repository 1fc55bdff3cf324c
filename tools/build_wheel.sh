#!/usr/bin/env bash
# Builds a wheel of the cnnrt Python package for this machine (its Python, its CPU and CUDA
# toolchain) into ${WHEEL_DIR:-dist}: `pip wheel .` through scikit-build-core (pyproject.toml),
# with ccache when it is installed. Extra arguments go to pip, e.g.
#   tools/build_wheel.sh -C cmake.define.CMAKE_CUDA_ARCHITECTURES=80
# Install it with: python3 -m pip install dist/cnnrt-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
config=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
  config=(-C cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache
          -C cmake.define.CMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
python3 -m pip wheel . --no-deps -w "${WHEEL_DIR:-dist}" "${config[@]}" "$@"
