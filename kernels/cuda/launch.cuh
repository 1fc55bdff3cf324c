#pragma once
// Launch helpers shared by the CUDA kernel files (device-side only, not part of the contract).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cuda::detail {

constexpr int kElementwiseThreads = 256;
// Enough blocks to fill an H100 several times over; grid-stride loops cover the rest.
constexpr std::size_t kMaxElementwiseBlocks = 4096;

inline unsigned elementwise_blocks(std::size_t count) {
  const std::size_t blocks = (count + kElementwiseThreads - 1) / kElementwiseThreads;
  return static_cast<unsigned>(std::min(blocks, kMaxElementwiseBlocks));
}

// Sums partial[0 .. Threads) (one value per thread of a 1-D block of Threads threads, a power of
// two) in a fixed tree order, the same on every run; the result is in partial[0] for every thread.
template <int Threads, typename T>
__device__ void block_tree_sum(T* partial) {
  static_assert(Threads > 0 && (Threads & (Threads - 1)) == 0, "a power of two");
  for (int half = Threads / 2; half > 0; half /= 2) {
    __syncthreads();
    if (int(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
  }
  __syncthreads();
}

// The scalar activation rules of docs/math.md section 2, the same as cpu::activate.
__device__ __forceinline__ float activate(Activation kind, float leaky_slope, float z) {
  switch (kind) {
    case Activation::relu:
      return z >= 0.0f ? z : 0.0f;
    case Activation::leaky_relu:
      return z >= 0.0f ? z : leaky_slope * z;
    case Activation::sigmoid:
      return 1.0f / (1.0f + expf(-z));
    case Activation::none:
    default:
      return z;
  }
}

// The backward rules of docs/math.md section 2 at element `at`: da -> dz, given the activation's
// input z and output a, of which only the array the rule needs is read (z for the ReLUs, a for
// sigmoid). ReLU passes the gradient where z >= 0, as the lecture says.
__device__ __forceinline__ float activation_grad(Activation kind, float leaky_slope,
                                                 const float* __restrict__ z,
                                                 const float* __restrict__ a, std::size_t at,
                                                 float da) {
  switch (kind) {
    case Activation::relu:
      return z[at] >= 0.0f ? da : 0.0f;
    case Activation::leaky_relu:
      return z[at] >= 0.0f ? da : leaky_slope * da;
    case Activation::sigmoid: {
      const float out = a[at];
      return da * out * (1.0f - out);
    }
    case Activation::none:
    default:
      return da;
  }
}

// An op's result da at element `at` of its din after a fused activation's backward pass.
__device__ __forceinline__ float fused_grad(const FusedActivationGrad<float>& fused, std::size_t at,
                                            float da) {
  return fused.z == nullptr
             ? da
             : activation_grad(fused.kind, fused.leaky_slope, fused.z, fused.a, at, da);
}

}  // namespace cnnrt::cuda::detail
