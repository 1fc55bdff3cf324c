#pragma once
// The fast CPU pooling (float): 2x2 windows moved by 2 (LeNet's, and most small CNNs'), with
// each output row read from its two input rows in one pass and no branch on the data. Max pooling
// over other windows runs four windows a vector (strides 1 and 2) or without a branch on the data;
// their backward pass and other average pooling run the plain loops of kernels/cpu/pool.cpp. Held
// against those twins by tests/cpu_fast_test.cpp.
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cpu::fast {

// Whether g takes the 2x2-by-2 path (else the reference loops run).
bool pool2d_is_2x2_by_2(const Pool2dGeometry& g);

// in: [n, c, h, w] -> out, argmax: [n, c, out_h, out_w] (argmax as in cpu::max_pool_forward: the
// first maximum in row-major order, its index y * w + x inside the input plane)
void max_pool_forward(const Pool2dGeometry& g, const float* in, float* out, std::int32_t* argmax);

// dout, argmax: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten), through `fused`
void max_pool_backward(const Pool2dGeometry& g, const float* dout, const std::int32_t* argmax,
                       float* din, const FusedActivationGrad<float>& fused);

// in: [n, c, h, w] -> out: [n, c, out_h, out_w], the window mean
void avg_pool_forward(const Pool2dGeometry& g, const float* in, float* out);

// dout: [n, c, out_h, out_w] -> din: [n, c, h, w] (overwritten), through `fused`
void avg_pool_backward(const Pool2dGeometry& g, const float* dout, float* din,
                       const FusedActivationGrad<float>& fused);

}  // namespace cnnrt::cpu::fast
