// The fast CPU pooling: the 2x2-by-2 case as straight-line code over pairs of input rows; other
// max pooling windows vectorised across each output row.
#include "kernels/cpu/pool_fast.hpp"

#include <algorithm>
#include <cstddef>
#ifdef __SSE2__
#include <emmintrin.h>  // part of every x86-64 processor: no run-time choice needed
#endif

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/pool.hpp"

namespace cnnrt::cpu::fast {

namespace {

std::size_t plane_in(const Pool2dGeometry& g) {
  return std::size_t(g.h) * g.w;
}
std::size_t plane_out(const Pool2dGeometry& g) {
  return std::size_t(g.out_h) * g.out_w;
}
std::size_t planes(const Pool2dGeometry& g) {
  return std::size_t(g.n) * g.c;
}

// Input rows and columns no window covers (an odd h or w): their gradient is zero.
void zero_uncovered(const Pool2dGeometry& g, float* plane) {
  for (int y = 0; y < 2 * g.out_h; ++y)
    std::fill(plane + std::size_t(y) * g.w + 2 * g.out_w, plane + std::size_t(y + 1) * g.w, 0.0f);
  std::fill(plane + std::size_t(2 * g.out_h) * g.w, plane + plane_in(g), 0.0f);
}

#ifdef __SSE2__
// Where v > best (strict, so ties and NaN keep the earlier input): best = v, at = offset.
void take_if_greater(__m128 v, __m128i offset, __m128& best, __m128i& at) {
  const __m128 greater = _mm_cmpgt_ps(v, best);
  best = _mm_or_ps(_mm_and_ps(greater, v), _mm_andnot_ps(greater, best));
  const __m128i mask = _mm_castps_si128(greater);
  at = _mm_or_si128(_mm_and_si128(mask, offset), _mm_andnot_si128(mask, at));
}

// v where picked == index, else +0
__m128 where_equal(__m128i picked, __m128i index, __m128 v) {
  return _mm_and_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(picked, index)), v);
}
#endif

// Any other max pooling window (AlexNet's 3x3 by 2): each output row's windows several at a time
// where the stride is 1 or 2, taps in row-major order with strict comparisons as the reference.
// in: [n, c, h, w] -> out, argmax: [n, c, out_h, out_w]
void max_pool_forward_windows(const Pool2dGeometry& g, const float* in, float* out,
                              std::int32_t* argmax) {
  const int w = g.w, out_w = g.out_w, sx = g.stride_w;
  for (std::size_t p = 0; p < planes(g); ++p)
    for (int y = 0; y < g.out_h; ++y) {
      const int top = y * g.stride_h * w;
      const float* src = in + p * plane_in(g);
      float* o = out + p * plane_out(g) + std::size_t(y) * out_w;
      std::int32_t* am = argmax + p * plane_out(g) + std::size_t(y) * out_w;
      int x = 0;
#ifdef __SSE2__
      // Four windows a vector, lane l at column (x + l) * stride. Stride 2 reads eight columns
      // and keeps the even ones, so the last vector stops short of the row's end.
      const auto vector_fits = [&](int at) {
        return at + 4 <= out_w && (sx == 1 || (at + 4) * sx + g.win_w - 1 <= w);
      };
      // The four lanes' inputs under one tap.
      const auto lanes_at = [sx](const float* tap) {
        return sx == 1 ? _mm_loadu_ps(tap)
                       : _mm_shuffle_ps(_mm_loadu_ps(tap), _mm_loadu_ps(tap + 4),
                                        _MM_SHUFFLE(2, 0, 2, 0));
      };
      if (sx == 1 || sx == 2)
        for (; vector_fits(x); x += 4) {
          const int left = top + x * sx;
          const __m128i lanes = _mm_set_epi32(left + 3 * sx, left + 2 * sx, left + sx, left);
          __m128 best = lanes_at(src + left);
          __m128i at = lanes;
          for (int i = 0; i < g.win_h; ++i)
            for (int j = i == 0 ? 1 : 0; j < g.win_w; ++j)
              take_if_greater(lanes_at(src + left + i * w + j),
                              _mm_add_epi32(lanes, _mm_set1_epi32(i * w + j)), best, at);
          _mm_storeu_ps(o + x, best);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(am + x), at);
        }
#endif
      for (; x < out_w; ++x) {
        const int left = top + x * sx;
        int best = left;
        for (int i = 0; i < g.win_h; ++i)
          for (int j = 0; j < g.win_w; ++j) {
            const int tap = left + i * w + j;
            best = src[tap] > src[best] ? tap : best;  // strict: ties keep the first
          }
        o[x] = src[best];
        am[x] = best;
      }
    }
}

}  // namespace

