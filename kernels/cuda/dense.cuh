#pragma once
// CUDA dense layer, the twin of kernels/cpu/dense.hpp: a hand-written shared-memory tiled kernel,
// or cuBLAS (selectable at run time; the benchmarks hold one against the other).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// tiled: the hand-written FP32 kernel; tf32: the hand-written tensor-core kernel, operands rounded
// to TF32 (10 mantissa bits), sums in float; cublas: cuBLAS's FP32 SGEMM.
enum class GemmImpl { tiled, cublas, tf32 };

// in: [n, in], weight: [out, in], bias: [out] or nullptr -> out: [n, out] holding z; with
// fused.activated, also act(z) there (FusedActivation{} for the plain layer). The tiled path
// adds the bias and applies the activation inside the GEMM.
// `cublas` is only used (and must be non-null) when impl == GemmImpl::cublas; it must be bound to
// `stream` by the caller.
void dense_forward(const DenseGeometry& g, const float* in, const float* weight, const float* bias,
                   float* out, const FusedActivation<float>& fused, GemmImpl impl,
                   cublasHandle_t cublas, cudaStream_t stream);
// dout: [n, out], weight: [out, in] -> din: [n, in] (overwritten). With fused.z set, din gets the
// gradient at the input of the activation in front of the layer (FusedActivationGrad).
void dense_backward_data(const DenseGeometry& g, const float* dout, const float* weight, float* din,
                         const FusedActivationGrad<float>& fused, GemmImpl impl,
                         cublasHandle_t cublas, cudaStream_t stream);
// in: [n, in], dout: [n, out] -> dweight: [out, in], dbias: [out] or nullptr (overwritten)
void dense_backward_weights(const DenseGeometry& g, const float* in, const float* dout,
                            float* dweight, float* dbias, GemmImpl impl, cublasHandle_t cublas,
                            cudaStream_t stream);

}  // namespace cnnrt::cuda
