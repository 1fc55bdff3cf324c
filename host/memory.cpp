// Allocation failures as errors that name the bytes (host/memory.hpp).
#include "host/memory.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>

#include "kernels/cuda/check.hpp"

namespace cnnrt {

std::string byte_size(std::size_t bytes) {
  static const char* const kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = double(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} bytes", bytes) : fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::size_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? std::size_t(pages) * std::size_t(page) : 0;
}

void* device_allocate(std::size_t bytes) {
  void* pointer = nullptr;
  const cudaError_t status = cudaMalloc(&pointer, std::max<std::size_t>(bytes, 1));
  if (status == cudaSuccess) return pointer;
  if (status != cudaErrorMemoryAllocation)
    detail::throw_cuda_error(status, "cudaMalloc", __FILE__, __LINE__);
  (void)cudaGetLastError();  // not a sticky error: the context stays usable
  int device = 0;
  std::size_t free = 0, total = 0;
  std::string room = "free memory unknown";
  if (cudaGetDevice(&device) == cudaSuccess && cudaMemGetInfo(&free, &total) == cudaSuccess)
    room = fmt::format("device {} has {} free of {}", device, byte_size(free), byte_size(total));
  (void)cudaGetLastError();
  throw Error(fmt::format("out of device memory: cudaMalloc of {} bytes ({}) failed; {}", bytes,
                          byte_size(bytes), room));
}

}  // namespace cnnrt