bool pool2d_is_2x2_by_2(const Pool2dGeometry& g) {
  return g.win_h == 2 && g.win_w == 2 && g.stride_h == 2 && g.stride_w == 2;
}

void max_pool_forward(const Pool2dGeometry& g, const float* in, float* out, std::int32_t* argmax) {
  if (!pool2d_is_2x2_by_2(g)) return max_pool_forward_windows(g, in, out, argmax);
  const int w = g.w, out_w = g.out_w;
  for (std::size_t p = 0; p < planes(g); ++p)
    for (int y = 0; y < g.out_h; ++y) {
      const int top = 2 * y * w;
      const float* r0 = in + p * plane_in(g) + top;
      const float* r1 = r0 + w;
      float* o = out + p * plane_out(g) + std::size_t(y) * out_w;
      std::int32_t* am = argmax + p * plane_out(g) + std::size_t(y) * out_w;
      int x = 0;
#ifdef __SSE2__
      // Four windows at a time: the window's four inputs deinterleaved from two loads per row.
      const __m128i one = _mm_set1_epi32(1), below = _mm_set1_epi32(w),
                    below_right = _mm_set1_epi32(w + 1);
      for (; x + 4 <= out_w; x += 4) {
        const __m128 r0_lo = _mm_loadu_ps(r0 + 2 * x), r0_hi = _mm_loadu_ps(r0 + 2 * x + 4);
        const __m128 r1_lo = _mm_loadu_ps(r1 + 2 * x), r1_hi = _mm_loadu_ps(r1 + 2 * x + 4);
        const __m128 a = _mm_shuffle_ps(r0_lo, r0_hi, _MM_SHUFFLE(2, 0, 2, 0));
        const __m128 b = _mm_shuffle_ps(r0_lo, r0_hi, _MM_SHUFFLE(3, 1, 3, 1));
        const __m128 c = _mm_shuffle_ps(r1_lo, r1_hi, _MM_SHUFFLE(2, 0, 2, 0));
        const __m128 d = _mm_shuffle_ps(r1_lo, r1_hi, _MM_SHUFFLE(3, 1, 3, 1));
        __m128 best = a;
        __m128i at = _mm_setzero_si128();
        take_if_greater(b, one, best, at);
        take_if_greater(c, below, best, at);
        take_if_greater(d, below_right, best, at);
        _mm_storeu_ps(o + x, best);
        const __m128i first =
            _mm_set_epi32(top + 2 * x + 6, top + 2 * x + 4, top + 2 * x + 2, top + 2 * x);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(am + x), _mm_add_epi32(first, at));
      }
#endif
      for (; x < out_w; ++x) {
        // Strict comparisons in row-major order: ties keep the first, as the reference does.
        float best = r0[2 * x];
        int at = 0;
        if (r0[2 * x + 1] > best) best = r0[2 * x + 1], at = 1;
        if (r1[2 * x] > best) best = r1[2 * x], at = w;
        if (r1[2 * x + 1] > best) best = r1[2 * x + 1], at = w + 1;
        o[x] = best;
        am[x] = top + 2 * x + at;
      }
    }
}

