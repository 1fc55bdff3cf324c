#!/usr/bin/env bash
# Installs a built cnnrt into a scratch prefix, then builds tests/consumer/main.cpp against that
# install twice, as users would (find_package(cnnrt), and a plain g++ line from pkg-config), and
# runs both. Also checks what the install holds: the umbrella header covers every public header,
# no installed header reaches into kernels/ or host/, the presets are there and the library and
# the tool find them under this prefix (not the configured one), libcnnrt.so exports none of the
# internal namespaces, and the cnnrt tool's sources build and link against the install alone.
# usage: tests/consumer/run.sh CNNRT_BUILD_DIR SCRATCH_DIR   (SCRATCH_DIR is wiped)
set -euo pipefail
if (($# != 2)); then
  echo "usage: $0 CNNRT_BUILD_DIR SCRATCH_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
fail() {
  echo "consumer: FAIL: $*" >&2
  exit 1
}

rm -rf "$scratch"
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
prefix=$scratch/install
echo "== cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$scratch/install.log"

echo "== checking the installed tree"
umbrella=$source_dir/include/cnnrt/cnnrt.hpp
for header in "$source_dir"/include/cnnrt/*.hpp; do
  name=$(basename "$header")
  [[ $name == cnnrt.hpp ]] && continue
  grep -q "^#include \"cnnrt/$name\"" "$umbrella" || fail "cnnrt/cnnrt.hpp does not include cnnrt/$name"
  [[ -f $prefix/include/cnnrt/$name ]] || fail "include/cnnrt/$name was not installed"
done
# Each public header compiles on its own, from the installed tree alone.
for header in "$prefix"/include/cnnrt/*.hpp; do
  echo "#include <cnnrt/$(basename "$header")>" |
    g++ -std=c++17 -fsyntax-only -Wall -Wextra -Werror -I"$prefix/include" -x c++ - ||
    fail "installed header cnnrt/$(basename "$header") does not compile on its own"
done
if grep -rnE '#include *["<](kernels|host)/' "$prefix/include"; then
  fail "installed public headers include internal headers (above)"
fi
installed_headers=$(find "$prefix/include" -type f | sed "s|$prefix/include/||" | sort)
[[ -z $(grep -v '^cnnrt/[a-z_0-9]*\.hpp$' <<<"$installed_headers") ]] ||
  fail "unexpected files under include/: $(grep -v '^cnnrt/' <<<"$installed_headers")"
[[ -f $prefix/share/cnnrt/presets/lenet5.json ]] || fail "share/cnnrt/presets/lenet5.json missing"
[[ -x $prefix/bin/cnnrt ]] || fail "bin/cnnrt missing"
pc_file=$(find "$prefix" -name cnnrt.pc -print -quit)
[[ -n $pc_file ]] || fail "cnnrt.pc was not installed"
library=$(find "$prefix" -name 'libcnnrt.so.0.1.0' -print -quit)
[[ -n $library ]] || fail "libcnnrt.so.0.1.0 was not installed"
[[ $(readelf -d "$library" | grep SONAME) == *"libcnnrt.so.0"* ]] || fail "SONAME is not libcnnrt.so.0"
# Only the public API (CNNRT_API) is exported: no kernel or backend internals.
leaked=$(nm -DC --defined-only "$library" | grep -E ' [TtWw] ' |
  grep -E 'cnnrt::(cpu|cuda|detail)::|cnnrt::(Executor|CpuBackend|CudaBackend|Backend)\b' || true)
[[ -z $leaked ]] || fail "internal symbols exported from libcnnrt.so:
$leaked"
echo "exported functions: $(nm -DC --defined-only "$library" | grep -c ' T ')"

echo "== installed tool: cnnrt info"
"$prefix/bin/cnnrt" info || fail "the installed cnnrt tool failed (exit $?)"

# The scratch prefix is not the configured one, so the presets must be found from where the
# library (or the tool) was loaded. The source tree, the last place looked in, has lenet5 as well:
# the installed copy is renamed, and output naming it shows that it was the file read.
echo "== presets found in the installed tree"
configured_prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build_dir/CMakeCache.txt")
[[ $configured_prefix != "$prefix" ]] || fail "the scratch prefix is the configured one ($prefix)"
installed_lenet=$prefix/share/cnnrt/presets/lenet5.json
sed -i 's/"name": "lenet5"/"name": "lenet5-installed"/' "$installed_lenet"
grep -q '"name": "lenet5-installed"' "$installed_lenet" || fail "could not rename $installed_lenet"
unset CNNRT_PRESET_DIR
summary=$("$prefix/bin/cnnrt" summary --model lenet5) || fail "cnnrt summary --model lenet5 failed"
[[ $(head -1 <<<"$summary") == "lenet5-installed (input 1x28x28, 10 classes)"* ]] ||
  fail "the installed tool did not read $installed_lenet (configured prefix $configured_prefix):
$summary"

echo "== consumer via find_package(cnnrt)"
cmake -S "$here" -B "$scratch/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$scratch/cmake-configure.log" ||
  { cat "$scratch/cmake-configure.log"; fail "configuring the CMake consumer"; }
cmake --build "$scratch/cmake-build" >"$scratch/cmake-build.log" ||
  { cat "$scratch/cmake-build.log"; fail "building the CMake consumer"; }

echo "== consumer via pkg-config"
export PKG_CONFIG_PATH=$(dirname "$pc_file")
pkg_flags=$(pkg-config --cflags --libs cnnrt)
echo "pkg-config --cflags --libs cnnrt: $pkg_flags"
# The installed library lives outside the loader's paths: the rpath points the binary at it.
g++ -std=c++17 -O2 -Wall -Wextra -Werror "$here/main.cpp" -o "$scratch/consumer-pkgconfig" \
  $pkg_flags -Wl,-rpath,"$(pkg-config --variable=libdir cnnrt)"

# The cnnrt tool is written against the public API (tools/cli/ includes no host/ or kernels/
# header): its sources build from the installed headers alone and link to the installed
# libcnnrt.so, whose exports must cover every call they make.
echo "== tools/cli built against the installed tree"
cli_root=$scratch/cli-src  # holds tools/cli only, so that "host/..." cannot resolve
mkdir -p "$cli_root/tools" "$scratch/cli-obj"
ln -s "$source_dir/tools/cli" "$cli_root/tools/cli"
cli_jobs=()
for source in "$source_dir"/tools/cli/*.cpp; do
  g++ -std=c++17 -Wall -Wextra -Werror -DFMT_HEADER_ONLY=1 -I"$cli_root" -I"$prefix/include" \
    -c "$source" -o "$scratch/cli-obj/$(basename "${source%.cpp}").o" &
  cli_jobs+=($!)
done
for job in "${cli_jobs[@]}"; do
  wait "$job" || fail "tools/cli does not build from the installed headers alone (above)"
done
g++ "$scratch"/cli-obj/*.o -o "$scratch/cnnrt-from-install" $pkg_flags \
  -Wl,-rpath,"$(pkg-config --variable=libdir cnnrt)" ||
  fail "tools/cli calls functions the installed libcnnrt.so does not export (above)"
summary=$("$scratch/cnnrt-from-install" summary --model lenet5) ||
  fail "the tool built against the install failed: $summary"
[[ $(head -1 <<<"$summary") == "lenet5-installed (input 1x28x28, 10 classes)"* ]] ||
  fail "the tool built against the install did not read $installed_lenet: $summary"

for binary in "$scratch/cmake-build/consumer" "$scratch/consumer-pkgconfig"; do
  echo "== running $binary"
  loaded=$(ldd "$binary" | grep libcnnrt || true)
  [[ $loaded == *"$prefix"* ]] || fail "$binary does not load libcnnrt from the install: $loaded"
  output=$("$binary") || fail "$binary exited with $?:
$output"
  echo "$output"
  grep -qx "preset lenet5: lenet5-installed, 11 layers, 61706 parameters" <<<"$output" ||
    fail "$binary did not load the installed lenet5 preset ($installed_lenet)"
done
echo "consumer: OK"
