// The fast CPU convolution (float): im2col + oneDNN sgemm, one sample at a time, so each
// sample's unfolded input stays in cache between the unfold and the multiply. The weight gradient
// unfolds several samples with small output planes side by side into one GEMM: its sum over
// output positions is then long enough to amortise a pass over the whole gradient matrix.
#include "kernels/cpu/conv_fast.hpp"

#include <algorithm>
#include <cstddef>
#ifdef __SSE2__
#include <emmintrin.h>  // x86-64's baseline
#endif

#include "kernels/cpu/activation_fast.hpp"
#include "kernels/cpu/sgemm.hpp"

namespace cnnrt::cpu::fast {

namespace {

// The weight gradient's samples share a GEMM until it sums over this many output positions: LeNet's
// second convolution (100 a sample) and AlexNet's last three (169) sum too few one at a time.
constexpr std::size_t kGroupColumns = 1024;
// ... as long as the group's unfolding stays under 16 MiB a thread.
constexpr std::size_t kMaxGroupColFloats = std::size_t(1) << 22;

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

// The input extent the windows read, padding included: [c, padded_h, padded_w].
int padded_h(const Conv2dGeometry& g) {
  return (g.out_h - 1) * g.stride_h + g.kh;
}
int padded_w(const Conv2dGeometry& g) {
  return (g.out_w - 1) * g.stride_w + g.kw;
}

// Windows reaching into the padding (or past the input's last row or column) read a zero-padded
// copy of the sample; the others read the sample where it lies. Either way the unfolding is then
// a plain copy of rows, with no bounds to test per tap.
bool reads_padded_copy(const Conv2dGeometry& g) {
  return g.pad_top > 0 || g.pad_left > 0 || padded_h(g) > g.h || padded_w(g) > g.w;
}
std::size_t padded_floats(const Conv2dGeometry& g) {
  return reads_padded_copy(g) ? std::size_t(g.c) * padded_h(g) * padded_w(g) : 0;
}

// The sample as the windows see it: its first element, row pitch and plane pitch.
struct Source {
  float* data;
  int pitch, plane_pitch;
};

// Calls fn(input_row, padded_row, cols) for each input row the windows read: the offsets of its
// first read element in the sample [c, h, w] and in the padded copy, and how many are read.
template <typename Fn>
void for_each_inside_row(const Conv2dGeometry& g, Fn&& fn) {
  const int ph = padded_h(g), pw = padded_w(g);
  const int rows = std::min(g.h, ph - g.pad_top), cols = std::min(g.w, pw - g.pad_left);
  for (int c = 0; c < g.c; ++c)
    for (int y = 0; y < rows; ++y)
      fn((std::size_t(c) * g.h + y) * g.w, (std::size_t(c) * ph + y + g.pad_top) * pw + g.pad_left,
         cols);
}

// One sample in: [c, h, w] -> the padded layout, zero outside the input (padded: see above).
Source padded_source(const Conv2dGeometry& g, const float* in, float* padded) {
  if (!reads_padded_copy(g)) return {const_cast<float*>(in), g.w, g.h * g.w};
  std::fill(padded, padded + padded_floats(g), 0.0f);
  for_each_inside_row(g, [&](std::size_t from, std::size_t to, int cols) {
    std::copy(in + from, in + from + cols, padded + to);
  });
  return {padded, padded_w(g), padded_h(g) * padded_w(g)};
}

// to[0, count) = from[0, count). Rows of LeNet's unfoldings are 10 to 28 floats: whole vectors,
// the last one overlapping the one before, instead of a scalar tail.
inline void copy_row(const float* from, int count, float* to) {
#ifdef __SSE2__
  if (count >= 4) {
    int i = 0;
    for (; i + 4 <= count; i += 4) _mm_storeu_ps(to + i, _mm_loadu_ps(from + i));
    if (i < count) _mm_storeu_ps(to + count - 4, _mm_loadu_ps(from + count - 4));
    return;
  }
#endif
  for (int i = 0; i < count; ++i) to[i] = from[i];
}

// Calls fn(row, a) for every kernel tap (c, i, j) and output row y, in the order of the unfolded
// buffer's rows: row = col row (c, i, j) at output row y, a = the source element under the tap
// at output (y, 0); x moves it by stride_w. Tap (c, i, j)'s row starts `pitch` floats after the
// one before (a group's columns).
template <typename ColFloat, typename Fn>
void for_each_tap_row(const Conv2dGeometry& g, const Source& src, ColFloat* col, std::size_t pitch,
                      Fn&& fn) {
  ColFloat* tap = col;
  for (int c = 0; c < g.c; ++c)
    for (int i = 0; i < g.kh; ++i)
      for (int j = 0; j < g.kw; ++j, tap += pitch) {
        float* a = src.data + std::size_t(c) * src.plane_pitch + std::size_t(i) * src.pitch + j;
        ColFloat* row = tap;
        for (int y = 0; y < g.out_h; ++y, row += g.out_w, a += std::size_t(g.stride_h) * src.pitch)
          fn(row, a);
      }
}

// The source -> col: [c * kh * kw, out_h * out_w] with rows `pitch` apart, row (c, i, j) holding
// the input under kernel tap (i, j) at every output position.
void im2col(const Conv2dGeometry& g, const Source& src, float* col, std::size_t pitch) {
  const int out_w = g.out_w, stride = g.stride_w;
  if (stride == 1)
    for_each_tap_row(g, src, col, pitch, [&](float* r, const float* a) { copy_row(a, out_w, r); });
  else
    for_each_tap_row(g, src, col, pitch, [&](float* r, const float* a) {
      for (int x = 0; x < out_w; ++x) r[x] = a[x * stride];
    });
}

// col: [c * kh * kw, out_h * out_w], rows `pitch` apart -> din: [c, h, w] (one sample,
// overwritten): the transpose of im2col, each input element summing the taps that read it (in the
// padded copy, when the windows read one, whose inside is then din).
void col2im(const Conv2dGeometry& g, const float* col, std::size_t pitch, float* din,
            float* padded) {
  const bool copy = reads_padded_copy(g);
  const Source dst =
      copy ? Source{padded, padded_w(g), padded_h(g) * padded_w(g)} : Source{din, g.w, g.h * g.w};
  std::fill(dst.data, dst.data + (copy ? padded_floats(g) : std::size_t(g.c) * plane_in(g)), 0.0f);
  const int out_w = g.out_w, stride = g.stride_w;
  if (stride == 1)
    for_each_tap_row(g, dst, col, pitch, [&](const float* r, float* a) {
      for (int x = 0; x < out_w; ++x) a[x] += r[x];
    });
  else
    for_each_tap_row(g, dst, col, pitch, [&](const float* r, float* a) {
      for (int x = 0; x < out_w; ++x) a[x * stride] += r[x];
    });
  if (!copy) return;
  // Input elements no window reads (rows or columns past the padded extent) get zero.
  std::fill(din, din + std::size_t(g.c) * plane_in(g), 0.0f);
  for_each_inside_row(g, [&](std::size_t to, std::size_t from, int cols) {
    std::copy(padded + from, padded + from + cols, din + to);
  });
}

// One sample's planes [k, plane] -> its columns in a group's matrix [k, group * plane] (the
// sample's columns start at `offset`, rows `pitch` apart).
void planes_to_columns(const Conv2dGeometry& g, const float* planes, float* matrix,
                       std::size_t offset, std::size_t pitch) {
  const std::size_t plane = plane_out(g);
  for (int k = 0; k < g.k; ++k)
    std::copy(planes + k * plane, planes + (k + 1) * plane, matrix + k * pitch + offset);
}

// A thread's buffer (conv2d_col_floats): the group's unfolded samples [c * kh * kw, group *
// plane], then the padded copy of one sample, then (groups of several) the group's output
// gradients as one matrix [k, group * plane].
struct GroupBuffers {
  float *col, *padded, *matrix;
};
GroupBuffers group_buffers(const Conv2dGeometry& g, int group, float* col) {
  if (reads_input_as_is(g)) return {nullptr, nullptr, nullptr};  // no buffer: groups of one
  float* padded = col + window(g) * plane_out(g) * std::size_t(group);
  return {col, padded, padded + padded_floats(g)};
}

}  // namespace

int conv2d_samples_per_gemm(const Conv2dGeometry& g) {
  if (reads_input_as_is(g) || g.n <= 1) return 1;
  const std::size_t plane = plane_out(g);
  const std::size_t wanted = (kGroupColumns + plane - 1) / plane;
  const std::size_t fits = std::max<std::size_t>(1, kMaxGroupColFloats / (window(g) * plane));
  return int(std::min({wanted, fits, std::size_t(g.n)}));
}

std::size_t conv2d_col_floats(const Conv2dGeometry& g) {
  if (reads_input_as_is(g)) return 0;
  const std::size_t group = std::size_t(conv2d_samples_per_gemm(g));
  const std::size_t matrix = group > 1 ? std::size_t(g.k) * group * plane_out(g) : 0;
  return window(g) * plane_out(g) * group + padded_floats(g) + matrix;
}

// out[k, p] = b[k] + sum_r W[k, r] col[r, p] per sample: [k, c*kh*kw] x [c*kh*kw, out_h*out_w]
void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, const FusedActivation<float>& fused,
                    float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  const GroupBuffers b = group_buffers(g, 1, col);
  for (int n = 0; n < g.n; ++n) {
    const float* x = in + std::size_t(n) * sample_in;
    float* z = out + std::size_t(n) * sample_out;
    for (int k = 0; k < g.k; ++k)
      std::fill(z + std::size_t(k) * plane, z + std::size_t(k + 1) * plane, bias ? bias[k] : 0.0f);
    const float* unfolded = x;
    if (!reads_input_as_is(g))
      im2col(g, padded_source(g, x, b.padded), b.col, plane), unfolded = b.col;
    sgemm(Op::plain, Op::plain, g.k, int(plane), int(r), 1.0f, weight, int(r), unfolded, int(plane),
          1.0f, z, int(plane));
    fused_activation_forward(fused, std::size_t(n) * sample_out, sample_out, out);
  }
}

