#pragma once
// CPU reference activations (docs/math.md section 2), element-wise over `count` elements.
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

// The scalar rule of activation_forward, for one value.
template <typename T>
T activate(Activation kind, T leaky_slope, T z);

// An activation fused into an op (kernels/ops.hpp), on elements [first, first + count) of the
// op's whole output: forward, act(z) into fused.activated; backward, din's da -> dz in place.
// Nothing when none is fused. They run activation_forward / activation_backward, so fused and
// unfused give the same bits.
template <typename T>
void fused_activation_forward(const FusedActivation<T>& fused, std::size_t first, std::size_t count,
                              const T* z);
template <typename T>
void fused_activation_backward(const FusedActivationGrad<T>& fused, std::size_t first,
                               std::size_t count, T* din);

}  // namespace cnnrt::cpu
