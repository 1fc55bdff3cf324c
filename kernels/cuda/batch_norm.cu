// CUDA batch normalisation (docs/math.md section 11). The reducing kernels run one block per
// channel: each thread sums a fixed stride of the channel's values, then block_tree_sum adds the
// threads' partial sums in a fixed order. The statistics use two passes (mean, then the squared
// deviations), as the CPU twin does.
#include <cstdint>
#include <limits>

#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

constexpr int kChannelThreads = 256;

// Index: 32-bit when the tensor has fewer than 2^31 elements, else 64-bit (as in pool.cu).
// The element of channel ch numbered e in [0, n * plane): sample e / plane, position e % plane.
template <typename Index>
__device__ __forceinline__ Index channel_element(const BatchNormGeometry& g, int ch, Index e) {
  const Index plane = Index(g.plane);
  return (e / plane * Index(g.c) + Index(ch)) * plane + e % plane;
}

// sum over channel ch of f(element index), the same value in every thread of the block.
// `partial` is the block's shared array of kChannelThreads floats.
template <typename Index, typename F>
__device__ float channel_sum(const BatchNormGeometry& g, int ch, float* partial, F f) {
  const Index m = Index(g.n) * Index(g.plane);
  float sum = 0.0f;
  for (Index e = threadIdx.x; e < m; e += kChannelThreads) sum += f(channel_element(g, ch, e));
  partial[threadIdx.x] = sum;
  detail::block_tree_sum<kChannelThreads>(partial);
  const float total = partial[0];
  __syncthreads();  // partial may be reused by the next sum
  return total;
}

// The two sums of the backward pass over channel ch: dbeta = sum dout and dgamma = sum dout * xhat.
struct GradientSums {
  float dout, dout_xhat;
};

template <typename Index>
__device__ GradientSums gradient_sums(const BatchNormGeometry& g, int ch, float* partial,
                                      const float* __restrict__ in, const float* __restrict__ dout,
                                      float mu, float rstd) {
  const float sum_dout = channel_sum<Index>(g, ch, partial, [&](Index at) { return dout[at]; });
  const float sum_dout_xhat = channel_sum<Index>(
      g, ch, partial, [&](Index at) { return dout[at] * ((in[at] - mu) * rstd); });
  return GradientSums{sum_dout, sum_dout_xhat};
}

// One block per channel: statistics, running statistics, then out = x * scale + shift.
template <typename Index>
__global__ void __launch_bounds__(kChannelThreads) batch_norm_forward_training_kernel(
    BatchNormGeometry g, BatchNormParams bn, const float* __restrict__ in,
    const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ out,
    FusedActivation<float> fused, float* __restrict__ mean, float* __restrict__ inv_std,
    float* __restrict__ running_mean, float* __restrict__ running_var,
    float* __restrict__ batches_tracked) {
  __shared__ float partial[kChannelThreads];
  const int ch = blockIdx.x;
  const float m = float(Index(g.n) * Index(g.plane));
  const float mu = channel_sum<Index>(g, ch, partial, [&](Index at) { return in[at]; }) / m;
  const float squares = channel_sum<Index>(g, ch, partial, [&](Index at) {
    const float d = in[at] - mu;
    return d * d;
  });
  const float rstd = 1.0f / sqrtf(squares / m + float(bn.eps));
  const float momentum = float(bn.momentum);
  if (threadIdx.x == 0) {
    mean[ch] = mu;
    inv_std[ch] = rstd;
    running_mean[ch] = (1.0f - momentum) * running_mean[ch] + momentum * mu;
    running_var[ch] = (1.0f - momentum) * running_var[ch] + momentum * (squares / (m - 1.0f));
    if (ch == 0) *batches_tracked += 1.0f;
  }
  const float scale = gamma[ch] * rstd;
  const float shift = beta[ch] - mu * scale;
  const Index count = Index(g.n) * Index(g.plane);
  for (Index e = threadIdx.x; e < count; e += kChannelThreads) {
    const Index at = channel_element(g, ch, e);
    const float z = in[at] * scale + shift;
    out[at] = z;
    if (fused.activated != nullptr)
      fused.activated[at] = detail::activate(fused.kind, fused.leaky_slope, z);
  }
}

// Grid-stride over all [n, c, plane] values.
template <typename Index>
__global__ void batch_norm_forward_inference_kernel(
    BatchNormGeometry g, BatchNormParams bn, Index count, const float* __restrict__ in,
    const float* __restrict__ gamma, const float* __restrict__ beta,
    const float* __restrict__ running_mean, const float* __restrict__ running_var,
    float* __restrict__ out, FusedActivation<float> fused) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index at = Index(blockIdx.x) * blockDim.x + threadIdx.x; at < count; at += stride) {
    const int ch = int(at / Index(g.plane) % Index(g.c));
    const float scale = gamma[ch] / sqrtf(running_var[ch] + float(bn.eps));
    const float z = in[at] * scale + (beta[ch] - running_mean[ch] * scale);
    out[at] = z;
    if (fused.activated != nullptr)
      fused.activated[at] = detail::activate(fused.kind, fused.leaky_slope, z);
  }
}

