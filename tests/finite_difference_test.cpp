// The finite-difference checker itself (host/finite_difference.hpp), which the CPU kernel tests
// and `cnnrt gradcheck --reference fd` share: it must pass a right gradient, and fail a wrong,
// an all-zero and an all-kink one, and report what it compared.
#include "host/finite_difference.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "cnnrt/error.hpp"
#include "tests/gradient_check.hpp"

namespace cnnrt {
namespace {

double square_sum(const std::vector<double>& x) {
  double sum = 0.0;
  for (double v : x) sum += v * v;
  return sum;
}

// L(x) = sum(max(x_i, 0)): a kink at every x_i = 0.
double relu_sum(const std::vector<double>& x) {
  double sum = 0.0;
  for (double v : x) sum += v > 0.0 ? v : 0.0;
  return sum;
}

// The checker's per-point loss over a whole-vector loss, as the gtest adapter builds it.
template <typename LossFn>
FdLoss per_point(std::vector<double> x, LossFn loss) {
  return [x, loss](std::size_t i, double value) mutable {
    const double saved = x[i];
    x[i] = value;
    const double l = loss(x);
    x[i] = saved;
    return l;
  };
}

const std::vector<double> kX = {0.5, -1.0, 2.0};

TEST(FiniteDifference, PassesTheRightGradientAndReportsIt) {
  const FdResult r = fd_check_gradient(kX, {1.0, -2.0, 4.0}, per_point(kX, square_sum));
  EXPECT_TRUE(r.passed) << r.message;
  EXPECT_EQ(r.checked, 3u);
  EXPECT_EQ(r.skipped, 0u);
  EXPECT_EQ(r.failed, 0u);
  EXPECT_LT(r.max_abs_error, 1e-8);
  EXPECT_LT(r.max_rel_error, 1e-8);
  EXPECT_EQ(r.max_abs_analytic, 4.0);
  EXPECT_LE(r.worst_ratio, 1.0);
  EXPECT_NE(r.message.find("3 points compared"), std::string::npos) << r.message;
}

TEST(FiniteDifference, FailsAWrongGradientAndNamesThePoint) {
  const FdResult r = fd_check_gradient(kX, {1.0, -2.0, 4.01}, per_point(kX, square_sum));
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.checked, 3u);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(r.worst_index, 2u);
  EXPECT_EQ(r.worst_analytic, 4.01);
  EXPECT_NEAR(r.worst_numeric, 4.0, 1e-8);
  EXPECT_GT(r.worst_ratio, 1.0);
  EXPECT_NEAR(r.max_abs_error, 0.01, 1e-8);
  EXPECT_NE(r.message.find("[2]: analytic 4.01"), std::string::npos) << r.message;
}

TEST(FiniteDifference, TolerancesAreTheNamedOnes) {
  // L = 3x: the central difference is 3 up to rounding, so the margin is the tolerance itself.
  const std::vector<double> x = {1.0};
  const FdLoss loss = per_point(x, [](const std::vector<double>& v) { return 3.0 * v[0]; });
  const double off = 3.0 * 2 * kFdRtol;  // twice the default relative tolerance
  EXPECT_FALSE(fd_check_gradient(x, {3.0 + off}, loss).passed);
  FdTolerances loose;
  loose.rtol = 4 * kFdRtol;
  EXPECT_TRUE(fd_check_gradient(x, {3.0 + off}, loss, loose).passed);
  EXPECT_TRUE(fd_check_gradient(x, {3.0 + 0.5 * kFdRtol * 3.0}, loss).passed);
}

TEST(FiniteDifference, AllZeroGradientFailsEvenWhereItIsRight) {
  // A constant loss: zero is the right gradient, and the check must still not call it a pass.
  const FdResult r =
      fd_check_gradient(kX, {0.0, 0.0, 0.0}, per_point(kX, [](const auto&) { return 1.0; }));
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.failed, 0u);
  EXPECT_EQ(r.max_abs_analytic, 0.0);
  EXPECT_NE(r.message.find("all zeros"), std::string::npos) << r.message;
}

TEST(FiniteDifference, KinksAreSkippedAndTooManyFail) {
  // 20 points, of which `kinks` sit exactly on a kink; at most 10% may be skipped.
  for (int kinks : {0, 1, 2, 3}) {
    SCOPED_TRACE(kinks);
    std::vector<double> x(20), grad(20, 1.0);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = 0.1 + 0.05 * double(i);
    for (int k = 0; k < kinks; ++k) x[std::size_t(k)] = 0.0;
    // At a kink the analytic value is wrong for both sides (5): skipping reads the loss only.
    for (int k = 0; k < kinks; ++k) grad[std::size_t(k)] = 5.0;
    const FdResult r = fd_check_gradient(x, grad, per_point(x, relu_sum));
    EXPECT_EQ(r.skipped, std::size_t(kinks));
    EXPECT_EQ(r.checked, 20u - std::size_t(kinks));
    EXPECT_EQ(r.failed, 0u);
    EXPECT_EQ(r.passed, kinks <= 2) << r.message;
  }
  const FdResult one = fd_check_gradient({0.0}, {1.0}, per_point({0.0}, relu_sum));
  EXPECT_FALSE(one.passed);
  EXPECT_EQ(one.skipped, 1u);
  EXPECT_NE(one.message.find("skipped as kinks"), std::string::npos) << one.message;
}

TEST(FiniteDifference, ChecksOnlyTheGivenPoints) {
  // Point 0 is wrong but not asked for; the all-zero rule still looks at the whole gradient.
  const FdLoss loss = per_point(kX, square_sum);
  const FdResult r = fd_check_gradient(kX, {7.0, -2.0, 4.0}, loss, std::vector<std::size_t>{2, 1});
  EXPECT_TRUE(r.passed) << r.message;
  EXPECT_EQ(r.checked, 2u);
  EXPECT_EQ(r.max_abs_analytic, 7.0);
  EXPECT_FALSE(fd_check_gradient(kX, {7.0, -2.0, 4.0}, loss, std::vector<std::size_t>{0}).passed);
  EXPECT_FALSE(fd_check_gradient(kX, {0.0, -2.0, 0.0}, loss, std::vector<std::size_t>{}).passed);
  EXPECT_THROW(fd_check_gradient(kX, {1.0, -2.0, 4.0}, loss, std::vector<std::size_t>{3}), Error);
}

TEST(FiniteDifference, SizesMustAgree) {
  const FdResult r = fd_check_gradient(kX, {1.0, -2.0}, per_point(kX, square_sum));
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.checked, 0u);
  EXPECT_NE(r.message.find("gradient has 2 elements, input 3"), std::string::npos) << r.message;
}

// The gtest adapter the kernel tests use passes and fails with the library's checker.
TEST(GradientChecker, RejectsWrongZeroAndAllKinkGradients) {
  const std::vector<double> x = {0.5, -1.0, 2.0};
  EXPECT_TRUE(test::check_gradient("right", x, {1.0, -2.0, 4.0}, square_sum));
  EXPECT_FALSE(test::check_gradient("wrong", x, {1.0, -2.0, 4.01}, square_sum));
  EXPECT_FALSE(test::check_gradient("zero", x, {0.0, 0.0, 0.0}, square_sum));
  EXPECT_FALSE(test::check_gradient("kink", {0.0}, {1.0}, relu_sum));
  const ::testing::AssertionResult wrong = test::check_gradient("wrong", x, {1, -2, 5}, square_sum);
  EXPECT_NE(std::string(wrong.message()).find("wrong: 1 of 3"), std::string::npos)
      << wrong.message();
}

}  // namespace
}  // namespace cnnrt
