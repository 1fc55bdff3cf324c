#pragma once
// The fast CPU activations (float): the sigmoid through a vectorised exp (a degree-6 polynomial
// after range reduction, within 2 ulp of expf; kernels/cpu/sigmoid_lanes.hpp), the other kinds as
// the plain loops of kernels/cpu/activation.cpp, which already vectorise. Every fast-path op that
// fuses an activation, and the activation layer itself on the fast path, runs these, so fused and
// unfused give the same bits there too. Held against the twins by tests/cpu_fast_test.cpp.
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cpu::fast {

// The sigmoid's lane widths. Every width gives the same bits; the widest that the build and the
// processor both have is chosen once, at the first call.
enum class SigmoidPath { lanes4, avx2, avx512 };

const char* sigmoid_path_name(SigmoidPath path);
bool sigmoid_path_available(SigmoidPath path);  // lanes4 always is
SigmoidPath chosen_sigmoid_path();

// z: [count] -> a: [count] = 1 / (1 + exp(-z)); a may alias z. The path must be available.
void sigmoid_forward(SigmoidPath path, std::size_t count, const float* z, float* a);

// z: [count] -> a: [count]; a may alias z.
void activation_forward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                        float* a);

// As cpu::fused_activation_forward: elements [first, first + count) of z -> fused.activated.
void fused_activation_forward(const FusedActivation<float>& fused, std::size_t first,
                              std::size_t count, const float* z);

}  // namespace cnnrt::cpu::fast
