#pragma once
// CPU reference optimizer updates over one contiguous parameter buffer (see OptimizerParams).
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// param, grad, first, second: [count]; param and the state updated in place. first: SGD's
// momentum buffer or Adam's first moment; second: Adam's second moment (unused, may be nullptr,
// for sgd and nesterov). `step` holds this step's rate and Adam's bias corrections.
template <typename T>
void optimizer_update(const OptimizerParams& params, const StepScalars& step, std::size_t count,
                      T* param, const T* grad, T* first, T* second);

}  // namespace cnnrt::cpu
