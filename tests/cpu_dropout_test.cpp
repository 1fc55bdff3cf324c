// CPU reference dropout (docs/math.md section 6): Philox4x32-10 known answers (Random123's KATs),
// the stream layout of DropoutParams, keep statistics, scaling, reproducibility, validation and a
// finite-difference check of the backward.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/dropout.hpp"
#include "kernels/ops.hpp"
#include "kernels/philox.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};
constexpr std::size_t kStatisticsCount = 100000;
// The kept fraction's standard deviation is sqrt(p (1 - p) / 100000) <= 0.0016; allow ~6 sigma.
constexpr double kKeptFractionTol = 0.01;

void expect_philox(Philox4 counter, std::uint32_t key0, std::uint32_t key1, Philox4 expected) {
  const Philox4 got = philox4x32_10(counter, key0, key1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], expected.v[i]) << "word " << i;
}

TEST(Philox, Random123KnownAnswers) {
  expect_philox({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}});
  expect_philox({{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}}, 0xffffffffu, 0xffffffffu,
                {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}});
  expect_philox({{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}}, 0xa4093822u, 0x299f31d0u,
                {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}});
}

TEST(Philox, UniformFollowsTheDocumentedStream) {
  // Element i: word i % 4 of philox({i/4 lo, i/4 hi, offset lo, offset hi}, {seed lo, seed hi}),
  // top 24 bits / 2^24.
  const std::uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  for (std::uint64_t index : {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, 0x500000003ull}) {
    const std::uint64_t block = index / 4;
    const Philox4 bits = philox4x32_10({{std::uint32_t(block & 0xffffffffu),
                                         std::uint32_t(block >> 32), 0x76543210u, 0xfedcba98u}},
                                       0x89abcdefu, 0x01234567u);
    const double expected = double(bits.v[index % 4] >> 8) / 16777216.0;
    const float u = philox_uniform(seed, offset, index);
    EXPECT_EQ(double(u), expected) << "index " << index;
    EXPECT_GE(u, 0.0f);
    EXPECT_LT(u, 1.0f);
  }
}

struct DropoutRun {
  std::vector<float> out;
  std::vector<std::uint8_t> mask;
};

DropoutRun run_forward(const DropoutParams& params, const std::vector<float>& in) {
  DropoutRun run{nan_vector<float>(in.size()), std::vector<std::uint8_t>(in.size(), 0xAB)};
  cpu::dropout_forward<float>(params, in.size(), in.data(), run.out.data(), run.mask.data());
  return run;
}

TEST(CpuDropout, KeepsAboutOneMinusPAndScalesSurvivors) {
  const auto in = random_vector<float>(kStatisticsCount, 1, 0.5, 2.0);  // never zero
  for (float p : {0.1f, 0.5f, 0.9f}) {
    SCOPED_TRACE(p);
    const DropoutParams params{p, 42, 7};
    const DropoutRun run = run_forward(params, in);
    std::size_t kept = 0;
    std::vector<double> expected(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
      ASSERT_TRUE(run.mask[i] == 0 || run.mask[i] == 1) << "mask[" << i << "]";
      // The mask is exactly the documented draw: kept when u >= p.
      ASSERT_EQ(run.mask[i], philox_uniform(42, 7, i) >= p ? 1 : 0) << "mask[" << i << "]";
      kept += run.mask[i];
      expected[i] = run.mask[i] ? double(in[i]) / (1.0 - double(p)) : 0.0;
    }
    EXPECT_NEAR(double(kept) / double(in.size()), 1.0 - p, kKeptFractionTol);
    EXPECT_TRUE(all_close(run.out, expected, kFloatTol, "out"));
  }
}

TEST(CpuDropout, ReproducibleForSameSeedAndOffsetOnly) {
  const auto in = random_vector<float>(4096, 2);
  const DropoutRun first = run_forward({0.5f, 1234, 10}, in);
  const DropoutRun again = run_forward({0.5f, 1234, 10}, in);
  const DropoutRun next_step = run_forward({0.5f, 1234, 11}, in);
  const DropoutRun other_seed = run_forward({0.5f, 1235, 10}, in);
  EXPECT_EQ(first.mask, again.mask);
  EXPECT_EQ(first.out, again.out);
  // Independent masks with p = 0.5 differ in about half the elements.
  const auto differing = [&](const DropoutRun& other) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < in.size(); ++i) count += first.mask[i] != other.mask[i];
    return double(count) / double(in.size());
  };
  EXPECT_NEAR(differing(next_step), 0.5, 0.05);
  EXPECT_NEAR(differing(other_seed), 0.5, 0.05);
}