void max_pool_backward(const Pool2dGeometry& g, const float* dout, const std::int32_t* argmax,
                       float* din, const FusedActivationGrad<float>& fused) {
  if (!pool2d_is_2x2_by_2(g)) return cpu::max_pool_backward(g, dout, argmax, din, fused);
  for (std::size_t p = 0; p < planes(g); ++p) {
    float* plane = din + p * plane_in(g);
    // Windows do not overlap: every covered input is written once, its window's gradient where
    // it was the maximum, else zero. `0 + d` as the reference's sum into zero (-0 becomes +0).
    for (int y = 0; y < g.out_h; ++y) {
      const int top = 2 * y * g.w;
      float* r0 = plane + top;
      float* r1 = r0 + g.w;
      const float* d = dout + p * plane_out(g) + std::size_t(y) * g.out_w;
      const std::int32_t* am = argmax + p * plane_out(g) + std::size_t(y) * g.out_w;
      int x = 0;
#ifdef __SSE2__
      const __m128i below = _mm_set1_epi32(g.w);
      for (; x + 4 <= g.out_w; x += 4) {
        const __m128 v = _mm_add_ps(_mm_setzero_ps(), _mm_loadu_ps(d + x));
        const __m128i picked = _mm_loadu_si128(reinterpret_cast<const __m128i*>(am + x));
        const __m128i first =
            _mm_set_epi32(top + 2 * x + 6, top + 2 * x + 4, top + 2 * x + 2, top + 2 * x);
        const __m128i second = _mm_add_epi32(first, _mm_set1_epi32(1));
        const __m128 a = where_equal(picked, first, v), b = where_equal(picked, second, v);
        const __m128 c = where_equal(picked, _mm_add_epi32(first, below), v);
        const __m128 e = where_equal(picked, _mm_add_epi32(second, below), v);
        _mm_storeu_ps(r0 + 2 * x, _mm_unpacklo_ps(a, b));
        _mm_storeu_ps(r0 + 2 * x + 4, _mm_unpackhi_ps(a, b));
        _mm_storeu_ps(r1 + 2 * x, _mm_unpacklo_ps(c, e));
        _mm_storeu_ps(r1 + 2 * x + 4, _mm_unpackhi_ps(c, e));
      }
#endif
      for (; x < g.out_w; ++x) {
        const int at = top + 2 * x;
        const float v = 0.0f + d[x];
        r0[2 * x] = am[x] == at ? v : 0.0f;
        r0[2 * x + 1] = am[x] == at + 1 ? v : 0.0f;
        r1[2 * x] = am[x] == at + g.w ? v : 0.0f;
        r1[2 * x + 1] = am[x] == at + g.w + 1 ? v : 0.0f;
      }
    }
    zero_uncovered(g, plane);
    fused_activation_backward(fused, p * plane_in(g), plane_in(g), din);
  }
}

void avg_pool_forward(const Pool2dGeometry& g, const float* in, float* out) {
  if (!pool2d_is_2x2_by_2(g)) return cpu::avg_pool_forward(g, in, out);
  for (std::size_t p = 0; p < planes(g); ++p)
    for (int y = 0; y < g.out_h; ++y) {
      const float* r0 = in + p * plane_in(g) + std::size_t(2 * y) * g.w;
      const float* r1 = r0 + g.w;
      float* o = out + p * plane_out(g) + std::size_t(y) * g.out_w;
      // The reference's order of additions and its division: the same bits.
      for (int x = 0; x < g.out_w; ++x)
        o[x] = (((0.0f + r0[2 * x]) + r0[2 * x + 1]) + r1[2 * x] + r1[2 * x + 1]) / 4.0f;
    }
}

void avg_pool_backward(const Pool2dGeometry& g, const float* dout, float* din,
                       const FusedActivationGrad<float>& fused) {
  if (!pool2d_is_2x2_by_2(g)) return cpu::avg_pool_backward(g, dout, din, fused);
  for (std::size_t p = 0; p < planes(g); ++p) {
    float* plane = din + p * plane_in(g);
    for (int y = 0; y < g.out_h; ++y) {
      float* r0 = plane + std::size_t(2 * y) * g.w;
      float* r1 = r0 + g.w;
      const float* d = dout + p * plane_out(g) + std::size_t(y) * g.out_w;
      for (int x = 0; x < g.out_w; ++x) {
        const float share = 0.0f + d[x] / 4.0f;  // the reference's sum into zero
        r0[2 * x] = r0[2 * x + 1] = r1[2 * x] = r1[2 * x + 1] = share;
      }
    }
    zero_uncovered(g, plane);
    fused_activation_backward(fused, p * plane_in(g), plane_in(g), din);
  }
}

}  // namespace cnnrt::cpu::fast
