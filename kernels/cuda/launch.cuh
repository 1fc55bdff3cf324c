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

// The scalar activation rules of SPEC.md section 2, the same as cpu::activate.
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

}  // namespace cnnrt::cuda::detail
