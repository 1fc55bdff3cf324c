#pragma once
// CPU reference dropout (docs/math.md section 6) with the Philox stream described in DropoutParams.
#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// in: [count] -> out: [count] = in * mask / (1 - p), mask: [count] (1 kept, 0 dropped)
template <typename T>
void dropout_forward(const DropoutParams& params, std::size_t count, const T* in, T* out,
                     std::uint8_t* mask);

// dout, mask: [count] -> din: [count] = dout * mask / (1 - p)
template <typename T>
void dropout_backward(const DropoutParams& params, std::size_t count, const T* dout,
                      const std::uint8_t* mask, T* din);

}  // namespace cnnrt::cpu
