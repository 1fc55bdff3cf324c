// CUDA SGD with momentum and weight decay (PyTorch's convention, see SgdParams): one element-wise
// kernel over the whole contiguous parameter buffer.
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/optimizer.cuh"

namespace cnnrt::cuda {
namespace {

// param, grad, velocity: [count]; grid-stride.
__global__ void sgd_update_kernel(SgdParams params, std::size_t count, float* __restrict__ param,
                                  const float* __restrict__ grad, float* __restrict__ velocity) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float p = param[i];
    const float v = params.momentum * velocity[i] + (grad[i] + params.weight_decay * p);
    velocity[i] = v;
    param[i] = p - params.lr * v;
  }
}

}  // namespace

void sgd_update(const SgdParams& params, std::size_t count, float* param, const float* grad,
                float* velocity, cudaStream_t stream) {
  if (count == 0) return;
  sgd_update_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0, stream>>>(
      params, count, param, grad, velocity);
  CNNRT_LAUNCH_CHECK(sgd_update_kernel);
}

}  // namespace cnnrt::cuda
