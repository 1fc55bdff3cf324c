#pragma once
// Checked CUDA and cuBLAS calls: every failure becomes a cnnrt::Error naming the file, the line,
// the call and the runtime's own description. Plain C++ so host code compiled by g++ can use it.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cnnrt/error.hpp"

namespace cnnrt::detail {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file,
                                   int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file,
                                     int line);
// A failed kernel launch, named by `kernel`.
[[noreturn]] void throw_launch_error(cudaError_t status, const char* kernel, const char* file,
                                     int line);

}  // namespace cnnrt::detail

#define CNNRT_CUDA_CHECK(call)                                                     \
  do {                                                                             \
    const cudaError_t cnnrt_status_ = (call);                                      \
    if (cnnrt_status_ != cudaSuccess)                                              \
      ::cnnrt::detail::throw_cuda_error(cnnrt_status_, #call, __FILE__, __LINE__); \
  } while (0)

#define CNNRT_CUBLAS_CHECK(call)                                                     \
  do {                                                                               \
    const cublasStatus_t cnnrt_status_ = (call);                                     \
    if (cnnrt_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::cnnrt::detail::throw_cublas_error(cnnrt_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After every kernel launch: catches bad launch configurations and missing kernel images (a build
// for the wrong compute capability) at the launch, not several calls later. `kernel_name`, the
// launched kernel's name as written (not evaluated), is named in the error.
#define CNNRT_LAUNCH_CHECK(kernel_name)                                                     \
  do {                                                                                      \
    const cudaError_t cnnrt_status_ = cudaPeekAtLastError();                                \
    if (cnnrt_status_ != cudaSuccess)                                                       \
      ::cnnrt::detail::throw_launch_error(cnnrt_status_, #kernel_name, __FILE__, __LINE__); \
  } while (0)
