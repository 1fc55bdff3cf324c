#pragma once
// CUDA optimizer updates over the one contiguous parameter buffer, the twin of
// kernels/cpu/optimizer.hpp.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// param, grad, first, second: [count] (second: Adam's second moment, nullptr for sgd and
// nesterov). scalars: device [entries, StepScalars::kCount] floats; the step reads entry
// *index, or entry 0 when index is nullptr, so a captured graph takes each step's values from
// memory the host fills beforehand.
void optimizer_update(const OptimizerParams& params, const float* scalars,
                      const std::int32_t* index, std::size_t count, float* param, const float* grad,
                      float* first, float* second, cudaStream_t stream);

}  // namespace cnnrt::cuda
