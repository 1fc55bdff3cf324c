// CPU reference activations (docs/math.md section 2): hand values, the z >= 0 ReLU rule, in-place
// use and finite-difference checks of every backward. Also checks the gradient checker itself.
#include <cmath>
#include <cstddef>
#include <vector>

#include "kernels/cpu/activation.hpp"
#include "kernels/ops.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};
constexpr float kSlope = 0.1f;

const std::vector<float> kZ = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f};
const std::vector<float> kUpstream = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f};

std::vector<float> forward(Activation kind, const std::vector<float>& z) {
  std::vector<float> a = nan_vector<float>(z.size());
  cpu::activation_forward<float>(kind, kSlope, z.size(), z.data(), a.data());
  return a;
}

std::vector<float> backward(Activation kind, const std::vector<float>& z,
                            const std::vector<float>& a, const std::vector<float>& da) {
  std::vector<float> dz = nan_vector<float>(z.size());
  cpu::activation_backward<float>(kind, kSlope, z.size(), z.data(), a.data(), da.data(), dz.data());
  return dz;
}

TEST(CpuActivation, ReluForwardAndBackward) {
  const auto a = forward(Activation::relu, kZ);
  EXPECT_TRUE(all_close(a, std::vector<double>{0, 0, 0, 0.5, 3}, kFloatTol, "a"));
  // The lecture's rule: the gradient passes where z >= 0, so z == 0 (index 2) passes it.
  EXPECT_TRUE(all_close(backward(Activation::relu, kZ, a, kUpstream),
                        std::vector<double>{0, 0, 3, 4, 5}, kFloatTol, "dz"));
}

TEST(CpuActivation, LeakyReluForwardAndBackward) {
  const auto a = forward(Activation::leaky_relu, kZ);
  EXPECT_TRUE(all_close(a, std::vector<double>{-0.2, -0.05, 0, 0.5, 3}, kFloatTol, "a"));
  EXPECT_TRUE(all_close(backward(Activation::leaky_relu, kZ, a, kUpstream),
                        std::vector<double>{0.1, 0.2, 3, 4, 5}, kFloatTol, "dz"));
}

TEST(CpuActivation, SigmoidForwardAndBackward) {
  const std::vector<float> z = {-2, -1, 0, 1, 2};
  const auto a = forward(Activation::sigmoid, z);
  // 1 / (1 + e^-z) and a (1 - a), to 16 digits.
  EXPECT_TRUE(all_close(a,
                        std::vector<double>{0.11920292202211755, 0.2689414213699951, 0.5,
                                            0.7310585786300049, 0.8807970779778823},
                        kFloatTol, "a"));
  EXPECT_TRUE(
      all_close(backward(Activation::sigmoid, z, a, std::vector<float>(5, 2.0f)),
                std::vector<double>{2 * 0.1049935854035065, 2 * 0.19661193324148185, 2 * 0.25,
                                    2 * 0.19661193324148185, 2 * 0.1049935854035065},
                kFloatTol, "dz"));
}

TEST(CpuActivation, SigmoidSaturatesWithoutNan) {
  const auto a = forward(Activation::sigmoid, {-1000.0f, 1000.0f});
  EXPECT_EQ(a[0], 0.0f);
  EXPECT_EQ(a[1], 1.0f);
}

TEST(CpuActivation, NoneIsIdentity) {
  const auto a = forward(Activation::none, kZ);
  EXPECT_TRUE(all_close(a, kZ, kFloatTol, "a"));
  EXPECT_TRUE(all_close(backward(Activation::none, kZ, a, kUpstream), kUpstream, kFloatTol, "dz"));
}

TEST(CpuActivation, ScalarRuleMatchesHandValues) {
  EXPECT_EQ(cpu::activate<float>(Activation::relu, kSlope, -1.0f), 0.0f);
  EXPECT_EQ(cpu::activate<float>(Activation::relu, kSlope, 2.5f), 2.5f);
  EXPECT_NEAR(cpu::activate<double>(Activation::leaky_relu, 0.2, -3.0), -0.6, 1e-15);
  EXPECT_NEAR(cpu::activate<double>(Activation::sigmoid, 0.1, 0.0), 0.5, 1e-15);
  EXPECT_EQ(cpu::activate<double>(Activation::none, 0.1, -7.0), -7.0);
}

TEST(CpuActivation, InPlace) {
  // forward: a aliases z; backward: dz aliases da.
  std::vector<float> buffer = kZ;
  cpu::activation_forward<float>(Activation::leaky_relu, kSlope, buffer.size(), buffer.data(),
                                 buffer.data());
  EXPECT_TRUE(all_close(buffer, std::vector<double>{-0.2, -0.05, 0, 0.5, 3}, kFloatTol, "a"));
  std::vector<float> grad = kUpstream;
  cpu::activation_backward<float>(Activation::relu, kSlope, grad.size(), kZ.data(), kZ.data(),
                                  grad.data(), grad.data());
  EXPECT_TRUE(all_close(grad, std::vector<double>{0, 0, 3, 4, 5}, kFloatTol, "dz"));
}

TEST(CpuActivationGradient, MatchesFiniteDifferences) {
  std::uint64_t seed = 40;
  for (std::size_t count : {std::size_t(1), std::size_t(7), std::size_t(64), std::size_t(301)}) {
    for (Activation kind :
         {Activation::none, Activation::relu, Activation::leaky_relu, Activation::sigmoid}) {
      SCOPED_TRACE(::testing::Message() << "count " << count << " kind " << int(kind));
      auto z = random_vector<double>(count, ++seed, -3.0, 3.0);
      if (kind == Activation::relu && count == 1) z[0] = std::fabs(z[0]);  // a non-zero gradient
      const auto upstream = random_vector<double>(count, ++seed);
      std::vector<double> a = nan_vector<double>(count), dz = nan_vector<double>(count);
      cpu::activation_forward<double>(kind, 0.1, count, z.data(), a.data());
      cpu::activation_backward<double>(kind, 0.1, count, z.data(), a.data(), upstream.data(),
                                       dz.data());
      EXPECT_TRUE(test::check_gradient("dz", z, dz, [&](const std::vector<double>& x) {
        std::vector<double> out(count);
        cpu::activation_forward<double>(kind, 0.1, count, x.data(), out.data());
        return test::weighted_sum(out, upstream);
      }));
    }
  }
}

}  // namespace
}  // namespace cnnrt
