#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp: idx, safetensors, model_file,
# cifar, image_decode, image_cache) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/, from only the parser sources
# they need (no CUDA), then for each target: replays its past crash inputs
# (tests/fuzz/regressions/<target>/) and fuzzes for SECONDS from a copy of its seed corpus
# (tests/fuzz/corpus/<target>/, copied to build-fuzz/corpus/<target>/, which keeps growing across
# runs). Exits non-zero when any target crashes, leaks, times out or breaks a sanitizer rule; the
# input that did is left in build-fuzz/artifacts/<target>/.
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET (default 60)] [target...]
# Installs clang, the libFuzzer runtime and the headers with apt-get when they are missing.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

seconds=${1:-60}
if [[ ! $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: tools/fuzz.sh [SECONDS_PER_TARGET] [idx|safetensors|model_file|cifar|image_decode|image_cache ...]" >&2
  exit 2
fi
shift || true
all_targets=(idx safetensors model_file cifar image_decode image_cache)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

# The parser sources each target links: nothing of the runtime, the kernels or CUDA
# (kernels/geometry.cpp is only the shape checks).
common_sources=(host/error.cpp host/file_bytes.cpp)
declare -A sources=(
  [idx]="host/idx.cpp"
  [cifar]="host/cifar.cpp"
  [image_decode]="host/image.cpp"
  [image_cache]="host/image_cache.cpp"
  [safetensors]="host/safetensors.cpp"
  [model_file]="host/network.cpp host/shape.cpp kernels/geometry.cpp host/layer.cpp
    $(echo host/layers/*.cpp kernels/cpu/*.cpp) host/worker_pool.cpp kernels/cuda/check.cpp
    kernels/cuda/cublas_api.cpp"
)
# A model file's layers are built by their units (host/layers/), which also hold each layer's
# kernel calls: the model-file target links the CUDA kernels too (never run by the fuzzer),
# compiled by nvcc without instrumentation, or taken from the main build when it is newer.
declare -A needs_cuda=([model_file]=1)
cuda_home=${CUDA_HOME:-/usr/local/cuda}
for t in "${targets[@]}"; do
  if [[ -z ${sources[$t]+set} ]]; then
    echo "fuzz: unknown target '$t' (targets: ${all_targets[*]})" >&2
    exit 2
  fi
done

apt_install() {
  echo "fuzz: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_missing() {
  local missing=()
  command -v clang++ >/dev/null || missing+=(clang)
  local header
  for header in fmt/format.h:libfmt-dev nlohmann/json.hpp:nlohmann-json3-dev zlib.h:zlib1g-dev \
    libdeflate.h:libdeflate-dev stb/stb_image.h:libstb-dev oneapi/dnnl/dnnl.h:libdnnl-dev; do
    [ -e "/usr/include/${header%%:*}" ] || missing+=("${header#*:}")
  done
  if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
  # Packages of clang's own version (14 on Debian 12): libFuzzer's runtime, which comes apart from
  # clang on Debian, and omp.h (kernels/cpu/sgemm.cpp holds oneDNN's OpenMP threads to one; LLVM's
  # header, whose functions libgomp provides at link time).
  local version resources
  version=$(clang++ -dumpversion | cut -d. -f1)
  resources=$(clang++ -print-resource-dir)
  [ -e "$resources/lib/linux/libclang_rt.fuzzer-$(uname -m).a" ] ||
    apt_install "libclang-rt-$version-dev"
  [ -e "$resources/include/omp.h" ] || apt_install "libomp-$version-dev"
}
install_missing

out=build-fuzz
mkdir -p "$out/obj"
sanitizers=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
cxxflags=(-std=c++17 -g -O1 -Wall -Wextra -I include -I . -isystem "$cuda_home/include"
  -DFMT_HEADER_ONLY=1 "${sanitizers[@]}")
headers=(include/cnnrt/*.hpp host/*.hpp kernels/*.hpp tests/fuzz/targets.hpp)

# source -> object, rebuilt when the source or any header is newer.
compile() {
  local source=$1 object=$2 extra=${3:-}
  local newest
  newest=$(ls -t "$source" "${headers[@]}" | head -1)
  if [ ! -e "$object" ] || [ "$newest" -nt "$object" ]; then
    echo "fuzz: compiling $source"
    clang++ "${cxxflags[@]}" $extra -c "$source" -o "$object"
  fi
}

# Per-source flags that CMakeLists.txt sets too: the sigmoid's wider lanes are built for their
# instruction set (x86-64 only; elsewhere those files are empty), with no FMA contraction.
declare -A source_flags=([kernels/cpu/activation_fast.cpp]=-ffp-contract=off)
if [[ $(uname -m) == x86_64 ]]; then
  source_flags[kernels/cpu/activation_fast_avx2.cpp]="-mavx2 -ffp-contract=off"
  source_flags[kernels/cpu/activation_fast_avx512.cpp]="-mavx512f -ffp-contract=off"
fi

for t in "${targets[@]}"; do
  objects=()
  for source in "${common_sources[@]}" ${sources[$t]}; do
    object="$out/obj/$(echo "${source%.cpp}" | tr / _).o"
    compile "$source" "$object" "-fsanitize=fuzzer-no-link ${source_flags[$source]:-}"
    objects+=("$object")
  done
  libs=(-lz -ldeflate)
  if [ -n "${needs_cuda[$t]:-}" ]; then
    for source in kernels/cuda/*.cu; do
      built="${BUILD_DIR:-build}/CMakeFiles/cnnrt_objects.dir/$source.o"
      object="$out/obj/$(basename "$source").o"
      if [ -e "$built" ] && [ "$built" -nt "$source" ]; then
        object=$built
      elif [ ! -e "$object" ] || [ "$source" -nt "$object" ]; then
        echo "fuzz: compiling $source (nvcc)"
        "$cuda_home/bin/nvcc" -std=c++17 -O2 -DFMT_HEADER_ONLY=1 -I include -I . -arch=sm_90 -c "$source" -o "$object"
      fi
      objects+=("$object")
    done
    libs+=(-ldnnl -lgomp -L"$cuda_home/lib64" -lcudart -ldl -lpthread)  # the fast CPU sgemm: oneDNN
  fi
  compile "tests/fuzz/${t}_fuzz.cpp" "$out/obj/${t}_fuzz.o" -fsanitize=fuzzer-no-link
  clang++ -fsanitize=fuzzer "${sanitizers[@]}" "$out/obj/${t}_fuzz.o" "${objects[@]}" \
    "${libs[@]}" -o "$out/$t"
done

status=0
for t in "${targets[@]}"; do
  artifacts="$out/artifacts/$t"
  corpus="$out/corpus/$t"
  mkdir -p "$artifacts" "$corpus" "$out/logs"
  regressions=(tests/fuzz/regressions/"$t"/*)
  if ((${#regressions[@]})); then
    echo "fuzz: $t: replaying ${#regressions[@]} past crash inputs"
    if ! "$out/$t" -malloc_limit_mb=256 -artifact_prefix="$artifacts/" "${regressions[@]}" \
      >"$out/logs/$t-regressions.log" 2>&1; then
      echo "fuzz: $t: a past crash input fails again (see $out/logs/$t-regressions.log)" >&2
      status=1
      continue
    fi
  fi
  for seed in tests/fuzz/corpus/"$t"/*; do
    [ -e "$corpus/$(basename "$seed")" ] || cp "$seed" "$corpus/"
  done
  log="$out/logs/$t.log"
  echo "fuzz: $t: fuzzing for $seconds s (log: $log)"
  # No input of the fuzzer's size (4 KiB by default) needs a large allocation, so a 256 MiB
  # malloc means an allocation sized by a header field, not by the bytes there.
  if "$out/$t" -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=256 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $t: $seconds s, ${runs:-?} executions, no crash"
    echo "$(date -u +%FT%TZ) $t $seconds ${runs:-0}" >>"$out/history.txt"
  else
    echo "fuzz: $t: CRASH (input in $artifacts/); the report:" >&2
    grep -E -A12 '^==[0-9]+==ERROR|runtime error|deadly signal|SUMMARY' "$log" | head -40 >&2 || true
    status=1
  fi
done
exit $status
