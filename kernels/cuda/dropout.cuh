#pragma once
// CUDA dropout, the twin of kernels/cpu/dropout.hpp: the same Philox stream, the same mask.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// in: [count] -> out: [count], mask: [count]
void dropout_forward(const DropoutParams& params, std::size_t count, const float* in, float* out,
                     std::uint8_t* mask, cudaStream_t stream);
// dout, mask: [count] -> din: [count]
void dropout_backward(const DropoutParams& params, std::size_t count, const float* dout,
                      const std::uint8_t* mask, float* din, cudaStream_t stream);

}  // namespace cnnrt::cuda
