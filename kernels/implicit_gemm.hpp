#pragma once
// Convolution as implicit GEMM (docs/math.md, implicit GEMM): each pass is C[m][n] =
// sum_r A[m][r] * B[r][n] over matrices that are never built; these functions map a GEMM
// coordinate to the NCHW offset it reads or writes, or to -1 where it falls in the zero padding.
// Host and device code share them, so the CPU test's tiled loop (tests/implicit_gemm_test.cpp)
// walks the indices the tensor-core kernels do.
//
//   pass              M (rows)          N (columns)       R (reduction)     A        B       C
//   forward           n*out_h*out_w     k                 c*kh*kw           in       weight  out
//   backward-data     n*h*w             c                 k*kh*kw           dout     weight  din
//   backward-weights  k                 c*kh*kw           n*out_h*out_w     dout     in dweight
//
// Reduction indices over a filter run (channel, i, j) in the weight's [k, c, kh, kw] order; those
// over pixels run (image, y, x) in NCHW order. Sizes are int (a convolution whose GEMM dimensions
// pass 2^31 is refused by gemm_fits_int); offsets are 64-bit.
#include <cstdint>

#include "kernels/host_device.hpp"
#include "kernels/ops.hpp"

namespace cnnrt::igemm {

struct GemmShape {
  int m = 0, n = 0, r = 0;
};

// The tile one thread block computes: tile_m x tile_n outputs, tile_r reduction steps at a time.
struct GemmTile {
  int m = 64, n = 64, r = 32;
};

struct TileCounts {
  int m = 0, n = 0, r = 0;
};

// The tile of the WMMA TF32 forward kernel (kernels/cuda/conv_implicit_gemm.cu): 32 output pixels
// x 32 filters per block, 16 taps per step (two m16n16k8 steps).
inline constexpr int kTf32ConvTileM = 32, kTf32ConvTileN = 32, kTf32ConvTileR = 16;

CNNRT_HOST_DEVICE int ceil_div(int a, int b) {
  return (a + b - 1) / b;
}

CNNRT_HOST_DEVICE GemmShape forward_gemm(const Conv2dGeometry& g) {
  return {g.n * g.out_h * g.out_w, g.k, g.c * g.kh * g.kw};
}
CNNRT_HOST_DEVICE GemmShape backward_data_gemm(const Conv2dGeometry& g) {
  return {g.n * g.h * g.w, g.c, g.k * g.kh * g.kw};
}
CNNRT_HOST_DEVICE GemmShape backward_weights_gemm(const Conv2dGeometry& g) {
  return {g.k, g.c * g.kh * g.kw, g.n * g.out_h * g.out_w};
}

// Whether every GEMM dimension (and the tensors' element counts) of the three passes fits an int.
inline bool gemm_fits_int(const Conv2dGeometry& g) {
  constexpr std::int64_t kMax = 0x7FFFFFFF;
  const std::int64_t filter = std::int64_t(g.c) * g.kh * g.kw;
  return std::int64_t(g.n) * g.out_h * g.out_w <= kMax && std::int64_t(g.n) * g.h * g.w <= kMax &&
         filter <= kMax && std::int64_t(g.k) * g.kh * g.kw <= kMax;
}

// Tiles along each dimension, the last one partial when the size is not a multiple.
CNNRT_HOST_DEVICE TileCounts tile_counts(const GemmShape& s, const GemmTile& t) {
  return {ceil_div(s.m, t.m), ceil_div(s.n, t.n), ceil_div(s.r, t.r)};
}

// Tile `index` of size `tile` along a dimension of `size` covers [tile_begin, tile_end).
CNNRT_HOST_DEVICE int tile_begin(int index, int tile) {
  return index * tile;
}
CNNRT_HOST_DEVICE int tile_end(int index, int tile, int size) {
  const int end = (index + 1) * tile;
  return end < size ? end : size;
}

// Split-K: reduction tiles [begin, end) of `split` out of `splits`, in order; the partial sums are
// added in split order afterwards (deterministic, no atomics). Every tile lands in one split.
CNNRT_HOST_DEVICE int split_begin(int split, int splits, int r_tiles) {
  return int((std::int64_t(r_tiles) * split) / splits);
}
CNNRT_HOST_DEVICE int split_end(int split, int splits, int r_tiles) {
  return split_begin(split + 1, splits, r_tiles);
}

// index = (outer * rows + row) * cols + col, 0 <= row < rows, 0 <= col < cols: the three
// coordinates of a flat pixel or tap index.
struct Index3 {
  int outer = 0, row = 0, col = 0;
};

CNNRT_HOST_DEVICE Index3 split_index(int index, int rows, int cols) {
  Index3 s;
  const int plane = rows * cols;
  s.outer = index / plane;
  const int rest = index - s.outer * plane;
  s.row = rest / cols;
  s.col = rest - s.row * cols;
  return s;
}

// An output pixel (image, oy, ox) of the flat index p in [0, n*out_h*out_w), with the input
// corner (iy0, ix0) its window starts at (negative inside the top/left padding). Forward rows and
// backward-weights reduction steps are output pixels.
struct OutPixel {
  int img = 0, oy = 0, ox = 0;
  int iy0 = 0, ix0 = 0;
};

CNNRT_HOST_DEVICE OutPixel out_pixel(const Conv2dGeometry& g, int p) {
  const Index3 s = split_index(p, g.out_h, g.out_w);
  return {s.outer, s.row, s.col, s.row * g.stride_h - g.pad_top, s.col * g.stride_w - g.pad_left};
}

// An input pixel (image, y, x) of the flat index p in [0, n*h*w): the rows of backward-data.
struct InPixel {
  int img = 0, y = 0, x = 0;
};

CNNRT_HOST_DEVICE InPixel in_pixel(const Conv2dGeometry& g, int p) {
  const Index3 s = split_index(p, g.h, g.w);
  return {s.outer, s.row, s.col};
}

// A filter tap (channel, i, j) of the flat index t in [0, channels*kh*kw); `channel` is the input
// channel for forward and backward-weights and the output channel for backward-data.
struct Tap {
  int channel = 0, i = 0, j = 0;
};

CNNRT_HOST_DEVICE Tap filter_tap(const Conv2dGeometry& g, int t) {
  const Index3 s = split_index(t, g.kh, g.kw);
  return {s.outer, s.row, s.col};
}

CNNRT_HOST_DEVICE std::int64_t nchw_offset(int img, int channel, int y, int x, int channels,
                                           int height, int width) {
  return ((std::int64_t(img) * channels + channel) * height + y) * std::int64_t(width) + x;
}

// The input value output pixel `o` reads at tap (c, i, j): its offset in in [n, c, h, w], or -1 in
// the padding.
CNNRT_HOST_DEVICE std::int64_t input_offset(const Conv2dGeometry& g, const OutPixel& o,
                                            const Tap& t) {
  const int y = o.iy0 + t.i, x = o.ix0 + t.j;
  if (y < 0 || y >= g.h || x < 0 || x >= g.w) return -1;
  return nchw_offset(o.img, t.channel, y, x, g.c, g.h, g.w);
}

// Forward. A[m][r]: in [n, c, h, w] at row o = out_pixel(m), r = filter_tap(r); -1 in the padding.
CNNRT_HOST_DEVICE std::int64_t forward_a(const Conv2dGeometry& g, const OutPixel& o, const Tap& t) {
  return input_offset(g, o, t);
}
// B[r][n]: weight [k, c, kh, kw] of filter n at flat tap r.
CNNRT_HOST_DEVICE std::int64_t forward_b(const Conv2dGeometry& g, int r, int n) {
  return std::int64_t(n) * (g.c * g.kh * g.kw) + r;
}
// C[m][n]: out [n, k, out_h, out_w].
CNNRT_HOST_DEVICE std::int64_t forward_c(const Conv2dGeometry& g, const OutPixel& o, int n) {
  return nchw_offset(o.img, n, o.oy, o.ox, g.k, g.out_h, g.out_w);
}

// Backward-data. A[m][r]: dout [n, k, out_h, out_w] of the output pixel whose window reads input
// pixel q at tap r = (k, i, j): oy = (y + pad_top - i) / stride_h when that divides exactly and
// lands inside the output (likewise ox); -1 otherwise (no such output: the term is zero).
CNNRT_HOST_DEVICE std::int64_t backward_data_a(const Conv2dGeometry& g, const InPixel& q,
                                               const Tap& t) {
  const int sy = q.y + g.pad_top - t.i, sx = q.x + g.pad_left - t.j;
  if (sy < 0 || sx < 0) return -1;
  const int oy = sy / g.stride_h, ox = sx / g.stride_w;
  if (oy * g.stride_h != sy || ox * g.stride_w != sx || oy >= g.out_h || ox >= g.out_w) return -1;
  return nchw_offset(q.img, t.channel, oy, ox, g.k, g.out_h, g.out_w);
}
// B[r][n]: weight [k, c, kh, kw] at tap r = (k, i, j), input channel n.
CNNRT_HOST_DEVICE std::int64_t backward_data_b(const Conv2dGeometry& g, const Tap& t, int n) {
  return ((std::int64_t(t.channel) * g.c + n) * g.kh + t.i) * g.kw + t.j;
}
// C[m][n]: din [n, c, h, w].
CNNRT_HOST_DEVICE std::int64_t backward_data_c(const Conv2dGeometry& g, const InPixel& q, int n) {
  return nchw_offset(q.img, n, q.y, q.x, g.c, g.h, g.w);
}

// Backward-weights. A[m][r]: dout [n, k, out_h, out_w] of filter m at output pixel o =
// out_pixel(r). (db[m] is the row sum of A.)
CNNRT_HOST_DEVICE std::int64_t backward_weights_a(const Conv2dGeometry& g, int m,
                                                  const OutPixel& o) {
  return nchw_offset(o.img, m, o.oy, o.ox, g.k, g.out_h, g.out_w);
}
// B[r][n]: in [n, c, h, w] read by output pixel o at tap n = filter_tap(n); -1 in the padding.
CNNRT_HOST_DEVICE std::int64_t backward_weights_b(const Conv2dGeometry& g, const OutPixel& o,
                                                  const Tap& t) {
  return input_offset(g, o, t);
}
// C[m][n]: dweight [k, c, kh, kw] of filter m at flat tap n.
CNNRT_HOST_DEVICE std::int64_t backward_weights_c(const Conv2dGeometry& g, int m, int n) {
  return std::int64_t(m) * (g.c * g.kh * g.kw) + n;
}

}  // namespace cnnrt::igemm
