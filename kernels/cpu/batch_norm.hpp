#pragma once
// CPU reference batch normalisation (docs/math.md section 11). Every function works on the
// channels [c_begin, c_end) only, so a caller may split the channels across threads: a channel's
// sums run in one fixed order (sample by sample, then along the plane) whatever the split.
#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// Training. in: [n, c, plane], gamma, beta: [c] -> out: [n, c, plane] (z; act(z) into
// fused.activated when fused), mean, inv_std: [c] (kept for the backward pass), running_mean,
// running_var: [c] updated with the batch mean and the unbiased variance; batches_tracked: [1]
// gets +1 from the call whose c_begin is 0. Needs g.per_channel() > 1.
template <typename T>
void batch_norm_forward_training(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const BatchNormParams& bn, const T* in, const T* gamma,
                                 const T* beta, T* out, const FusedActivation<T>& fused, T* mean,
                                 T* inv_std, T* running_mean, T* running_var, T* batches_tracked);

// Evaluation, with the running statistics. in: [n, c, plane], gamma, beta, running_mean,
// running_var: [c] -> out: [n, c, plane] (and fused.activated).
template <typename T>
void batch_norm_forward_inference(const BatchNormGeometry& g, int c_begin, int c_end,
                                  const BatchNormParams& bn, const T* in, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var,
                                  T* out, const FusedActivation<T>& fused);

// weight: [c, per_channel], bias: [c] or nullptr (zero), fold's gamma, beta and running
// statistics: [c] -> fold.weight = weight * scale, fold.bias = bias * scale + shift, per channel,
// with the inference forward's scale = gamma / sqrt(running_var + eps) and shift = beta -
// running_mean * scale: the layer and the batch norm behind it in one.
template <typename T>
void batch_norm_fold(const BatchNormFold<T>& fold, int c, std::size_t per_channel, const T* weight,
                     const T* bias);

// in, dout: [n, c, plane], mean, inv_std: [c] (from the training forward) -> dgamma, dbeta: [c]
// (overwritten).
template <typename T>
void batch_norm_backward_weights(const BatchNormGeometry& g, int c_begin, int c_end, const T* in,
                                 const T* dout, const T* mean, const T* inv_std, T* dgamma,
                                 T* dbeta);

// in, dout: [n, c, plane], gamma, mean, inv_std: [c] -> din: [n, c, plane] (overwritten), through
// the fused activation's gradient when fused.z is set (FusedActivationGrad).
template <typename T>
void batch_norm_backward_data(const BatchNormGeometry& g, int c_begin, int c_end, const T* in,
                              const T* dout, const T* gamma, const T* mean, const T* inv_std,
                              T* din, const FusedActivationGrad<T>& fused);

}  // namespace cnnrt::cpu
