// CUDA SGD, Nesterov SGD, Adam and AdamW (PyTorch's conventions, see OptimizerParams): one
// element-wise kernel over the whole contiguous parameter buffer (or one run of it).
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/optimizer.cuh"

namespace cnnrt::cuda {
namespace {

__device__ const float* step_entry(const float* scalars, const std::int32_t* index) {
  return scalars + (index != nullptr ? std::size_t(*index) * StepScalars::kCount : 0);
}

// param, grad, velocity: [count]; grid-stride.
template <bool kNesterov>
__global__ void sgd_kernel(OptimizerParams params, const float* __restrict__ scalars,
                           const std::int32_t* __restrict__ index, std::size_t count,
                           float* __restrict__ param, const float* __restrict__ grad,
                           float* __restrict__ velocity) {
  const float lr = step_entry(scalars, index)[0];
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float p = param[i];
    const float d = grad[i] + params.weight_decay * p;
    const float v = params.momentum * velocity[i] + d;
    velocity[i] = v;
    param[i] = p - lr * (kNesterov ? d + params.momentum * v : v);
  }
}

// param, grad, m, s: [count]; grid-stride.
template <bool kDecoupled>
__global__ void adam_kernel(OptimizerParams params, const float* __restrict__ scalars,
                            const std::int32_t* __restrict__ index, std::size_t count,
                            float* __restrict__ param, const float* __restrict__ grad,
                            float* __restrict__ m, float* __restrict__ s) {
  const float* entry = step_entry(scalars, index);
  const float step_size = entry[1], bc2_sqrt = entry[2], factor = entry[3];
  const float b1 = params.beta1, b2 = params.beta2;
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    float p = param[i];
    float g = grad[i];
    if (kDecoupled) {
      if (params.weight_decay != 0.0f) p *= factor;
    } else {
      g += params.weight_decay * p;
    }
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float si = b2 * s[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    s[i] = si;
    param[i] = p - step_size * (mi / (sqrtf(si) / bc2_sqrt + params.eps));
  }
}

}  // namespace

void optimizer_update(const OptimizerParams& params, const float* scalars,
                      const std::int32_t* index, std::size_t count, float* param, const float* grad,
                      float* first, float* second, cudaStream_t stream) {
  if (count == 0) return;
  const unsigned blocks = detail::elementwise_blocks(count);
  constexpr int threads = detail::kElementwiseThreads;
  switch (params.kind) {
    case OptimizerKind::sgd:
      sgd_kernel<false>
          <<<blocks, threads, 0, stream>>>(params, scalars, index, count, param, grad, first);
      CNNRT_LAUNCH_CHECK(sgd_kernel);
      return;
    case OptimizerKind::nesterov:
      sgd_kernel<true>
          <<<blocks, threads, 0, stream>>>(params, scalars, index, count, param, grad, first);
      CNNRT_LAUNCH_CHECK(sgd_kernel);
      return;
    case OptimizerKind::adam:
      adam_kernel<false><<<blocks, threads, 0, stream>>>(params, scalars, index, count, param, grad,
                                                         first, second);
      CNNRT_LAUNCH_CHECK(adam_kernel);
      return;
    case OptimizerKind::adamw:
      adam_kernel<true><<<blocks, threads, 0, stream>>>(params, scalars, index, count, param, grad,
                                                        first, second);
      CNNRT_LAUNCH_CHECK(adam_kernel);
      return;
  }
}

}  // namespace cnnrt::cuda
