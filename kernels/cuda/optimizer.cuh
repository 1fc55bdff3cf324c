#pragma once
// CUDA SGD update over the one contiguous parameter buffer, the twin of kernels/cpu/optimizer.hpp.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// param, grad, velocity: [count]
void sgd_update(const SgdParams& params, std::size_t count, float* param, const float* grad,
                float* velocity, cudaStream_t stream);

}  // namespace cnnrt::cuda
