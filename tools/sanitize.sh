#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer,
# in its own build folder (build-asan). Every report is fatal and gives an exit code no test
# expects (86 ASan, 87 UBSan), so a test that runs the `cnnrt` tool and expects exit 1 fails on a
# report too. Tests that need a GPU skip as usual; the host-only install and Dockerfile checks are
# left to tools/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
build_dir=${BUILD_DIR:-build-asan}
BUILD_DIR=$build_dir BUILD_TYPE=RelWithDebInfo bash tools/build.sh \
  -DCNNRT_SANITIZE=address,undefined "$@"
# protect_shadow_gap=0: the CUDA runtime maps memory where ASan's shadow gap would be.
export ASAN_OPTIONS=${ASAN_OPTIONS:-protect_shadow_gap=0:detect_leaks=1:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}
ctest --test-dir "$build_dir" --output-on-failure --timeout 1200 -j "$(nproc)" -LE host_only