TEST(CpuDropout, FloatAndDoubleDrawTheSameMask) {
  const auto in_f = random_vector<float>(1000, 3);
  const auto in_d = random_vector<double>(1000, 3);
  const DropoutParams params{0.3f, 99, 5};
  std::vector<float> out_f(1000);
  std::vector<double> out_d(1000);
  std::vector<std::uint8_t> mask_f(1000), mask_d(1000);
  cpu::dropout_forward<float>(params, 1000, in_f.data(), out_f.data(), mask_f.data());
  cpu::dropout_forward<double>(params, 1000, in_d.data(), out_d.data(), mask_d.data());
  EXPECT_EQ(mask_f, mask_d);
}

TEST(CpuDropout, ZeroProbabilityKeepsEverything) {
  const auto in = random_vector<float>(1000, 4);
  const DropoutRun run = run_forward({0.0f, 5, 6}, in);
  EXPECT_EQ(run.mask, std::vector<std::uint8_t>(in.size(), 1));
  EXPECT_EQ(run.out, in);
}

TEST(CpuDropout, BackwardAppliesTheMaskAndScale) {
  const std::vector<float> dout = {1, 2, 3, 4};
  const std::vector<std::uint8_t> mask = {1, 0, 1, 0};
  std::vector<float> din = nan_vector<float>(4);
  cpu::dropout_backward<float>({0.5f, 0, 0}, 4, dout.data(), mask.data(), din.data());
  EXPECT_TRUE(all_close(din, std::vector<double>{2, 0, 6, 0}, kFloatTol, "din"));
  cpu::dropout_backward<float>({0.75f, 0, 0}, 4, dout.data(), mask.data(), din.data());
  EXPECT_TRUE(all_close(din, std::vector<double>{4, 0, 12, 0}, kFloatTol, "din"));
}

TEST(CpuDropout, RejectsProbabilityOutsideZeroToOne) {
  std::vector<float> buffer(4, 1.0f);
  std::vector<std::uint8_t> mask(4, 1);
  for (float p : {-0.1f, 1.0f, 1.5f, std::numeric_limits<float>::quiet_NaN()}) {
    SCOPED_TRACE(p);
    EXPECT_THROW(
        cpu::dropout_forward<float>({p, 0, 0}, 4, buffer.data(), buffer.data(), mask.data()),
        Error);
    EXPECT_THROW(
        cpu::dropout_backward<float>({p, 0, 0}, 4, buffer.data(), mask.data(), buffer.data()),
        Error);
  }
}

TEST(CpuDropoutGradient, MatchesFiniteDifferences) {
  std::uint64_t seed = 900;
  for (std::size_t count : {std::size_t(17), std::size_t(256), std::size_t(1001)}) {
    for (float p : {0.3f, 0.5f}) {
      SCOPED_TRACE(::testing::Message() << "count " << count << " p " << p);
      const DropoutParams params{p, 2024, count};
      const auto in = random_vector<double>(count, ++seed);
      const auto upstream = random_vector<double>(count, ++seed);
      std::vector<double> out = nan_vector<double>(count);
      std::vector<std::uint8_t> mask(count);
      cpu::dropout_forward<double>(params, count, in.data(), out.data(), mask.data());
      std::vector<double> din = nan_vector<double>(count);
      cpu::dropout_backward<double>(params, count, upstream.data(), mask.data(), din.data());
      EXPECT_TRUE(test::check_gradient("din", in, din, [&](const std::vector<double>& x) {
        std::vector<double> y(count);
        std::vector<std::uint8_t> m(count);
        cpu::dropout_forward<double>(params, count, x.data(), y.data(), m.data());
        return test::weighted_sum(y, upstream);
      }));
    }
  }
}

}  // namespace
}  // namespace cnnrt