// One block per channel: dbeta = sum dout, dgamma = sum dout * xhat.
template <typename Index>
__global__ void __launch_bounds__(kChannelThreads)
    batch_norm_backward_weights_kernel(BatchNormGeometry g, const float* __restrict__ in,
                                       const float* __restrict__ dout,
                                       const float* __restrict__ mean,
                                       const float* __restrict__ inv_std,
                                       float* __restrict__ dgamma, float* __restrict__ dbeta) {
  __shared__ float partial[kChannelThreads];
  const int ch = blockIdx.x;
  const GradientSums sums = gradient_sums<Index>(g, ch, partial, in, dout, mean[ch], inv_std[ch]);
  if (threadIdx.x == 0) {
    dbeta[ch] = sums.dout;
    dgamma[ch] = sums.dout_xhat;
  }
}

// One block per channel: din = gamma * inv_std / m * (m * dout - sum dout - xhat * sum dout xhat).
template <typename Index>
__global__ void __launch_bounds__(kChannelThreads)
    batch_norm_backward_data_kernel(BatchNormGeometry g, const float* __restrict__ in,
                                    const float* __restrict__ dout, const float* __restrict__ gamma,
                                    const float* __restrict__ mean,
                                    const float* __restrict__ inv_std, float* __restrict__ din,
                                    FusedActivationGrad<float> fused) {
  __shared__ float partial[kChannelThreads];
  const int ch = blockIdx.x;
  const float mu = mean[ch], rstd = inv_std[ch];
  const GradientSums sums = gradient_sums<Index>(g, ch, partial, in, dout, mu, rstd);
  const float sum_dout = sums.dout, sum_dout_xhat = sums.dout_xhat;
  const Index count = Index(g.n) * Index(g.plane);
  const float m = float(count);
  const float k = gamma[ch] * rstd / m;
  for (Index e = threadIdx.x; e < count; e += kChannelThreads) {
    const Index at = channel_element(g, ch, e);
    const float xhat = (in[at] - mu) * rstd;
    din[at] = detail::fused_grad(fused, at, k * (m * dout[at] - sum_dout - xhat * sum_dout_xhat));
  }
}

// Calls launch(Index{}) with the index type that fits the tensor.
template <typename Launch>
void launch_indexed(const BatchNormGeometry& g, Launch&& launch) {
  if (g.size() <= std::size_t(std::numeric_limits<std::int32_t>::max()))
    launch(std::uint32_t{});
  else
    launch(std::size_t{});
}

}  // namespace

void batch_norm_forward_training(const BatchNormGeometry& g, const BatchNormParams& bn,
                                 const float* in, const float* gamma, const float* beta, float* out,
                                 const FusedActivation<float>& fused, float* mean, float* inv_std,
                                 float* running_mean, float* running_var, float* batches_tracked,
                                 cudaStream_t stream) {
  if (g.size() == 0) return;
  launch_indexed(g, [&](auto index) {
    batch_norm_forward_training_kernel<decltype(index)>
        <<<g.c, kChannelThreads, 0, stream>>>(g, bn, in, gamma, beta, out, fused, mean, inv_std,
                                              running_mean, running_var, batches_tracked);
  });
  CNNRT_LAUNCH_CHECK(batch_norm_forward_training_kernel);
}

void batch_norm_forward_inference(const BatchNormGeometry& g, const BatchNormParams& bn,
                                  const float* in, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, float* out,
                                  const FusedActivation<float>& fused, cudaStream_t stream) {
  const std::size_t count = g.size();
  if (count == 0) return;
  launch_indexed(g, [&](auto index) {
    using Index = decltype(index);
    batch_norm_forward_inference_kernel<Index>
        <<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0, stream>>>(
            g, bn, Index(count), in, gamma, beta, running_mean, running_var, out, fused);
  });
  CNNRT_LAUNCH_CHECK(batch_norm_forward_inference_kernel);
}

void batch_norm_backward_weights(const BatchNormGeometry& g, const float* in, const float* dout,
                                 const float* mean, const float* inv_std, float* dgamma,
                                 float* dbeta, cudaStream_t stream) {
  if (g.size() == 0) return;
  launch_indexed(g, [&](auto index) {
    batch_norm_backward_weights_kernel<decltype(index)>
        <<<g.c, kChannelThreads, 0, stream>>>(g, in, dout, mean, inv_std, dgamma, dbeta);
  });
  CNNRT_LAUNCH_CHECK(batch_norm_backward_weights_kernel);
}

void batch_norm_backward_data(const BatchNormGeometry& g, const float* in, const float* dout,
                              const float* gamma, const float* mean, const float* inv_std,
                              float* din, const FusedActivationGrad<float>& fused,
                              cudaStream_t stream) {
  if (g.size() == 0) return;
  launch_indexed(g, [&](auto index) {
    batch_norm_backward_data_kernel<decltype(index)>
        <<<g.c, kChannelThreads, 0, stream>>>(g, in, dout, gamma, mean, inv_std, din, fused);
  });
  CNNRT_LAUNCH_CHECK(batch_norm_backward_data_kernel);
}

}  // namespace cnnrt::cuda
