#pragma once
// The CUDA backend: the kernels of kernels/cuda on one stream (and a side stream for work beside
// it), with a cuBLAS handle bound to the stream when cuBLAS is asked for.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <memory>

#include "cnnrt/model.hpp"
#include "host/backend.hpp"
#include "kernels/cuda/dense.cuh"

namespace cnnrt {

// What a layer unit needs to launch CUDA kernels: the stream the op goes to (the main stream, or
// the side stream inside side work) and the GEMM the dense layers use.
struct CudaContext {
  cudaStream_t stream = nullptr;
  cuda::GemmImpl gemm = cuda::GemmImpl::tiled;
  cublasHandle_t cublas = nullptr;  // bound to the main stream; only with GemmImpl::cublas
  bool conv_tf32 = false;           // convolution forward on the TF32 implicit-GEMM kernel
};

// Throws cnnrt::Error when no CUDA device is available.
std::unique_ptr<Backend<float>> make_cuda_backend(GemmBackend gemm,
                                                  ConvPrecision conv = ConvPrecision::fp32);

// Creates the CUDA context (and frees nothing), so memory measurements start after it.
void cuda_backend_warm_up();

}  // namespace cnnrt
