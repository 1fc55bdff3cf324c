#pragma once
// The fast CPU batch normalisation (float), the twin of kernels/cpu/batch_norm.cpp with the same
// calls and channel ranges: each sample's plane of a channel is summed with eight independent
// float accumulators (so the compiler vectorises the sum), the planes' sums are added in double,
// and the mean and the squared deviations stay two passes. A channel's sums run in one fixed
// order whatever the thread split. Held against the reference by tests/cpu_fast_test.cpp.
#include "kernels/ops.hpp"

namespace cnnrt::cpu::fast {

// in: [n, c, plane], gamma, beta: [c] -> out: [n, c, plane] (and fused.activated), mean,
// inv_std: [c], running_mean, running_var: [c] updated; batches_tracked: [1] +1 from the call
// whose c_begin is 0. Needs g.per_channel() > 1.
void batch_norm_forward_training(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const BatchNormParams& bn, const float* in, const float* gamma,
                                 const float* beta, float* out, const FusedActivation<float>& fused,
                                 float* mean, float* inv_std, float* running_mean,
                                 float* running_var, float* batches_tracked);

// in: [n, c, plane], gamma, beta, running_mean, running_var: [c] -> out: [n, c, plane] (and
// fused.activated)
void batch_norm_forward_inference(const BatchNormGeometry& g, int c_begin, int c_end,
                                  const BatchNormParams& bn, const float* in, const float* gamma,
                                  const float* beta, const float* running_mean,
                                  const float* running_var, float* out,
                                  const FusedActivation<float>& fused);

// in, dout: [n, c, plane], mean, inv_std: [c] -> dgamma, dbeta: [c] (overwritten)
void batch_norm_backward_weights(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const float* in, const float* dout, const float* mean,
                                 const float* inv_std, float* dgamma, float* dbeta);

// in, dout: [n, c, plane], gamma, mean, inv_std: [c] -> din: [n, c, plane] (overwritten), through
// the fused activation's gradient when fused.z is set
void batch_norm_backward_data(const BatchNormGeometry& g, int c_begin, int c_end, const float* in,
                              const float* dout, const float* gamma, const float* mean,
                              const float* inv_std, float* din,
                              const FusedActivationGrad<float>& fused);

}  // namespace cnnrt::cpu::fast
