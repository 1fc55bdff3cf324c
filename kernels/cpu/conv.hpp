#pragma once
// CPU reference convolution (docs/math.md section 1): plain loops, templated on float and double.
#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out: [n, k, out_h, out_w]
// holding z; with fused.activated, also act(z) there (FusedActivation{} for the plain
// convolution).
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                    const FusedActivation<T>& fused);

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w] (overwritten)
// DA = DZ dilated by the stride, zero-padded to "full", cross-correlated with rot180(W).
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* dout, const T* weight, T* din);

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw], dbias: [k] or nullptr
// (both overwritten, not accumulated). `workspace` is there for the CUDA twin's argument list:
// the reference needs no scratch, so it is unused and may be nullptr.
template <typename T>
void conv2d_backward_weights(const Conv2dGeometry& g, const T* in, const T* dout, T* dweight,
                             T* dbias, void* workspace);

}  // namespace cnnrt::cpu
