#include "host/profiling.hpp"

#include <cuda_profiler_api.h>
#include <fmt/format.h>
#include <nvtx3/nvToolsExt.h>

#include <cerrno>
#include <cstdlib>

#include "cnnrt/error.hpp"
#include "kernels/cuda/check.hpp"

namespace cnnrt {

ScopedRange::ScopedRange(const char* name) {
  nvtxRangePushA(name);
}
// NVTX copies the message at the push, so the string may die before the range ends.
ScopedRange::ScopedRange(const std::string& name) : ScopedRange(name.c_str()) {}
ScopedRange::~ScopedRange() {
  nvtxRangePop();
}

void start_cuda_profiler() {
  CNNRT_CUDA_CHECK(cudaProfilerStart());
}
void stop_cuda_profiler() {
  CNNRT_CUDA_CHECK(cudaProfilerStop());
}

namespace {

// A whole non-negative decimal number, or -1.
std::int64_t parse_step(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return -1;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), nullptr, 10);
  return errno == ERANGE ? -1 : std::int64_t(value);
}

}  // namespace

ProfileSteps ProfileSteps::parse(const std::string& text) {
  const std::size_t colon = text.find(':');
  const std::int64_t first = colon == std::string::npos ? -1 : parse_step(text.substr(0, colon));
  const std::int64_t last = colon == std::string::npos ? -1 : parse_step(text.substr(colon + 1));
  if (first < 0 || last < 0)
    throw Error(
        fmt::format("profile steps '{}': expected FIRST:LAST, two step numbers >= 0 "
                    "(e.g. 100:110)",
                    text));
  if (first > last)
    throw Error(fmt::format("profile steps '{}': the first step {} comes after the last {}", text,
                            first, last));
  return {first, last};
}

ProfilerCapture::~ProfilerCapture() {
  if (capturing_) (void)cudaProfilerStop();  // unchecked: destructors never throw
}

void ProfilerCapture::before_step(std::int64_t step) {
  if (capturing_ || !steps_.contains(step)) return;
  start_cuda_profiler();
  capturing_ = true;
}

void ProfilerCapture::after_step(std::int64_t step) {
  if (!capturing_ || step < steps_.last) return;
  capturing_ = false;
  stop_cuda_profiler();
}

}  // namespace cnnrt
