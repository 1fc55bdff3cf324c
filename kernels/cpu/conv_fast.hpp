#pragma once
// The fast CPU convolution (float): samples unfolded (im2col) into a per-thread buffer and
// multiplied by oneDNN's sgemm, which picks its AVX2 / AVX-512 kernels at run time; the weight
// gradient takes samples with small output planes several to one GEMM (conv2d_samples_per_gemm).
// One call handles one slice of the batch on the calling thread; the layer unit splits the batch
// across threads. Held against the plain-loop twin in kernels/cpu/conv.cpp by
// tests/cpu_fast_test.cpp.
#include <cstddef>

#include "kernels/ops.hpp"

namespace cnnrt::cpu::fast {

// How many of g's n samples one weight-gradient GEMM takes (1 for a 1x1 kernel read in place).
int conv2d_samples_per_gemm(const Conv2dGeometry& g);

// Floats of the buffer one thread needs for g.n samples or fewer: the group's unfolding
// [c * kh * kw, group * out_h * out_w] and the group's output gradients.
std::size_t conv2d_col_floats(const Conv2dGeometry& g);

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out: [n, k, out_h, out_w]
// holding z, fused.activated act(z) when set; col: conv2d_col_floats(g) floats.
void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, const FusedActivation<float>& fused, float* col);

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w] (overwritten)
void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, float* col);

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw], dbias: [k]
// (overwritten): the sums over this slice's samples, in sample order.
void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, float* col);

}  // namespace cnnrt::cpu::fast
