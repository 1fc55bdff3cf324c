#pragma once
#include <string>
#include <vector>

#include "cnnrt/export.hpp"

namespace cnnrt {

struct CNNRT_API CudaDeviceInfo {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;  // compute capability
  std::size_t memory_bytes = 0;
  int multiprocessors = 0;
};

// The CUDA devices the runtime sees. When there are none, `why_none` (if given) receives the
// runtime's reason ("no CUDA-capable device is detected", a driver mismatch, ...).
CNNRT_API std::vector<CudaDeviceInfo> cuda_devices(std::string* why_none = nullptr);
CNNRT_API bool cuda_available();
// Makes device `index` (of cuda_devices()) the one this process's models run on; call it before
// compiling the first CUDA model (a rank of a distributed run takes its machine-local rank's).
CNNRT_API void use_cuda_device(int index);
// What the fast CPU path runs on this processor: the instruction set oneDNN's sgemm chose at run
// time, the sigmoid's lanes and the widest vector extension the processor reports, e.g. "fast
// (oneDNN sgemm in AVX2; sigmoid in AVX2, 8 lanes; processor reports AVX2)".
CNNRT_API std::string cpu_fast_path();
// The CUDA runtime version this build links against, e.g. "13.0".
CNNRT_API std::string cuda_runtime_version();

}  // namespace cnnrt
