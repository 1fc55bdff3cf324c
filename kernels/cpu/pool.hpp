#pragma once
// CPU reference pooling (docs/math.md section 5). Windows may overlap (stride < window, as in
// AlexNet); backward then sums the contributions of every window that covers an input element.
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// in: [n, c, h, w] -> out: [n, c, out_h, out_w], argmax: [n, c, out_h, out_w] holding the index
// (y * w + x) inside the input plane of the first maximum in row-major order.
template <typename T>
void max_pool_forward(const Pool2dGeometry& g, const T* in, T* out, std::int32_t* argmax);

// dout, argmax: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten). With fused.z set, din
// gets the gradient at the input of the activation in front of the pooling (FusedActivationGrad).
template <typename T>
void max_pool_backward(const Pool2dGeometry& g, const T* dout, const std::int32_t* argmax, T* din,
                       const FusedActivationGrad<T>& fused);

// in: [n, c, h, w] -> out: [n, c, out_h, out_w], the window mean
template <typename T>
void avg_pool_forward(const Pool2dGeometry& g, const T* in, T* out);

// dout: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten): DZ / (win_h * win_w) per window,
// through `fused` as above.
template <typename T>
void avg_pool_backward(const Pool2dGeometry& g, const T* dout, T* din,
                       const FusedActivationGrad<T>& fused);

}  // namespace cnnrt::cpu
