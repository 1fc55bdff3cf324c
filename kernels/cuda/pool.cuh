#pragma once
// CUDA pooling, the twin of kernels/cpu/pool.hpp. Backward is a gather over the windows covering
// each input element (no atomics), so overlapping windows are deterministic.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// in: [n, c, h, w] -> out, argmax: [n, c, out_h, out_w] (argmax = y * w + x in the input plane)
void max_pool_forward(const Pool2dGeometry& g, const float* in, float* out, std::int32_t* argmax,
                      cudaStream_t stream);
// dout, argmax: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten). With fused.z set, din
// gets the gradient at the input of the activation in front of the pooling (FusedActivationGrad).
void max_pool_backward(const Pool2dGeometry& g, const float* dout, const std::int32_t* argmax,
                       float* din, const FusedActivationGrad<float>& fused, cudaStream_t stream);
// in: [n, c, h, w] -> out: [n, c, out_h, out_w]
void avg_pool_forward(const Pool2dGeometry& g, const float* in, float* out, cudaStream_t stream);
// dout: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten), through `fused` as above.
void avg_pool_backward(const Pool2dGeometry& g, const float* dout, float* din,
                       const FusedActivationGrad<float>& fused, cudaStream_t stream);

}  // namespace cnnrt::cuda
