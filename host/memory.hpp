#pragma once
// Allocations too large for the machine, as errors a user can act on: the bytes asked for and what
// there is, instead of std::bad_alloc or a bare CUDA status.
#include <cstddef>
#include <string>

namespace cnnrt {

std::string byte_size(std::size_t bytes);  // "1.5 GiB"

// Host memory the machine has (physical pages), or 0 when the system does not say.
std::size_t physical_memory_bytes();

// cudaMalloc of `bytes`; when the device has no room, a cnnrt::Error naming the bytes and the
// device's free and total memory (and the runtime's error state is cleared, so that the next
// launch check does not report it again).
void* device_allocate(std::size_t bytes);

}  // namespace cnnrt
