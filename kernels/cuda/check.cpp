// The CUDA and cuBLAS failures behind CNNRT_CUDA_CHECK / CNNRT_CUBLAS_CHECK / CNNRT_LAUNCH_CHECK
// (kernels/cuda/check.hpp), kept apart from host/error.cpp so that the file parsers build without
// CUDA.
#include "kernels/cuda/check.hpp"

#include <fmt/format.h>

#include "kernels/cuda/cublas_api.hpp"

namespace cnnrt::detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("CUDA error at {}:{}: {} failed: {} ({})", file, line, call,
                          cudaGetErrorString(status), cudaGetErrorName(status)));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("cuBLAS error at {}:{}: {} failed: {} ({})", file, line, call,
                          cuda::cublas().status_string(status),
                          cuda::cublas().status_name(status)));
}

void throw_launch_error(cudaError_t status, const char* kernel, const char* file, int line) {
  throw_cuda_error(status, fmt::format("launch of {}", kernel).c_str(), file, line);
}

}  // namespace cnnrt::detail
