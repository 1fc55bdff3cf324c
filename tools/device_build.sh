#!/usr/bin/env bash
# Builds what the GPU machine runs (tools/device_check.sh), here on the build machine, into
# build-gpu/ at the repository root (ignored by .gitignore): Release, sm_90 (+ PTX), the tests, the
# cnnrt tool and the kernel benchmark; strips the binaries, drops what the device does not need
# (objects, archives, ninja state), copies Fashion-MNIST into data/fashion-mnist/ (ignored), writes
# the commit into build-gpu/COMMIT, and checks that the two folders fit the device tool's carry.
#
# Usage: tools/device_build.sh [extra cmake -D options]
# Environment: JOBS (default 2: the build machine is shared), FASHION_MNIST_SRC (default
# /usr/share/datasets/fashion-mnist).
# Then run, with carry ["build-gpu", "data"]:  bash tools/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$PWD
build_dir=build-gpu
data_dir=data/fashion-mnist
data_src=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
# The device tool carries at most 64 MiB with the working tree; leave room for the sources.
carry_limit_mib=60

echo "== configure ($build_dir)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCNNRT_BUILD_TESTS=ON -DCNNRT_BUILD_TOOLS=ON -DCNNRT_BUILD_KERNEL_BENCH=ON "$@" >/dev/null

echo "== build (-j${JOBS:-2})"
cmake --build "$build_dir" --parallel "${JOBS:-2}"

commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  commit="$commit-dirty"
  echo "warning: uncommitted changes: the results will name $commit" >&2
fi
echo "$commit" >"$build_dir/COMMIT"

echo "== strip and prune"
# Executables (tests, tool, benchmark) lose their symbols; nothing on the device debugs them.
find "$build_dir" -type f -perm -u+x ! -name '*.sh' -print0 |
  while IFS= read -r -d '' f; do
    if head -c 4 "$f" | grep -q 'ELF'; then strip --strip-all "$f"; fi
  done
# Everything links cnnrt_static: the shared library is only for installs (kept if a binary needs it).
needs_shared=no
while IFS= read -r -d '' f; do
  if ldd "$f" 2>/dev/null | grep -q 'libcnnrt\.so'; then needs_shared=yes; fi
done < <(find "$build_dir" -type f -perm -u+x ! -name 'libcnnrt.so*' -print0)
if [ "$needs_shared" = no ]; then rm -f "$build_dir"/libcnnrt.so*; fi
find "$build_dir" \( -name '*.o' -o -name '*.a' -o -name '*.d' -o -name '*.fatbin*' \
  -o -name '*.cubin' -o -name '*.ptx' \) -type f -delete
rm -f "$build_dir/.ninja_log" "$build_dir/.ninja_deps" "$build_dir/build.ninja" \
  "$build_dir/compile_commands.json"
# CMakeFiles/ holds object files and CMake's own state; ctest needs only CTestTestfile.cmake and
# the gtest *_include.cmake / *_tests.cmake files beside the binaries.
find "$build_dir" -type d -name CMakeFiles -prune -exec rm -rf {} +
find "$build_dir" -name cmake_install.cmake -delete

echo "== data ($data_src -> $data_dir)"
mkdir -p "$data_dir"
cp "$data_src"/*.gz "$data_dir"/

size_bytes=$(du -sbc "$build_dir" data | tail -1 | cut -f1)
size_mib=$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "== sizes"
du -sh "$build_dir" data
find "$build_dir" -type f -perm -u+x -printf '%10s  %p\n' | sort -n
echo "carry total: $size_mib MiB (limit $carry_limit_mib MiB), commit $commit"
if awk -v b="$size_bytes" -v l="$carry_limit_mib" 'BEGIN { exit !(b > l * 1048576) }'; then
  echo "error: build-gpu + data is $size_mib MiB, over the $carry_limit_mib MiB carry budget" >&2
  exit 1
fi
echo "carry: [\"$build_dir\", \"data\"]"
echo "device command: bash tools/device_check.sh   (repo root: $repo_root)"
