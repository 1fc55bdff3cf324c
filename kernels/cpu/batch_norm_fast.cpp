// The fast CPU batch normalisation (docs/math.md section 11): the reference's formulas, with the
// per-channel sums vectorised (kernels/cpu/batch_norm_fast.hpp).
#include "kernels/cpu/batch_norm_fast.hpp"

#include <cmath>
#include <cstddef>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/activation_fast.hpp"

namespace cnnrt::cpu::fast {

namespace {

constexpr int kLanes = 8;  // independent accumulators: two SSE or one AVX register of floats

// sum over i < count of f(i): lane j takes i = j mod kLanes, then the lanes are added in order.
template <typename F>
float lane_sum(int count, F&& f) {
  float lane[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= count; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += f(i + j);
  for (; i < count; ++i) lane[i % kLanes] += f(i);
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += lane[j];
  return sum;
}

// sum over channel ch's values of f(plane pointer offset): a float lane sum per sample's plane,
// the planes' sums added in double, sample by sample.
template <typename F>
double channel_sum(const BatchNormGeometry& g, int ch, F&& f) {
  double sum = 0.0;
  for (int s = 0; s < g.n; ++s) {
    const std::size_t first = g.plane_at(s, ch);
    sum += double(lane_sum(g.plane, [&](int i) { return f(first + std::size_t(i)); }));
  }
  return sum;
}

// out = x * scale + shift over channel ch, then the fused activation plane by plane, while the
// plane is in cache.
void affine_channel(const BatchNormGeometry& g, int ch, const float* in, float scale, float shift,
                    float* out, const FusedActivation<float>& fused) {
  for (int s = 0; s < g.n; ++s) {
    const std::size_t first = g.plane_at(s, ch);
    const float* x = in + first;
    float* y = out + first;
    for (int i = 0; i < g.plane; ++i) y[i] = x[i] * scale + shift;
    fused_activation_forward(fused, first, std::size_t(g.plane), out);
  }
}

// The backward pass's two sums over channel ch: sum dout and sum dout * xhat, in one read of
// in and dout (sum dout * (x - mu), times inv_std once).
struct GradientSums {
  float dout, dout_xhat;
};

GradientSums gradient_sums(const BatchNormGeometry& g, int ch, const float* in, const float* dout,
                           float mu, float rstd) {
  double sum_dout = 0.0, sum_dout_dx = 0.0;
  for (int s = 0; s < g.n; ++s) {
    const std::size_t first = g.plane_at(s, ch);
    const float* x = in + first;
    const float* dy = dout + first;
    float a[kLanes] = {}, b[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= g.plane; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        a[j] += dy[i + j];
        b[j] += dy[i + j] * (x[i + j] - mu);
      }
    for (; i < g.plane; ++i) {
      a[i % kLanes] += dy[i];
      b[i % kLanes] += dy[i] * (x[i] - mu);
    }
    float pa = 0.0f, pb = 0.0f;
    for (int j = 0; j < kLanes; ++j) {
      pa += a[j];
      pb += b[j];
    }
    sum_dout += double(pa);
    sum_dout_dx += double(pb);
  }
  return GradientSums{float(sum_dout), float(sum_dout_dx * double(rstd))};
}

}  // namespace

// in: [n, c, plane] -> out: [n, c, plane]; mean, inv_std, running_mean, running_var: [c]
void batch_norm_forward_training(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const BatchNormParams& bn, const float* in, const float* gamma,
                                 const float* beta, float* out, const FusedActivation<float>& fused,
                                 float* mean, float* inv_std, float* running_mean,
                                 float* running_var, float* batches_tracked) {
  const double m = double(g.per_channel());
  const float momentum = float(bn.momentum);
  for (int ch = c_begin; ch < c_end; ++ch) {
    const float mu = float(channel_sum(g, ch, [&](std::size_t at) { return in[at]; }) / m);
    const double squares = channel_sum(g, ch, [&](std::size_t at) {
      const float d = in[at] - mu;
      return d * d;
    });
    const float rstd = float(1.0 / std::sqrt(squares / m + bn.eps));  // biased variance
    mean[ch] = mu;
    inv_std[ch] = rstd;
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mu;
    running_var[ch] =
        (1.0f - momentum) * running_var[ch] + momentum * float(squares / (m - 1.0));  // unbiased
    const float scale = gamma[ch] * rstd;
    affine_channel(g, ch, in, scale, beta[ch] - mu * scale, out, fused);
  }
  if (c_begin == 0 && c_end > 0) *batches_tracked += 1.0f;
}

// in: [n, c, plane] -> out: [n, c, plane], with the running statistics
void batch_norm_forward_inference(const BatchNormGeometry& g, int c_begin, int c_end,
                                  const BatchNormParams& bn, const float* in, const float* gamma,
                                  const float* beta, const float* running_mean,
                                  const float* running_var, float* out,
                                  const FusedActivation<float>& fused) {
  for (int ch = c_begin; ch < c_end; ++ch) {
    const float scale = gamma[ch] / std::sqrt(running_var[ch] + float(bn.eps));
    affine_channel(g, ch, in, scale, beta[ch] - running_mean[ch] * scale, out, fused);
  }
}

// in, dout: [n, c, plane] -> dgamma = sum dout * xhat, dbeta = sum dout: [c]
void batch_norm_backward_weights(const BatchNormGeometry& g, int c_begin, int c_end,
                                 const float* in, const float* dout, const float* mean,
                                 const float* inv_std, float* dgamma, float* dbeta) {
  for (int ch = c_begin; ch < c_end; ++ch) {
    const GradientSums sums = gradient_sums(g, ch, in, dout, mean[ch], inv_std[ch]);
    dbeta[ch] = sums.dout;
    dgamma[ch] = sums.dout_xhat;
  }
}

// in, dout: [n, c, plane] -> din = gamma * inv_std / m * (m * dout - dbeta - xhat * dgamma)
void batch_norm_backward_data(const BatchNormGeometry& g, int c_begin, int c_end, const float* in,
                              const float* dout, const float* gamma, const float* mean,
                              const float* inv_std, float* din,
                              const FusedActivationGrad<float>& fused) {
  const float m = float(g.per_channel());
  for (int ch = c_begin; ch < c_end; ++ch) {
    const float mu = mean[ch], rstd = inv_std[ch];
    const GradientSums sums = gradient_sums(g, ch, in, dout, mu, rstd);
    // din = k * m * dout - k * sum_dout - k * xhat * sum_dout_xhat, as dout * a + x * b + c
    const float k = gamma[ch] * rstd / m;
    const float a = k * m, b = -k * rstd * sums.dout_xhat;
    const float c = -k * sums.dout - b * mu;
    for (int s = 0; s < g.n; ++s) {
      const std::size_t first = g.plane_at(s, ch);
      const float* x = in + first;
      const float* dy = dout + first;
      float* dx = din + first;
      for (int i = 0; i < g.plane; ++i) dx[i] = dy[i] * a + x[i] * b + c;
      fused_activation_backward(fused, first, std::size_t(g.plane), din);
    }
  }
}

}  // namespace cnnrt::cpu::fast
