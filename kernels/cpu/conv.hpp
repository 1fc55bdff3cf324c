#pragma once
// CPU reference convolution (docs/math.md section 1): plain loops, templated on float and double.
#include <algorithm>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// The output positions o in [0, out) whose kernel tap t reads inside the input,
// 0 <= o*stride + t - pad < in, as the half-open range [*lo, *hi). Hoisting the padding test out
// of the inner loops keeps them branch-free (and lets the compiler vectorise them).
inline void tap_range(int out, int in, int stride, int tap, int pad, int* lo, int* hi) {
  const int first = pad - tap;  // o*stride >= first
  *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  const int last = in - 1 + pad - tap;  // o*stride <= last
  *hi = last < 0 ? 0 : std::min(out, last / stride + 1);
  if (*hi < *lo) *hi = *lo;
}

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
