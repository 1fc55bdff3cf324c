#include "cnnrt/device.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "cnnrt/error.hpp"
#include "cnnrt/version.hpp"

namespace cnnrt {

std::vector<CudaDeviceInfo> cuda_devices(std::string* why_none) {
  std::vector<CudaDeviceInfo> devices;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why_none) *why_none = cudaGetErrorString(status);
    (void)cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return devices;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back(CudaDeviceInfo{i, prop.name, prop.major, prop.minor, prop.totalGlobalMem,
                                     prop.multiProcessorCount});
  }
  if (devices.empty() && why_none) *why_none = "the runtime reports zero devices";
  return devices;
}

bool cuda_available() {
  static const bool available = !cuda_devices().empty();
  return available;
}

void use_cuda_device(int index) {
  const cudaError_t status = cudaSetDevice(index);
  if (status != cudaSuccess)
    throw Error(fmt::format("cannot use CUDA device {}: {}", index, cudaGetErrorString(status)));
}

std::string cuda_runtime_version() {
  int version = 0;
  if (cudaRuntimeGetVersion(&version) != cudaSuccess) return "unknown";
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

const char* version() {
  return CNNRT_VERSION;
}
const char* build_type() {
  return CNNRT_BUILD_TYPE;
}

}  // namespace cnnrt
