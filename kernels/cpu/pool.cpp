// CPU reference pooling (docs/math.md section 5), no padding, windows may overlap.
#include "kernels/cpu/pool.hpp"

#include <cstddef>

#include "kernels/cpu/activation.hpp"

namespace cnnrt::cpu {

// in: [n, c, h, w] -> out, argmax: [n, c, out_h, out_w]
template <typename T>
void max_pool_forward(const Pool2dGeometry& g, const T* in, T* out, std::int32_t* argmax) {
  const std::size_t in_plane = std::size_t(g.h) * g.w;
  const std::size_t out_plane = std::size_t(g.out_h) * g.out_w;
  for (std::size_t plane = 0; plane < std::size_t(g.n) * g.c; ++plane) {
    const T* src = in + plane * in_plane;
    for (int y = 0; y < g.out_h; ++y)
      for (int x = 0; x < g.out_w; ++x) {
        const int top = y * g.stride_h, left = x * g.stride_w;
        int best = top * g.w + left;
        T best_value = src[best];
        for (int i = 0; i < g.win_h; ++i)
          for (int j = 0; j < g.win_w; ++j) {
            const int at = (top + i) * g.w + (left + j);
            if (src[at] > best_value) {  // strict: ties keep the first, row-major
              best = at;
              best_value = src[at];
            }
          }
        const std::size_t o = plane * out_plane + std::size_t(y) * g.out_w + x;
        out[o] = best_value;
        argmax[o] = best;
      }
  }
}

// dout, argmax: [n, c, out_h, out_w], fused.z, fused.a (when fused.z is set): [n, c, h, w]
// -> din: [n, c, h, w]. A fused activation's backward runs on each plane once every window has
// added to it.
template <typename T>
void max_pool_backward(const Pool2dGeometry& g, const T* dout, const std::int32_t* argmax, T* din,
                       const FusedActivationGrad<T>& fused) {
  const std::size_t in_plane = std::size_t(g.h) * g.w;
  const std::size_t out_plane = std::size_t(g.out_h) * g.out_w;
  for (std::size_t plane = 0; plane < std::size_t(g.n) * g.c; ++plane) {
    // Zeroed plane by plane, so the plane is still in cache for the sums and the activation.
    for (std::size_t i = 0; i < in_plane; ++i) din[plane * in_plane + i] = T(0);
    for (std::size_t o = 0; o < out_plane; ++o)  // overlapping windows may pick the same input
      din[plane * in_plane + argmax[plane * out_plane + o]] += dout[plane * out_plane + o];
    fused_activation_backward(fused, plane * in_plane, in_plane, din);
  }
}

// in: [n, c, h, w] -> out: [n, c, out_h, out_w]
template <typename T>
void avg_pool_forward(const Pool2dGeometry& g, const T* in, T* out) {
  const std::size_t in_plane = std::size_t(g.h) * g.w;
  const std::size_t out_plane = std::size_t(g.out_h) * g.out_w;
  const T window_size = T(g.win_h * g.win_w);
  for (std::size_t plane = 0; plane < std::size_t(g.n) * g.c; ++plane)
    for (int y = 0; y < g.out_h; ++y)
      for (int x = 0; x < g.out_w; ++x) {
        T sum = T(0);
        for (int i = 0; i < g.win_h; ++i)
          for (int j = 0; j < g.win_w; ++j)
            sum +=
                in[plane * in_plane + std::size_t(y * g.stride_h + i) * g.w + (x * g.stride_w + j)];
        out[plane * out_plane + std::size_t(y) * g.out_w + x] = sum / window_size;
      }
}

// dout: [n, c, out_h, out_w], fused.z, fused.a (when fused.z is set): [n, c, h, w]
// -> din: [n, c, h, w], the fused activation as in max_pool_backward
template <typename T>
void avg_pool_backward(const Pool2dGeometry& g, const T* dout, T* din,
                       const FusedActivationGrad<T>& fused) {
  const std::size_t in_plane = std::size_t(g.h) * g.w;
  const std::size_t out_plane = std::size_t(g.out_h) * g.out_w;
  const T window_size = T(g.win_h * g.win_w);
  for (std::size_t plane = 0; plane < std::size_t(g.n) * g.c; ++plane) {
    for (std::size_t i = 0; i < in_plane; ++i) din[plane * in_plane + i] = T(0);
    for (int y = 0; y < g.out_h; ++y)
      for (int x = 0; x < g.out_w; ++x) {
        const T share = dout[plane * out_plane + std::size_t(y) * g.out_w + x] / window_size;
        for (int i = 0; i < g.win_h; ++i)
          for (int j = 0; j < g.win_w; ++j)
            din[plane * in_plane + std::size_t(y * g.stride_h + i) * g.w + (x * g.stride_w + j)] +=
                share;
      }
    fused_activation_backward(fused, plane * in_plane, in_plane, din);
  }
}

template void max_pool_forward<float>(const Pool2dGeometry&, const float*, float*, std::int32_t*);
template void max_pool_forward<double>(const Pool2dGeometry&, const double*, double*,
                                       std::int32_t*);
template void max_pool_backward<float>(const Pool2dGeometry&, const float*, const std::int32_t*,
                                       float*, const FusedActivationGrad<float>&);
template void max_pool_backward<double>(const Pool2dGeometry&, const double*, const std::int32_t*,
                                        double*, const FusedActivationGrad<double>&);
template void avg_pool_forward<float>(const Pool2dGeometry&, const float*, float*);
template void avg_pool_forward<double>(const Pool2dGeometry&, const double*, double*);
template void avg_pool_backward<float>(const Pool2dGeometry&, const float*, float*,
                                       const FusedActivationGrad<float>&);
template void avg_pool_backward<double>(const Pool2dGeometry&, const double*, double*,
                                        const FusedActivationGrad<double>&);

}  // namespace cnnrt::cpu
