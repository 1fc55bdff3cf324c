// CPU reference convolution (SPEC.md section 1), written as the formulas read.
#include "kernels/cpu/conv.hpp"

#include <cstddef>

#include "kernels/cpu/activation.hpp"

namespace cnnrt::cpu {

namespace {

// Flat index of [n, c, y, x] in an NCHW tensor of `channels` x `height` x `width` planes.
inline std::size_t nchw(int n, int c, int y, int x, int channels, int height, int width) {
  return ((std::size_t(n) * channels + c) * height + y) * std::size_t(width) + x;
}

}  // namespace

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out: [n, k, out_h, out_w]
// Z[n,k,y,x] = b[k] + sum_{c,i,j} A[n, c, y*s + i - pad_top, x*s + j - pad_left] * W[k,c,i,j]
template <typename T>
void conv2d_forward(const Conv2dGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                    Activation fused, T leaky_slope) {
  for (int n = 0; n < g.n; ++n)
    for (int k = 0; k < g.k; ++k)
      for (int y = 0; y < g.out_h; ++y)
        for (int x = 0; x < g.out_w; ++x) {
          T sum = bias ? bias[k] : T(0);
          for (int c = 0; c < g.c; ++c)
            for (int i = 0; i < g.kh; ++i) {
              const int in_y = y * g.stride_h + i - g.pad_top;
              if (in_y < 0 || in_y >= g.h) continue;  // padding reads zero
              for (int j = 0; j < g.kw; ++j) {
                const int in_x = x * g.stride_w + j - g.pad_left;
                if (in_x < 0 || in_x >= g.w) continue;
                sum += in[nchw(n, c, in_y, in_x, g.c, g.h, g.w)] *
                       weight[nchw(k, c, i, j, g.c, g.kh, g.kw)];
              }
            }
          out[nchw(n, k, y, x, g.k, g.out_h, g.out_w)] = activate(fused, leaky_slope, sum);
        }
}

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w]
//
// The lecture's rule is DA = dilate(DZ, s), zero-padded to "full", cross-correlated with
// rot180(W). Written out, the dilated DZ is non-zero only at positions oy*s, and correlating with
// the flipped kernel pairs kernel tap (i, j) with the output (oy, ox) whose window read this input:
//   DA[n,c,y,x] = sum_{k,i,j} DZ[n,k,oy,ox] * W[k,c,i,j]
//                 where oy = (y + pad_top - i) / s, ox = (x + pad_left - j) / s
//                 exactly divisible and inside [0, out_h) x [0, out_w).
// We compute that direct gather: it is the same sum without materialising the dilated, padded
// DZ, and it handles any stride and asymmetric (same) padding without special cases.
template <typename T>
void conv2d_backward_data(const Conv2dGeometry& g, const T* dout, const T* weight, T* din) {
  for (int n = 0; n < g.n; ++n)
    for (int c = 0; c < g.c; ++c)
      for (int y = 0; y < g.h; ++y)
        for (int x = 0; x < g.w; ++x) {
          T sum = T(0);
          for (int k = 0; k < g.k; ++k)
            for (int i = 0; i < g.kh; ++i) {
              const int dilated_y = y + g.pad_top - i;  // row in the stride-dilated DZ
              if (dilated_y < 0 || dilated_y % g.stride_h != 0) continue;  // a dilation zero
              const int oy = dilated_y / g.stride_h;
              if (oy >= g.out_h) continue;
              for (int j = 0; j < g.kw; ++j) {
                const int dilated_x = x + g.pad_left - j;
                if (dilated_x < 0 || dilated_x % g.stride_w != 0) continue;
                const int ox = dilated_x / g.stride_w;
                if (ox >= g.out_w) continue;
                sum += dout[nchw(n, k, oy, ox, g.k, g.out_h, g.out_w)] *
                       weight[nchw(k, c, i, j, g.c, g.kh, g.kw)];
              }
            }
          din[nchw(n, c, y, x, g.c, g.h, g.w)] = sum;
        }
}

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw], dbias: [k] or nullptr
// DW[k,c,i,j] = sum_{n,y,x} A[n, c, y*s + i - pad_top, x*s + j - pad_left] * DZ[n,k,y,x]
// db[k]       = sum_{n,y,x} DZ[n,k,y,x]
template <typename T>
void conv2d_backward_weights(const Conv2dGeometry& g, const T* in, const T* dout, T* dweight,
                             T* dbias) {
  for (int k = 0; k < g.k; ++k)
    for (int c = 0; c < g.c; ++c)
      for (int i = 0; i < g.kh; ++i)
        for (int j = 0; j < g.kw; ++j) {
          T sum = T(0);
          for (int n = 0; n < g.n; ++n)
            for (int y = 0; y < g.out_h; ++y) {
              const int in_y = y * g.stride_h + i - g.pad_top;
              if (in_y < 0 || in_y >= g.h) continue;
              for (int x = 0; x < g.out_w; ++x) {
                const int in_x = x * g.stride_w + j - g.pad_left;
                if (in_x < 0 || in_x >= g.w) continue;
                sum += in[nchw(n, c, in_y, in_x, g.c, g.h, g.w)] *
                       dout[nchw(n, k, y, x, g.k, g.out_h, g.out_w)];
              }
            }
          dweight[nchw(k, c, i, j, g.c, g.kh, g.kw)] = sum;
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
                                    float*, Activation, float);
template void conv2d_forward<double>(const Conv2dGeometry&, const double*, const double*,
                                     const double*, double*, Activation, double);
template void conv2d_backward_data<float>(const Conv2dGeometry&, const float*, const float*,
                                          float*);
template void conv2d_backward_data<double>(const Conv2dGeometry&, const double*, const double*,
                                           double*);
template void conv2d_backward_weights<float>(const Conv2dGeometry&, const float*, const float*,
                                             float*, float*);
template void conv2d_backward_weights<double>(const Conv2dGeometry&, const double*, const double*,
                                              double*, double*);

}  // namespace cnnrt::cpu
