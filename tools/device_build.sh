#!/usr/bin/env bash
# Builds what the GPU machine runs (tools/device_check.sh), here on the build machine: Release,
# sm_90 (+ PTX), the tests, the cnnrt tool and the kernel benchmark. The full build lives in
# build-gpu-full/ (kept, so the next run is incremental); what the device needs is copied, stripped,
# into build-gpu/: the executables, CMakeCache.txt (device_check.sh reads the old paths from it) and
# ctest's files (CTestTestfile.cmake, the gtest *_include.cmake / *_tests.cmake). Fashion-MNIST is
# copied into data/fashion-mnist/, the commit into build-gpu/COMMIT, and the two carried folders
# must fit the device tool's limit. All three folders are ignored by .gitignore (/build*/, /data/).
#
# Usage: tools/device_build.sh [extra cmake -D options]
# Environment: JOBS (default 2: the build machine is shared), FASHION_MNIST_SRC (default
# /usr/share/datasets/fashion-mnist).
# Then run, with carry ["build-gpu", "data"]:  bash tools/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
full_dir=build-gpu-full
build_dir=build-gpu
data_dir=data/fashion-mnist
data_src=${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}
# The device tool carries at most 64 MiB with the working tree; leave room for the sources.
carry_limit_mib=60

echo "== configure ($full_dir)"
cmake -S . -B "$full_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCNNRT_BUILD_TESTS=ON -DCNNRT_BUILD_TOOLS=ON -DCNNRT_BUILD_KERNEL_BENCH=ON "$@" >/dev/null

echo "== build (-j${JOBS:-2})"
cmake --build "$full_dir" --parallel "${JOBS:-2}"

echo "== copy what the device runs into $build_dir (stripped)"
rm -rf "$build_dir"
mkdir -p "$build_dir"
cp "$full_dir/CMakeCache.txt" "$build_dir/"
# ctest's files, at the same relative paths.
(cd "$full_dir" && find . -path ./CMakeFiles -prune -o \( -name CTestTestfile.cmake \
  -o -name '*_include.cmake' -o -name '*_tests.cmake' \) -type f -print0) |
  while IFS= read -r -d '' f; do
    mkdir -p "$build_dir/$(dirname "$f")"
    cp "$full_dir/$f" "$build_dir/$f"
  done
# The executables: every test, the tool, the benchmark. Everything links cnnrt_static, so the
# shared library stays behind (checked below with ldd).
for f in "$full_dir"/tests/*_test "$full_dir"/tools/cnnrt "$full_dir"/tools/cnnrt_kernel_bench; do
  [ -x "$f" ] || continue
  rel=${f#"$full_dir"/}
  mkdir -p "$build_dir/$(dirname "$rel")"
  strip --strip-all -o "$build_dir/$rel" "$f"
  if ldd "$build_dir/$rel" | grep -q 'libcnnrt\.so'; then
    echo "error: $rel links libcnnrt.so; device_build.sh copies only executables" >&2
    exit 1
  fi
done
[ -x "$build_dir/tools/cnnrt_kernel_bench" ] ||
  echo "warning: no cnnrt_kernel_bench (cuDNN not found?): the check will skip the kernel benchmark" >&2

commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  commit="$commit-dirty"
  echo "warning: uncommitted changes: the results will name $commit" >&2
fi
echo "$commit" >"$build_dir/COMMIT"

# The stripped executables are still ~37 MiB (each links the static library with every kernel);
# gzip brings them to ~15 MiB, inside the carry budget. device_check.sh unpacks the archive.
echo "== pack the executables into $build_dir/executables.tar.gz"
(cd "$build_dir" && find tests tools -type f -perm -u+x -print0 |
  tar --null -czf executables.tar.gz --remove-files -T -)

echo "== data ($data_src -> $data_dir)"
mkdir -p "$data_dir"
cp "$data_src"/*.gz "$data_dir"/

size_bytes=$(du -sbc "$build_dir" data | tail -1 | cut -f1)
size_mib=$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "== sizes"
du -sh "$build_dir" data
tar -tvzf "$build_dir/executables.tar.gz" | awk '{ printf "%10s  %s\n", $3, $6 }' | sort -n
echo "carry total: $size_mib MiB (limit $carry_limit_mib MiB), commit $commit"
if awk -v b="$size_bytes" -v l="$carry_limit_mib" 'BEGIN { exit !(b > l * 1048576) }'; then
  echo "error: build-gpu + data is $size_mib MiB, over the $carry_limit_mib MiB carry budget" >&2
  exit 1
fi
echo "carry: [\"$build_dir\", \"data\"]"
echo "device command: bash tools/device_check.sh"
