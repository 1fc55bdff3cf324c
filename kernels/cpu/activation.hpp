#pragma once
// CPU reference activations (SPEC.md section 2), element-wise over `count` elements.
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// z: [count] -> a: [count]; a may alias z.
template <typename T>
void activation_forward(Activation kind, T leaky_slope, std::size_t count, const T* z, T* a);

// z (pre-activation), a (output), da: [count] -> dz: [count]; dz may alias da.
// ReLU passes the gradient where z >= 0 (the lecture's rule); sigmoid uses a * (1 - a).
template <typename T>
void activation_backward(Activation kind, T leaky_slope, std::size_t count, const T* z, const T* a,
                         const T* da, T* dz);

// The scalar rules, shared with the fused conv forward.
template <typename T>
T activate(Activation kind, T leaky_slope, T z);

}  // namespace cnnrt::cpu
