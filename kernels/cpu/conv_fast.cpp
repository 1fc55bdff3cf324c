// The fast CPU convolution (float): im2col + OpenBLAS sgemm, one sample at a time, so each
// sample's unfolded input stays in cache between the unfold and the multiply.
#include "kernels/cpu/conv_fast.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/conv.hpp"

namespace cnnrt::cpu::fast {

namespace {

std::size_t window(const Conv2dGeometry& g) {
  return std::size_t(g.c) * g.kh * g.kw;
}
std::size_t plane_out(const Conv2dGeometry& g) {
  return std::size_t(g.out_h) * g.out_w;
}
std::size_t plane_in(const Conv2dGeometry& g) {
  return std::size_t(g.h) * g.w;
}

// A 1x1 kernel with stride 1 and no padding reads the input as it lies: no unfolding.
bool reads_input_as_is(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 &&
         g.pad_left == 0;
}

// Calls fn(row, y0, y1, x0, x1, offset) for each kernel tap (c, i, j): row = (c * kh + i) * kw + j
// is its row of the unfolded buffer, [y0, y1) x [x0, x1) the output positions whose tap reads
// inside the input (tap_range), and offset the input element read at output (y, x) minus
// y * stride_h * w + x * stride_w.
template <typename Fn>
void for_each_tap(const Conv2dGeometry& g, Fn&& fn) {
  for (int c = 0; c < g.c; ++c)
    for (int i = 0; i < g.kh; ++i) {
      int y0, y1;
      tap_range(g.out_h, g.h, g.stride_h, i, g.pad_top, &y0, &y1);
      for (int j = 0; j < g.kw; ++j) {
        int x0, x1;
        tap_range(g.out_w, g.w, g.stride_w, j, g.pad_left, &x0, &x1);
        const std::ptrdiff_t offset =
            (std::ptrdiff_t(c) * g.h + (i - g.pad_top)) * g.w + (j - g.pad_left);
        fn((std::size_t(c) * g.kh + i) * g.kw + j, y0, y1, x0, x1, offset);
      }
    }
}

// in: [c, h, w] (one sample) -> col: [c * kh * kw, out_h * out_w], row (c, i, j) holding the
// input under kernel tap (i, j) at every output position (zero in the padding).
void im2col(const Conv2dGeometry& g, const float* in, float* col) {
  const std::size_t plane = plane_out(g);
  for_each_tap(g, [&](std::size_t tap, int y0, int y1, int x0, int x1, std::ptrdiff_t offset) {
    float* row = col + tap * plane;
    std::fill(row, row + std::size_t(y0) * g.out_w, 0.0f);
    for (int y = y0; y < y1; ++y) {
      float* r = row + std::size_t(y) * g.out_w;
      const float* a = in + offset + std::ptrdiff_t(y) * g.stride_h * g.w;
      std::fill(r, r + x0, 0.0f);
      if (g.stride_w == 1)
        for (int x = x0; x < x1; ++x) r[x] = a[x];
      else
        for (int x = x0; x < x1; ++x) r[x] = a[x * g.stride_w];
      std::fill(r + x1, r + g.out_w, 0.0f);
    }
    std::fill(row + std::size_t(y1) * g.out_w, row + plane, 0.0f);
  });
}

// col: [c * kh * kw, out_h * out_w] -> din: [c, h, w] (one sample, overwritten): the transpose of
// im2col, each input element summing the taps that read it.
void col2im(const Conv2dGeometry& g, const float* col, float* din) {
  const std::size_t plane = plane_out(g);
  std::fill(din, din + std::size_t(g.c) * plane_in(g), 0.0f);
  for_each_tap(g, [&](std::size_t tap, int y0, int y1, int x0, int x1, std::ptrdiff_t offset) {
    const float* row = col + tap * plane;
    for (int y = y0; y < y1; ++y) {
      const float* r = row + std::size_t(y) * g.out_w;
      float* a = din + offset + std::ptrdiff_t(y) * g.stride_h * g.w;
      if (g.stride_w == 1)
        for (int x = x0; x < x1; ++x) a[x] += r[x];
      else
        for (int x = x0; x < x1; ++x) a[x * g.stride_w] += r[x];
    }
  });
}

}  // namespace

std::size_t conv2d_col_floats(const Conv2dGeometry& g) {
  return reads_input_as_is(g) ? 0 : window(g) * plane_out(g);
}

// out[k, p] = b[k] + sum_r W[k, r] col[r, p] per sample: [k, c*kh*kw] x [c*kh*kw, out_h*out_w]
void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, const FusedActivation<float>& fused,
                    float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  for (int n = 0; n < g.n; ++n) {
    const float* x = in + std::size_t(n) * sample_in;
    float* z = out + std::size_t(n) * sample_out;
    for (int k = 0; k < g.k; ++k)
      std::fill(z + std::size_t(k) * plane, z + std::size_t(k + 1) * plane, bias ? bias[k] : 0.0f);
    const float* unfolded = x;
    if (!reads_input_as_is(g)) im2col(g, x, col), unfolded = col;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.k, int(plane), int(r), 1.0f, weight,
                int(r), unfolded, int(plane), 1.0f, z, int(plane));
    fused_activation_forward(fused, std::size_t(n) * sample_out, sample_out, out);
  }
}

// dcol[r, p] = sum_k W[k, r] dout[k, p] per sample, folded back onto the input (col2im)
void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  for (int n = 0; n < g.n; ++n) {
    float* da = din + std::size_t(n) * sample_in;
    float* target = reads_input_as_is(g) ? da : col;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(r), int(plane), g.k, 1.0f, weight,
                int(r), dout + std::size_t(n) * sample_out, int(plane), 0.0f, target, int(plane));
    if (!reads_input_as_is(g)) col2im(g, col, da);
  }
}

// dW[k, r] = sum_{n, p} dout[n, k, p] col_n[r, p];  db[k] = sum_{n, p} dout[n, k, p]
void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  std::fill(dweight, dweight + g.weight_size(), 0.0f);
  std::fill(dbias, dbias + g.k, 0.0f);
  for (int n = 0; n < g.n; ++n) {
    const float* x = in + std::size_t(n) * sample_in;
    const float* dz = dout + std::size_t(n) * sample_out;
    const float* unfolded = x;
    if (!reads_input_as_is(g)) im2col(g, x, col), unfolded = col;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.k, int(r), int(plane), 1.0f, dz,
                int(plane), unfolded, int(plane), 1.0f, dweight, int(r));
    for (int k = 0; k < g.k; ++k) {
      const float* row = dz + std::size_t(k) * plane;
      float sum = 0.0f;
      for (std::size_t p = 0; p < plane; ++p) sum += row[p];
      dbias[k] += sum;
    }
  }
}

}  // namespace cnnrt::cpu::fast