// dcol[r, p] = sum_k W[k, r] dout[k, p] per sample, folded back onto the input (col2im)
void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  const GroupBuffers b = group_buffers(g, 1, col);
  for (int n = 0; n < g.n; ++n) {
    float* da = din + std::size_t(n) * sample_in;
    float* target = reads_input_as_is(g) ? da : b.col;
    sgemm(Op::transposed, Op::plain, int(r), int(plane), g.k, 1.0f, weight, int(r),
          dout + std::size_t(n) * sample_out, int(plane), 0.0f, target, int(plane));
    if (!reads_input_as_is(g)) col2im(g, b.col, plane, da, b.padded);
  }
}

// dW[k, r] = sum_{n, p} dout[n, k, p] col_n[r, p];  db[k] = sum_{n, p} dout[n, k, p]
void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, float* col) {
  const std::size_t plane = plane_out(g), r = window(g);
  const std::size_t sample_in = std::size_t(g.c) * plane_in(g), sample_out = g.k * plane;
  std::fill(dweight, dweight + g.weight_size(), 0.0f);
  std::fill(dbias, dbias + g.k, 0.0f);
  const int group = conv2d_samples_per_gemm(g);
  for (int first = 0; first < g.n; first += group) {
    const int count = std::min(group, g.n - first);  // the last group may be shorter
    const std::size_t columns = std::size_t(count) * plane;
    const GroupBuffers b = group_buffers(g, count, col);
    const float* x = in + std::size_t(first) * sample_in;
    const float* dz = dout + std::size_t(first) * sample_out;
    const float* unfolded = x;
    if (!reads_input_as_is(g)) {
      for (int s = 0; s < count; ++s)
        im2col(g, padded_source(g, x + s * sample_in, b.padded), b.col + s * plane, columns);
      unfolded = b.col;
    }
    if (count > 1) {
      for (int s = 0; s < count; ++s)
        planes_to_columns(g, dz + s * sample_out, b.matrix, s * plane, columns);
    }
    sgemm(Op::plain, Op::transposed, g.k, int(r), int(columns), 1.0f, count > 1 ? b.matrix : dz,
          int(columns), unfolded, int(columns), 1.0f, dweight, int(r));
    for (int s = 0; s < count; ++s)
      for (int k = 0; k < g.k; ++k) {
        const float* row = dz + s * sample_out + std::size_t(k) * plane;
        float sum = 0.0f;
        for (std::size_t p = 0; p < plane; ++p) sum += row[p];
        dbias[k] += sum;
      }
  }
}

}  // namespace cnnrt::cpu::fast
