// CPU reference batch normalisation (docs/math.md section 11): per channel over its n * plane
// values, two passes (mean, then the squared deviations) so the variance does not cancel.
#include "kernels/cpu/batch_norm.hpp"

#include <cmath>
#include <cstddef>

#include "kernels/cpu/activation.hpp"

namespace cnnrt::cpu {

namespace {

// sum over channel ch's values of f(value index): samples in order, then along the plane.
template <typename T, typename F>
T channel_sum(const BatchNormGeometry& g, int ch, F&& f) {
  T sum = T(0);
  for (int s = 0; s < g.n; ++s) {
    const std::size_t first = g.plane_at(s, ch);
    for (int i = 0; i < g.plane; ++i) sum += f(first + i);
  }
  return sum;
}

// The two sums of the backward pass over channel ch: dbeta = sum dout, dgamma = sum dout * xhat.
template <typename T>
struct GradientSums {
  T dout, dout_xhat;
};

template <typename T>
GradientSums<T> gradient_sums(const BatchNormGeometry& g, int ch, const T* in, const T* dout, T mu,
                              T rstd) {
  return GradientSums<T>{
      channel_sum<T>(g, ch, [&](std::size_t at) { return dout[at]; }),
      channel_sum<T>(g, ch, [&](std::size_t at) { return dout[at] * ((in[at] - mu) * rstd); })};
}

// out = x * scale + shift over channel ch, then the fused activation plane by plane.
template <typename T>
void affine_channel(const BatchNormGeometry& g, int ch, const T* in, T scale, T shift, T* out,
                    const FusedActivation<T>& fused) {
  for (int s = 0; s < g.n; ++s) {
    const std::size_t first = g.plane_at(s, ch);
    for (int i = 0; i < g.plane; ++i) out[first + i] = in[first + i] * scale + shift;
    fused_activation_forward(fused, first, std::size_t(g.plane), out);
  }
}

}  // namespace

// in: [n, c, plane] -> out: [n, c, plane]; mean, inv_std, running_mean, running_var: [c]
template <typename T>
void batch_norm_forward_training(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const BatchNormParams& bn, const T* in, const T* gamma,
                                 const T* beta, T* out, const FusedActivation<T>& fused, T* mean,
                                 T* inv_std, T* running_mean, T* running_var, T* batches_tracked) {
  const T m = T(g.per_channel());
  const T momentum = T(bn.momentum);
  for (int ch = c_begin; ch < c_end; ++ch) {
    const T mu = channel_sum<T>(g, ch, [&](std::size_t at) { return in[at]; }) / m;
    const T squares = channel_sum<T>(g, ch, [&](std::size_t at) {
      const T d = in[at] - mu;
      return d * d;
    });
    const T var = squares / m;  // biased: the normalisation's
    const T rstd = T(1) / std::sqrt(var + T(bn.eps));
    mean[ch] = mu;
    inv_std[ch] = rstd;
    running_mean[ch] = (T(1) - momentum) * running_mean[ch] + momentum * mu;
    running_var[ch] = (T(1) - momentum) * running_var[ch] + momentum * (squares / (m - T(1)));
    // y = gamma * (x - mu) * rstd + beta as one multiply-add per value.
    const T scale = gamma[ch] * rstd;
    affine_channel(g, ch, in, scale, beta[ch] - mu * scale, out, fused);
  }
  if (c_begin == 0 && c_end > 0) *batches_tracked += T(1);
}

// in: [n, c, plane] -> out: [n, c, plane], with the running statistics
template <typename T>
void batch_norm_forward_inference(const BatchNormGeometry& g, int c_begin, int c_end,
                                  const BatchNormParams& bn, const T* in, const T* gamma,
                                  const T* beta, const T* running_mean, const T* running_var,
                                  T* out, const FusedActivation<T>& fused) {
  for (int ch = c_begin; ch < c_end; ++ch) {
    const T scale = gamma[ch] / std::sqrt(running_var[ch] + T(bn.eps));
    affine_channel(g, ch, in, scale, beta[ch] - running_mean[ch] * scale, out, fused);
  }
}

// weight: [c, per_channel], bias: [c] -> fold.weight, fold.bias (kernels/cpu/batch_norm.hpp)
template <typename T>
void batch_norm_fold(const BatchNormFold<T>& fold, int c, std::size_t per_channel, const T* weight,
                     const T* bias) {
  for (int ch = 0; ch < c; ++ch) {
    const T scale = fold.gamma[ch] / std::sqrt(fold.running_var[ch] + T(fold.eps));
    const T shift = fold.beta[ch] - fold.running_mean[ch] * scale;
    const std::size_t row = std::size_t(ch) * per_channel;
    for (std::size_t r = 0; r < per_channel; ++r) fold.weight[row + r] = weight[row + r] * scale;
    fold.bias[ch] = (bias ? bias[ch] : T(0)) * scale + shift;
  }
}

// in, dout: [n, c, plane] -> dgamma = sum dout * xhat, dbeta = sum dout: [c]
template <typename T>
void batch_norm_backward_weights(const BatchNormGeometry& g, int c_begin, int c_end, const T* in,
                                 const T* dout, const T* mean, const T* inv_std, T* dgamma,
                                 T* dbeta) {
  for (int ch = c_begin; ch < c_end; ++ch) {
    const GradientSums<T> sums = gradient_sums(g, ch, in, dout, mean[ch], inv_std[ch]);
    dbeta[ch] = sums.dout;
    dgamma[ch] = sums.dout_xhat;
  }
}

// in, dout: [n, c, plane] -> din = gamma * inv_std / m * (m * dout - dbeta - xhat * dgamma)
template <typename T>
void batch_norm_backward_data(const BatchNormGeometry& g, int c_begin, int c_end, const T* in,
                              const T* dout, const T* gamma, const T* mean, const T* inv_std,
                              T* din, const FusedActivationGrad<T>& fused) {
  const T m = T(g.per_channel());
  for (int ch = c_begin; ch < c_end; ++ch) {
    const T mu = mean[ch], rstd = inv_std[ch];
    const GradientSums<T> sums = gradient_sums(g, ch, in, dout, mu, rstd);
    const T sum_dout = sums.dout, sum_dout_xhat = sums.dout_xhat;
    const T k = gamma[ch] * rstd / m;
    for (int s = 0; s < g.n; ++s) {
      const std::size_t first = g.plane_at(s, ch);
      for (int i = 0; i < g.plane; ++i) {
        const std::size_t at = first + i;
        const T xhat = (in[at] - mu) * rstd;
        din[at] = k * (m * dout[at] - sum_dout - xhat * sum_dout_xhat);
      }
      fused_activation_backward(fused, first, std::size_t(g.plane), din);
    }
  }
}

#define CNNRT_BATCH_NORM_INSTANTIATE(T)                                                            \
  template void batch_norm_forward_training<T>(                                                    \
      const BatchNormGeometry&, int, int, const BatchNormParams&, const T*, const T*, const T*,    \
      T*, const FusedActivation<T>&, T*, T*, T*, T*, T*);                                          \
  template void batch_norm_forward_inference<T>(                                                   \
      const BatchNormGeometry&, int, int, const BatchNormParams&, const T*, const T*, const T*,    \
      const T*, const T*, T*, const FusedActivation<T>&);                                          \
  template void batch_norm_fold<T>(const BatchNormFold<T>&, int, std::size_t, const T*, const T*); \
  template void batch_norm_backward_weights<T>(const BatchNormGeometry&, int, int, const T*,       \
                                               const T*, const T*, const T*, T*, T*);              \
  template void batch_norm_backward_data<T>(const BatchNormGeometry&, int, int, const T*,          \
                                            const T*, const T*, const T*, const T*, T*,            \
                                            const FusedActivationGrad<T>&);
CNNRT_BATCH_NORM_INSTANTIATE(float)
CNNRT_BATCH_NORM_INSTANTIATE(double)
#undef CNNRT_BATCH_NORM_INSTANTIATE

}  // namespace cnnrt::cpu
