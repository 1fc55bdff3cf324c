#include "cnnrt/error.hpp"

#include <fmt/format.h>

#include "kernels/cuda/check.hpp"

namespace cnnrt {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

namespace detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("CUDA error at {}:{}: {} failed: {} ({})", file, line, call,
                          cudaGetErrorString(status), cudaGetErrorName(status)));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(fmt::format("cuBLAS error at {}:{}: {} failed: {} ({})", file, line, call,
                          cublasGetStatusString(status), cublasGetStatusName(status)));
}

}  // namespace detail
}  // namespace cnnrt
