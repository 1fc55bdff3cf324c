#pragma once
// CUDA activations, the twin of kernels/cpu/activation.hpp.
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// z: [count] -> a: [count]; a may alias z.
void activation_forward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                        float* a, cudaStream_t stream);

// z, a, da: [count] -> dz: [count]; dz may alias da.
void activation_backward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                         const float* a, const float* da, float* dz, cudaStream_t stream);

}  // namespace cnnrt::cuda
