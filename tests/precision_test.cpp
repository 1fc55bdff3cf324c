// BF16 and TF32 rounding (kernels/precision.hpp): hand-computed bit patterns (ties, subnormals,
// overflow, signed zero, NaN), then sweeps checked against a reference written independently in
// double arithmetic (frexp/ldexp/nearbyint), and BF16 against CUDA's own host conversion.
#include "kernels/precision.hpp"

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace cnnrt {
namespace {

constexpr int kBf16Significand = 8;      // bits, the implicit one included
constexpr int kTf32Significand = 11;     // bits, the implicit one included
constexpr int kFp32MinNormalExp = -125;  // frexp's exponent of FLT_MIN (0.5 * 2^-125)

float from_bits(std::uint32_t u) {
  return bits_to_float(u);
}

enum class Ties { even, away };

// x rounded to `p` significand bits with FP32's exponent range (subnormals included), computed in
// double: x / ulp rounded to an integer, times ulp; 2^128 or more is infinity.
float reference_round(float x, int p, Ties ties) {
  if (std::isnan(x)) return std::numeric_limits<float>::quiet_NaN();
  if (std::isinf(x) || x == 0.0f) return x;
  int e = 0;
  std::frexp(double(x), &e);  // |x| in [2^(e-1), 2^e)
  const int ulp_exp = (e > kFp32MinNormalExp ? e : kFp32MinNormalExp) - p;
  const double q = std::ldexp(double(x), -ulp_exp);
  const double r = ties == Ties::even ? std::nearbyint(q) : std::round(q);
  const double y = std::ldexp(r, ulp_exp);
  if (std::fabs(y) >= std::ldexp(1.0, 128)) return std::copysign(INFINITY, x);
  return static_cast<float>(y);  // exact: y has at most p significant bits
}

// Same bits, or both NaN.
::testing::AssertionResult same_float(float got, float want, std::uint32_t input) {
  if (std::isnan(want) ? std::isnan(got) : float_to_bits(got) == float_to_bits(want))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << std::hex << "input 0x" << input << ": got 0x"
                                       << float_to_bits(got) << ", want 0x" << float_to_bits(want);
}

struct Bf16Case {
  std::uint32_t in;
  std::uint16_t out;
};

// Worked by hand: BF16 keeps the high 16 bits; the low 16 decide the rounding (0x8000 a tie).
TEST(Bf16Round, HandComputed) {
  const Bf16Case cases[] = {
      {0x3F800000u, 0x3F80u},  // 1.0
      {0x3F808000u, 0x3F80u},  // 1 + 2^-8: tie, kept lsb 0 stays
      {0x3F818000u, 0x3F82u},  // 1 + 3*2^-8: tie, kept lsb 1 rounds up to even
      {0x3F808001u, 0x3F81u},  // just above the tie
      {0x3F807FFFu, 0x3F80u},  // just below the tie
      {0xBF818000u, 0xBF82u},  // negative tie, to even
      {0x40490FDBu, 0x4049u},  // pi -> 3.140625
      {0x00000000u, 0x0000u},  // +0
      {0x80000000u, 0x8000u},  // -0 keeps its sign
      {0x00000001u, 0x0000u},  // smallest subnormal rounds to zero
      {0x00008000u, 0x0000u},  // subnormal tie, to even (zero)
      {0x00018000u, 0x0002u},  // subnormal tie, to even (up)
      {0x00008001u, 0x0001u},  // smallest BF16 subnormal
      {0x807F8000u, 0x8080u},  // largest subnormal tie carries into the smallest normal
      {0x7F7F7FFFu, 0x7F7Fu},  // largest finite BF16
      {0x7F7F8000u, 0x7F80u},  // tie above it: to even, which is infinity
      {0x7F7FFFFFu, 0x7F80u},  // FLT_MAX overflows to +inf
      {0xFF7FFFFFu, 0xFF80u},  // -FLT_MAX to -inf
      {0x7F800000u, 0x7F80u},  // +inf
      {0xFF800000u, 0xFF80u},  // -inf
      {0x7FC00000u, 0x7FFFu},  // quiet NaN
      {0x7F800001u, 0x7FFFu},  // signalling NaN: a NaN, not infinity
      {0xFFFFFFFFu, 0x7FFFu},  // negative NaN
  };
  for (const Bf16Case& c : cases) {
    EXPECT_EQ(float_to_bf16_bits(from_bits(c.in)), c.out) << std::hex << "input 0x" << c.in;
  }
  EXPECT_EQ(bf16_round(3.14159274f), 3.140625f);
  EXPECT_TRUE(std::isnan(bf16_bits_to_float(kBf16CanonicalNan)));
  EXPECT_EQ(bf16_bits_to_float(0x3F82u), 1.015625f);
}

struct Tf32Case {
  std::uint32_t in;
  std::uint32_t away;  // tf32_round
  std::uint32_t even;  // tf32_round_even
};

// TF32 keeps the high 19 bits; the low 13 decide the rounding (0x1000 a tie).
TEST(Tf32Round, HandComputed) {
  const Tf32Case cases[] = {
      {0x3F800000u, 0x3F800000u, 0x3F800000u},              // 1.0
      {0x3F801000u, 0x3F802000u, 0x3F800000u},              // 1 + 2^-11: tie, away vs even
      {0xBF801000u, 0xBF802000u, 0xBF800000u},              // negative tie: away from zero
      {0x3F803000u, 0x3F804000u, 0x3F804000u},              // 1 + 3*2^-11: tie, both up
      {0x3F800FFFu, 0x3F800000u, 0x3F800000u},              // below the tie
      {0x3F801001u, 0x3F802000u, 0x3F802000u},              // above the tie
      {0x80000000u, 0x80000000u, 0x80000000u},              // -0
      {0x00000FFFu, 0x00000000u, 0x00000000u},              // subnormal below the tie
      {0x00001000u, 0x00002000u, 0x00000000u},              // smallest subnormal tie
      {0x007FF000u, 0x00800000u, 0x00800000u},              // largest subnormal tie -> FLT_MIN
      {0x7F7FEFFFu, 0x7F7FE000u, 0x7F7FE000u},              // largest finite TF32
      {0x7F7FF000u, 0x7F800000u, 0x7F800000u},              // tie above it: infinity
      {0x7F7FFFFFu, 0x7F800000u, 0x7F800000u},              // FLT_MAX -> +inf
      {0xFF7FFFFFu, 0xFF800000u, 0xFF800000u},              // -FLT_MAX -> -inf
      {0x7F800000u, 0x7F800000u, 0x7F800000u},              // +inf
      {0xFF800000u, 0xFF800000u, 0xFF800000u},              // -inf
      {0x7F800001u, kTf32CanonicalNan, kTf32CanonicalNan},  // signalling NaN stays NaN
      {0xFFC00000u, kTf32CanonicalNan, kTf32CanonicalNan},  // negative quiet NaN
  };
  for (const Tf32Case& c : cases) {
    EXPECT_EQ(float_to_bits(tf32_round(from_bits(c.in))), c.away) << std::hex << "0x" << c.in;
    EXPECT_EQ(float_to_bits(tf32_round_even(from_bits(c.in))), c.even) << std::hex << "0x" << c.in;
  }
}

// Inputs for a sweep with `dropped` low bits decided by rounding: every pattern of the kept high
// bits (stepping by `high_step`) with the low bits at zero, one, just below, at and just above the
// tie, all ones and one random value; then `random_count` random patterns, NaNs included.
std::vector<std::uint32_t> sweep_inputs(int dropped, std::uint32_t high_step, int random_count) {
  std::mt19937 rng(20261201u);
  const std::uint32_t tie = 1u << (dropped - 1), mask = (1u << dropped) - 1u;
  std::vector<std::uint32_t> inputs;
  for (std::uint64_t high = 0; high < (std::uint64_t(1) << 32);
       high += std::uint64_t(high_step) << dropped) {
    const std::uint32_t h = static_cast<std::uint32_t>(high);
    for (std::uint32_t low : {0u, 1u, tie - 1u, tie, tie + 1u, mask, std::uint32_t(rng()) & mask})
      inputs.push_back(h | low);
  }
  for (int i = 0; i < random_count; ++i) inputs.push_back(std::uint32_t(rng()));
  return inputs;
}

constexpr int kRandomSweep = 1 << 21;

TEST(Bf16Round, SweepAgainstDoubleReference) {
  const std::vector<std::uint32_t> inputs = sweep_inputs(16, 1, kRandomSweep);
  int failures = 0;
  for (std::uint32_t u : inputs) {
    const float x = from_bits(u);
    const auto r = same_float(bf16_round(x), reference_round(x, kBf16Significand, Ties::even), u);
    if (!r && ++failures <= 5) ADD_FAILURE() << r.message();
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size();
}

// CUDA's host-side __float2bfloat16_rn (the same rule as cvt.rn.bf16.f32), NaN bits included.
TEST(Bf16Round, SweepAgainstCudaHostConversion) {
  const std::vector<std::uint32_t> inputs = sweep_inputs(16, 1, kRandomSweep);
  int failures = 0;
  for (std::uint32_t u : inputs) {
    const __nv_bfloat16_raw cuda = __nv_bfloat16_raw(__float2bfloat16_rn(from_bits(u)));
    const std::uint16_t ours = float_to_bf16_bits(from_bits(u));
    if (ours != cuda.x && ++failures <= 5)
      ADD_FAILURE() << std::hex << "input 0x" << u << ": ours 0x" << ours << ", CUDA 0x" << cuda.x;
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size();
}

TEST(Tf32Round, SweepAgainstDoubleReference) {
  const std::vector<std::uint32_t> inputs = sweep_inputs(13, 1, kRandomSweep);
  int failures = 0;
  for (std::uint32_t u : inputs) {
    const float x = from_bits(u);
    for (const Ties ties : {Ties::away, Ties::even}) {
      const float got = ties == Ties::away ? tf32_round(x) : tf32_round_even(x);
      const auto r = same_float(got, reference_round(x, kTf32Significand, ties), u);
      if (!r && ++failures <= 5)
        ADD_FAILURE() << (ties == Ties::away ? "away " : "even ") << r.message();
    }
    // The result is a TF32 value: its 13 low bits are zero (NaN's canonical pattern aside).
    if (!std::isnan(x) && (float_to_bits(tf32_round(x)) & 0x1FFFu) != 0 && ++failures <= 5)
      ADD_FAILURE() << std::hex << "low bits left in 0x" << float_to_bits(tf32_round(x));
  }
  EXPECT_EQ(failures, 0) << "of " << inputs.size();
}

// Rounding twice changes nothing, and the rounded value is within half an ulp of the input.
TEST(Tf32Round, IdempotentAndWithinHalfUlp) {
  std::mt19937 rng(7u);
  std::uniform_real_distribution<float> dist(-1e6f, 1e6f);
  for (int i = 0; i < 100000; ++i) {
    const float x = dist(rng);
    const float t = tf32_round(x), b = bf16_round(x);
    ASSERT_EQ(float_to_bits(tf32_round(t)), float_to_bits(t));
    ASSERT_EQ(float_to_bits(bf16_round(b)), float_to_bits(b));
    int e = 0;
    std::frexp(double(x), &e);
    ASSERT_LE(std::fabs(double(t) - x), std::ldexp(0.5, e - kTf32Significand)) << x;
    ASSERT_LE(std::fabs(double(b) - x), std::ldexp(0.5, e - kBf16Significand)) << x;
  }
}

}  // namespace
}  // namespace cnnrt
