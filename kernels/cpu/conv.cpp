// CPU reference convolution (docs/math.md section 1), written as the formulas read.
#include "kernels/cpu/conv.hpp"

#include <algorithm>
#include <cstddef>

#include "kernels/cpu/activation.hpp"

namespace cnnrt::cpu {

namespace {

// Flat index of [n, c, y, x] in an NCHW tensor of `channels` x `height` x `width` planes.
inline std::size_t nchw(int n, int c, int y, int x, int channels, int height, int width) {
  return ((std::size_t(n) * channels + c) * height + y) * std::size_t(width) + x;
}

}  // namespace

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out, fused.activated (when
// not nullptr): [n, k, out_h, out_w]
// Z[n,k,y,x] = b[k] + sum_{c,i,j} A[n, c, y*s + i - pad_top, x*s + j - pad_left] * W[k,c,i,j]
// The sum is accumulated one kernel tap (c, i, j) at a time over the whole output plane; reads
// outside the input (the padding) are zero and simply skipped. A fused activation runs on each
// finished plane, while it is still in cache.
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                    const FusedActivation<T>& fused) {
  const std::size_t plane = std::size_t(g.out_h) * g.out_w;
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k) {
      const std::size_t first = nchw(n, k, 0, 0, g.k, g.out_h, g.out_w);
      T* z = out + first;
      std::fill(z, z + plane, bias ? bias[k] : T(0));
      for (int c = 0; c < g.c; ++c)
        for (int i = 0; i < g.kh; ++i) {
          int y0, y1;
          tap_range(g.out_h, g.h, g.stride_h, i, g.pad_top, &y0, &y1);
          for (int j = 0; j < g.kw; ++j) {
            int x0, x1;
            tap_range(g.out_w, g.w, g.stride_w, j, g.pad_left, &x0, &x1);
            const T w = weight[nchw(k, c, i, j, g.c, g.kh, g.kw)];
            for (int y = y0; y < y1; ++y) {
              const T* a = in + nchw(n, c, y * g.stride_h + i - g.pad_top, 0, g.c, g.h, g.w) +
                           (j - g.pad_left);
              T* z_row = z + std::size_t(y) * g.out_w;
              for (int x = x0; x < x1; ++x) z_row[x] += a[x * g.stride_w] * w;
            }
          }
        }
      fused_activation_forward(fused, first, plane, out);
    }
}

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w]
//
// The lecture's rule is DA = dilate(DZ, s), zero-padded to "full", cross-correlated with
// rot180(W). Written out, the dilated DZ is non-zero only at positions oy*s, and correlating with
// the flipped kernel pairs kernel tap (i, j) with the output (oy, ox) whose window read this input:
//   DA[n,c,y,x] = sum_{k,i,j} DZ[n,k,oy,ox] * W[k,c,i,j]
//                 where y = oy*s + i - pad_top, x = ox*s + j - pad_left inside the input.
// Here each output gradient is spread over the window it was computed from (tap by tap), which
// adds up exactly those terms without materialising the dilated, padded DZ, for any stride and
// asymmetric (same) padding. (The CUDA twin computes the same sum as a gather.)
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* dout, const T* weight, T* din) {
  std::fill(din, din + g.in_size(), T(0));
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k) {
      const T* dz = dout + nchw(n, k, 0, 0, g.k, g.out_h, g.out_w);
      for (int c = 0; c < g.c; ++c)
        for (int i = 0; i < g.kh; ++i) {
          int y0, y1;
          tap_range(g.out_h, g.h, g.stride_h, i, g.pad_top, &y0, &y1);
          for (int j = 0; j < g.kw; ++j) {
            int x0, x1;
            tap_range(g.out_w, g.w, g.stride_w, j, g.pad_left, &x0, &x1);
            const T w = weight[nchw(k, c, i, j, g.c, g.kh, g.kw)];
            for (int y = y0; y < y1; ++y) {
              T* da = din + nchw(n, c, y * g.stride_h + i - g.pad_top, 0, g.c, g.h, g.w) +
                      (j - g.pad_left);
              const T* dz_row = dz + std::size_t(y) * g.out_w;
              for (int x = x0; x < x1; ++x) da[x * g.stride_w] += dz_row[x] * w;
            }
          }
        }
    }
}

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw], dbias: [k] or nullptr
// (workspace unused)
// DW[k,c,i,j] = sum_{n,y,x} A[n, c, y*s + i - pad_top, x*s + j - pad_left] * DZ[n,k,y,x]
// db[k]       = sum_{n,y,x} DZ[n,k,y,x]
template <typename T>
void conv2d_backward_weights(const Conv2dGeometry& g, const T* in, const T* dout, T* dweight,
                             T* dbias, void* /*workspace*/) {
  for (int k = 0; k < g.k; ++k)
    for (int c = 0; c < g.c; ++c)
      for (int i = 0; i < g.kh; ++i) {
        int y0, y1;
        tap_range(g.out_h, g.h, g.stride_h, i, g.pad_top, &y0, &y1);
        for (int j = 0; j < g.kw; ++j) {
          int x0, x1;
          tap_range(g.out_w, g.w, g.stride_w, j, g.pad_left, &x0, &x1);
          T sum = T(0);
          for (int n = 0; n < g.n; ++n)
            for (int y = y0; y < y1; ++y) {
              const T* a = in + nchw(n, c, y * g.stride_h + i - g.pad_top, 0, g.c, g.h, g.w) +
                           (j - g.pad_left);
              const T* dz_row = dout + nchw(n, k, y, 0, g.k, g.out_h, g.out_w);
              for (int x = x0; x < x1; ++x) sum += a[x * g.stride_w] * dz_row[x];
            }
          dweight[nchw(k, c, i, j, g.c, g.kh, g.kw)] = sum;
        }
      }
  if (dbias == nullptr) return;
  for (int k = 0; k < g.k; ++k) {
    T sum = T(0);
    for (int n = 0; n < g.n; ++n)
      for (int y = 0; y < g.out_h; ++y)
        for (int x = 0; x < g.out_w; ++x) sum += dout[nchw(n, k, y, x, g.k, g.out_h, g.out_w)];
    dbias[k] = sum;
  }
}

template void conv2d_forward<float>(const Conv2dGeometry&, const float*, const float*, const float*,
                                    float*, const FusedActivation<float>&);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*,
                                     const double*, double*, const FusedActivation<double>&);
template void conv2d_backward_data<float>(const Conv2dGeometry&, const float*, const float*,
                                          float*);
template void conv2d_backward_data<double>(const Conv2dGeometry&, const double*, const double*,
                                           double*);
template void conv2d_backward_weights<float>(const Conv2dGeometry&, const float*, const float*,
                                             float*, float*, void*);
template void conv2d_backward_weights<double>(const Conv2dGeometry&, const double*, const double*,
                                              double*, double*, void*);

}  // namespace cnnrt::cpu
