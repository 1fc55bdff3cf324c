// CUDA activations (docs/math.md section 2): element-wise, grid-stride loops.
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// z: [count] -> a: [count] (a may alias z: each element is read before it is written)
__global__ void activation_forward_kernel(Activation kind, float leaky_slope, std::size_t count,
                                          const float* z, float* a) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    a[i] = detail::activate(kind, leaky_slope, z[i]);
}

// z, a, da: [count] -> dz: [count] (dz may alias da)
__global__ void activation_backward_kernel(Activation kind, float leaky_slope, std::size_t count,
                                           const float* z, const float* a, const float* da,
                                           float* dz) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    dz[i] = detail::activation_grad(kind, leaky_slope, z, a, i, da[i]);
  }
}

}  // namespace

void activation_forward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                        float* a, cudaStream_t stream) {
  if (count == 0) return;
  activation_forward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                              stream>>>(kind, leaky_slope, count, z, a);
  CNNRT_LAUNCH_CHECK(activation_forward_kernel);
}

void activation_backward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                         const float* a, const float* da, float* dz, cudaStream_t stream) {
  if (count == 0) return;
  activation_backward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                               stream>>>(kind, leaky_slope, count, z, a, da, dz);
  CNNRT_LAUNCH_CHECK(activation_backward_kernel);
}

}  // namespace cnnrt::cuda
