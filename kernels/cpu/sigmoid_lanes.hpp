#pragma once
// The fast sigmoid, W lanes at a time, in GCC's vector extensions: one text for every width, so
// the SSE2, AVX2 and AVX-512 files (each compiled with its own -m flags) run the same IEEE
// operations in the same order and give the same bits. Nothing here may be contracted into an
// FMA (those files build with -ffp-contract=off): that would change the rounding per width.
//
// Everything is in an unnamed namespace and uses builtins only: a function with external linkage
// compiled for AVX-512 could otherwise be picked by the linker for a baseline caller.
#include <cstddef>

namespace cnnrt::cpu::fast {
namespace {

// GCC drops vector_size on a dependent type, so each width is spelled out.
template <int W>
struct Lanes;
template <>
struct Lanes<4> {
  typedef float Float __attribute__((vector_size(16)));
  typedef int Int __attribute__((vector_size(16)));
};
template <>
struct Lanes<8> {
  typedef float Float __attribute__((vector_size(32)));
  typedef int Int __attribute__((vector_size(32)));
};
template <>
struct Lanes<16> {
  typedef float Float __attribute__((vector_size(64)));
  typedef int Int __attribute__((vector_size(64)));
};
template <int W>
using FloatLanes = typename Lanes<W>::Float;
template <int W>
using IntLanes = typename Lanes<W>::Int;

template <int W>
FloatLanes<W> splat(float v) {
  return FloatLanes<W>{} + v;
}

// exp(x), Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so r is exact),
// e^r by its degree-6 polynomial, times 2^n put into the exponent bits. x is clamped to where
// the result is a normal float; NaN stays NaN (each clamp keeps x when the comparison fails).
template <int W>
FloatLanes<W> exp_lanes(FloatLanes<W> x) {
  using F = FloatLanes<W>;
  using I = IntLanes<W>;
  const F high = splat<W>(88.3762626647949f), low = splat<W>(-87.3365447504f);
  x = high < x ? high : x;
  x = low > x ? low : x;
  // n = floor(x / ln2 + 1/2), from the truncation corrected downwards for negative values.
  const F t = x * splat<W>(1.44269504088896341f) + splat<W>(0.5f);
  F n = __builtin_convertvector(__builtin_convertvector(t, I), F);
  n = n - (n > t ? splat<W>(1.0f) : F{});
  x = x - n * splat<W>(0.693359375f);
  x = x - n * splat<W>(-2.12194440e-4f);
  F y = splat<W>(1.9875691500e-4f);
  y = y * x + splat<W>(1.3981999507e-3f);
  y = y * x + splat<W>(8.3334519073e-3f);
  y = y * x + splat<W>(4.1665795894e-2f);
  y = y * x + splat<W>(1.6666665459e-1f);
  y = y * x + splat<W>(5.0000001201e-1f);
  y = (y * (x * x) + x) + splat<W>(1.0f);
  const I exponent = (__builtin_convertvector(n, I) + 127) << 23;
  return y * __builtin_bit_cast(F, exponent);
}

template <int W>
FloatLanes<W> sigmoid_lanes(FloatLanes<W> z) {
  return splat<W>(1.0f) / (splat<W>(1.0f) + exp_lanes<W>(FloatLanes<W>{} - z));
}

// z: [count] -> a: [count]; a may alias z. The last few go through the same lanes (zero-padded),
// so every element has one rule.
template <int W>
void sigmoid_array(std::size_t count, const float* z, float* a) {
  using F = FloatLanes<W>;
  std::size_t i = 0;
  for (; i + W <= count; i += W) {
    F v;
    __builtin_memcpy(&v, z + i, sizeof v);
    v = sigmoid_lanes<W>(v);
    __builtin_memcpy(a + i, &v, sizeof v);
  }
  if (i < count) {
    F v{};
    __builtin_memcpy(&v, z + i, (count - i) * sizeof(float));
    v = sigmoid_lanes<W>(v);
    __builtin_memcpy(a + i, &v, (count - i) * sizeof(float));
  }
}

}  // namespace
}  // namespace cnnrt::cpu::fast
