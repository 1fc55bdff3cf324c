#pragma once
// CUDA batch normalisation, the twin of kernels/cpu/batch_norm.hpp. One block per channel reduces
// that channel's values in a fixed tree order (no atomics), so every run gives the same bits.
#include <cuda_runtime_api.h>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// in: [n, c, plane], gamma, beta: [c] -> out: [n, c, plane] (and fused.activated), mean, inv_std:
// [c]; running_mean, running_var: [c] updated (unbiased variance); batches_tracked: [1] += 1.
// Needs g.per_channel() > 1.
void batch_norm_forward_training(const BatchNormGeometry& g, const BatchNormParams& bn,
                                 const float* in, const float* gamma, const float* beta, float* out,
                                 const FusedActivation<float>& fused, float* mean, float* inv_std,
                                 float* running_mean, float* running_var, float* batches_tracked,
                                 cudaStream_t stream);
// in: [n, c, plane], gamma, beta, running_mean, running_var: [c] -> out: [n, c, plane]
void batch_norm_forward_inference(const BatchNormGeometry& g, const BatchNormParams& bn,
                                  const float* in, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* out,
                                  const FusedActivation<float>& fused, cudaStream_t stream);
// in, dout: [n, c, plane], mean, inv_std: [c] -> dgamma, dbeta: [c] (overwritten)
void batch_norm_backward_weights(const BatchNormGeometry& g, const float* in, const float* dout,
                                 const float* mean, const float* inv_std, float* dgamma,
                                 float* dbeta, cudaStream_t stream);
// in, dout: [n, c, plane], gamma, mean, inv_std: [c] -> din: [n, c, plane] (overwritten), through
// the fused activation's gradient when fused.z is set.
void batch_norm_backward_data(const BatchNormGeometry& g, const float* in, const float* dout,
                              const float* gamma, const float* mean, const float* inv_std,
                              float* din, const FusedActivationGrad<float>& fused,
                              cudaStream_t stream);

}  // namespace cnnrt::cuda
