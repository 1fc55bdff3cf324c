// The fast CPU activations: sigmoid as 1 / (1 + exp(-z)) with exp computed four lanes at a time.
#include "kernels/cpu/activation_fast.hpp"

#include <algorithm>

#include "kernels/cpu/activation.hpp"
#ifdef __SSE2__
#include <emmintrin.h>  // x86-64's baseline
#endif

namespace cnnrt::cpu::fast {

namespace {

#ifdef __SSE2__
// exp(x), Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r is exact),
// e^r by its degree-6 polynomial, times 2^n put into the exponent bits. x is clamped to where
// the result is a normal float; NaN stays NaN (min and max return their second operand for NaN).
__m128 exp4(__m128 x) {
  x = _mm_min_ps(_mm_set1_ps(88.3762626647949f), x);
  x = _mm_max_ps(_mm_set1_ps(-87.3365447504f), x);
  // n = floor(x / ln2 + 1/2), from the truncation corrected downwards for negative values.
  const __m128 t = _mm_add_ps(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)), _mm_set1_ps(0.5f));
  __m128 n = _mm_cvtepi32_ps(_mm_cvttps_epi32(t));
  n = _mm_sub_ps(n, _mm_and_ps(_mm_cmpgt_ps(n, t), _mm_set1_ps(1.0f)));
  x = _mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(0.693359375f)));
  x = _mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(-2.12194440e-4f)));
  __m128 y = _mm_set1_ps(1.9875691500e-4f);
  for (const float c :
       {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f})
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(c));
  y = _mm_add_ps(_mm_add_ps(_mm_mul_ps(y, _mm_mul_ps(x, x)), x), _mm_set1_ps(1.0f));
  const __m128i exponent =
      _mm_slli_epi32(_mm_add_epi32(_mm_cvttps_epi32(n), _mm_set1_epi32(127)), 23);
  return _mm_mul_ps(y, _mm_castsi128_ps(exponent));
}

__m128 sigmoid4(__m128 z) {
  const __m128 one = _mm_set1_ps(1.0f);
  return _mm_div_ps(one, _mm_add_ps(one, exp4(_mm_sub_ps(_mm_setzero_ps(), z))));
}
#endif

}  // namespace

void activation_forward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                        float* a) {
#ifdef __SSE2__
  if (kind == Activation::sigmoid) {
    std::size_t i = 0;
    for (; i + 4 <= count; i += 4) _mm_storeu_ps(a + i, sigmoid4(_mm_loadu_ps(z + i)));
    if (i < count) {  // the last few through the same lanes, so every element has one rule
      float lanes[4] = {0, 0, 0, 0};
      std::copy(z + i, z + count, lanes);
      _mm_storeu_ps(lanes, sigmoid4(_mm_loadu_ps(lanes)));
      std::copy(lanes, lanes + (count - i), a + i);
    }
    return;
  }
#endif
  cpu::activation_forward(kind, leaky_slope, count, z, a);
}

void fused_activation_forward(const FusedActivation<float>& fused, std::size_t first,
                              std::size_t count, const float* z) {
  if (fused.activated == nullptr) return;
  activation_forward(fused.kind, fused.leaky_slope, count, z + first, fused.activated + first);
}

}  // namespace cnnrt::cpu::fast
