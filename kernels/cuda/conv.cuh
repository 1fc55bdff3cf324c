#pragma once
// CUDA convolution, the twin of kernels/cpu/conv.hpp (same names, same argument order, float only,
// plus the stream). Deterministic: no float atomics anywhere.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out: [n, k, out_h, out_w]
// holding z; with fused.activated, also act(z) there (an activation layer run inside the
// convolution; FusedActivation{} for the plain convolution).
void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, const FusedActivation<float>& fused,
                    cudaStream_t stream);

// The same forward pass as implicit GEMM on tensor cores (kernels/cuda/conv_implicit_gemm.cu):
// operands rounded to TF32 (tf32_round of kernels/precision.hpp), sums in float. Run only when
// TF32 is asked for; its twin is cpu::conv2d_forward on TF32-rounded operands.
void conv2d_forward_tf32(const Conv2dGeometry& g, const float* in, const float* weight,
                         const float* bias, float* out, const FusedActivation<float>& fused,
                         cudaStream_t stream);

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w] (overwritten), a gather
void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, cudaStream_t stream);

// Scratch the weight gradient needs for its per-block partial sums (bytes, may be 0).
std::size_t conv2d_backward_weights_workspace_bytes(const Conv2dGeometry& g);

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw], dbias: [k] or nullptr
// (overwritten). workspace: conv2d_backward_weights_workspace_bytes(g) bytes of device memory.
void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, void* workspace, cudaStream_t stream);

}  // namespace cnnrt::cuda
