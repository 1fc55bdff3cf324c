#!/usr/bin/env bash
# The Python package's pytest suite (python/tests) against the module in the build tree
# (${BUILD_DIR:-build}/python), with the `cnnrt` tool of the same build. Skipped with a notice when
# the module was not built (no nanobind: CNNRT_BUILD_PYTHON off); CNNRT_REQUIRE_PYTHON=1 (CI)
# makes that an error. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=$(realpath "${BUILD_DIR:-build}")
if ! compgen -G "$build_dir/python/cnnrt/_cnnrt*.so" >/dev/null; then
  echo "test_python: the cnnrt Python module was not built in $build_dir (needs nanobind:" \
       "python3 -m pip install nanobind); skipping python/tests" >&2
  [ "${CNNRT_REQUIRE_PYTHON:-0}" = 1 ] && exit 1
  exit 0
fi
# The interpreter the module was built for (another one could not import it).
python=$(sed -n 's/^Python_EXECUTABLE:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
python=${python:-python3}
if ! "$python" -c "import pytest, numpy" 2>/dev/null; then
  echo "test_python: python/tests needs pytest and numpy ($python -m pip install pytest numpy)" >&2
  exit 1
fi
PYTHONPATH="$build_dir/python${PYTHONPATH:+:$PYTHONPATH}" CNNRT_TOOL="$build_dir/tools/cnnrt" \
  "$python" -m pytest -q -p no:cacheprovider python/tests "$@"
