#pragma once
// CPU reference SGD update over one contiguous parameter buffer (see SgdParams).
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// param, grad, velocity: [count]; param and velocity updated in place.
template <typename T>
void sgd_update(const SgdParams& params, std::size_t count, T* param, const T* grad, T* velocity);

}  // namespace cnnrt::cpu
