#pragma once
// The CUDA backend: the kernels of kernels/cuda on one stream, with a cuBLAS handle bound to it.
#include <cuda_runtime_api.h>

#include <memory>

#include "cnnrt/model.hpp"
#include "host/backend.hpp"

namespace cnnrt {

// Throws cnnrt::Error when no CUDA device is available.
std::unique_ptr<Backend<float>> make_cuda_backend(GemmBackend gemm);

// Creates the CUDA context (and frees nothing), so memory measurements start after it.
void cuda_backend_warm_up();

}  // namespace cnnrt
