// CPU reference optimizers (OptimizerParams: PyTorch's conventions) against values worked out by
// hand (step 1) and by the formulas of include/cnnrt/optimizer.hpp in double (later steps), and
// the learning-rate schedules at given steps.
#include <cmath>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

// One update at the parameters' own rate (a step with the bias corrections of step t).
template <typename T>
void step(const OptimizerParams& params, unsigned long long t, std::vector<T>& param,
          const std::vector<T>& grad, std::vector<T>& first, std::vector<T>* second = nullptr) {
  cpu::optimizer_update<T>(params, StepScalars::at(params, params.lr, t), param.size(),
                           param.data(), grad.data(), first.data(),
                           second != nullptr ? second->data() : nullptr);
}

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};
constexpr test::Tolerance kDoubleTol{1e-14, 1e-14};

// lr 0.1, momentum 0.9, weight decay 0.01, params (1, -2), grads (0.5, 0.5) then (-1, 0):
//   step 1: v = g + 0.01 p            = (0.51, 0.48);       p -= 0.1 v -> (0.949, -2.048)
//   step 2: v = 0.9 v + (g + 0.01 p)  = (-0.53151, 0.41152); p -> (1.002151, -2.089152)
template <typename T>
void check_two_momentum_steps(test::Tolerance tol) {
  const OptimizerParams params{0.1f, 0.9f, 0.01f};
  std::vector<T> param = {1, -2}, velocity = {0, 0};
  const std::vector<T> grad1 = {0.5, 0.5}, grad2 = {-1, 0};
  step<T>(params, 1, param, grad1, velocity);
  EXPECT_TRUE(all_close(velocity, std::vector<double>{0.51, 0.48}, tol, "v after step 1"));
  EXPECT_TRUE(all_close(param, std::vector<double>{0.949, -2.048}, tol, "p after step 1"));
  step<T>(params, 2, param, grad2, velocity);
  EXPECT_TRUE(all_close(velocity, std::vector<double>{-0.53151, 0.41152}, tol, "v after step 2"));
  EXPECT_TRUE(all_close(param, std::vector<double>{1.002151, -2.089152}, tol, "p after step 2"));
}

TEST(CpuSgd, MomentumAndWeightDecayTwoStepsFloat) {
  check_two_momentum_steps<float>(kFloatTol);
}

TEST(CpuSgd, MomentumAndWeightDecayTwoStepsDouble) {
  // The float parameters (0.1f, 0.9f, 0.01f) are not exact decimals: compare at float precision.
  check_two_momentum_steps<double>(kFloatTol);
}

TEST(CpuSgd, PlainSgdIgnoresOldVelocity) {
  // momentum 0, no decay: v = g, p -= lr g, whatever v held before.
  const OptimizerParams params{0.5f, 0.0f, 0.0f};
  std::vector<double> param = {1, 2, 3}, velocity = {100, -100, 7};
  const std::vector<double> grad = {2, -4, 0};
  step<double>(params, 1, param, grad, velocity);
  EXPECT_TRUE(all_close(velocity, grad, kDoubleTol, "v"));
  EXPECT_TRUE(all_close(param, std::vector<double>{0, 4, 3}, kDoubleTol, "p"));
}

TEST(CpuSgd, WeightDecayAloneShrinksParameters) {
  // Zero gradient, decay 0.5, lr 0.5: p -= 0.25 p.
  const OptimizerParams params{0.5f, 0.0f, 0.5f};
  std::vector<double> param = {4, -8}, velocity = {0, 0};
  const std::vector<double> grad = {0, 0};
  step<double>(params, 1, param, grad, velocity);
  EXPECT_TRUE(all_close(param, std::vector<double>{3, -6}, kDoubleTol, "p"));
}

// The same start for every optimizer below: params (1, -2), grads (0.5, 0.5), (-1, 0), (0.25,
// -0.5).
const std::vector<std::vector<double>> kGrads = {{0.5, 0.5}, {-1, 0}, {0.25, -0.5}};
constexpr test::Tolerance kAdamTol{1e-6, 1e-5};  // float; eps 1e-8 is below its resolution

struct Expected {
  std::vector<double> param, first, second;
};

// Runs the three steps in float and compares after each.
void check_steps(const OptimizerParams& params, const std::vector<Expected>& expected) {
  std::vector<float> param = {1, -2}, first = {0, 0}, second = {0, 0};
  for (std::size_t t = 0; t < kGrads.size(); ++t) {
    const std::vector<float> grad(kGrads[t].begin(), kGrads[t].end());
    step<float>(params, t + 1, param, grad, first, params.uses_second_moment() ? &second : nullptr);
    const std::string at = " after step " + std::to_string(t + 1);
    EXPECT_TRUE(all_close(param, expected[t].param, kAdamTol, "p" + at));
    EXPECT_TRUE(all_close(first, expected[t].first, kAdamTol, "first" + at));
    if (params.uses_second_moment()) {
      EXPECT_TRUE(all_close(second, expected[t].second, kAdamTol, "second" + at));
    }
  }
}

// lr 0.1, momentum 0.9, decay 0.01. Step 1: d = g + 0.01 p = (0.51, 0.48) = v; the step is
// d + 0.9 v = (0.969, 0.912): p = (0.9031, -2.0912). Plain SGD steps by v alone (see above).
TEST(CpuNesterov, ThreeStepsWithWeightDecay) {
  OptimizerParams params{0.1f, 0.9f, 0.01f};
  params.kind = OptimizerKind::nesterov;
  check_steps(params, {{{0.9031, -2.0912}, {0.51, 0.48}, {}},
                       {{1.05007411, -2.12610672}, {-0.531969, 0.411088}, {}},
                       {{1.043668458, -2.060365245}, {-0.2182713589, -0.1512818672}, {}}});
}

// lr 0.1, betas (0.9, 0.999), no decay. Step 1: m = 0.1 g, s = 0.001 g^2; corrected m / (1 - 0.9)
// = g and sqrt(s / (1 - 0.999)) = |g|: p -= 0.1 sign(g) -> (0.9, -2.1).
TEST(CpuAdam, ThreeStepsWithoutDecay) {
  OptimizerParams params{0.1f, 0.0f, 0.0f};
  params.kind = OptimizerKind::adam;
  check_steps(params,
              {{{0.900000002, -2.099999998}, {0.05, 0.05}, {0.00025, 0.00025}},
               {{0.9366103542, -2.167005822}, {-0.055, 0.045}, {0.00124975, 0.00024975}},
               {{0.9502794203, -2.15841905}, {-0.0245, -0.0095}, {0.00131100025, 0.00049950025}}});
}

// Decay 0.1 as L2 in the gradient: step 1 sees g + 0.1 p = (0.6, 0.3), so m = (0.06, 0.03) and
// p -= 0.1 sign -> (0.9, -2.1) again; later steps part from the undecayed run.
TEST(CpuAdam, ThreeStepsWithL2Decay) {
  OptimizerParams params{0.1f, 0.0f, 0.1f};
  params.kind = OptimizerKind::adam;
  check_steps(params, {{{0.9000000017, -2.099999997}, {0.06, 0.03}, {0.00036, 9e-05}},
                       {{0.9252635194, -2.112196503},
                        {-0.03699999998, 0.006000000033},
                        {0.00118774, 0.0001340099999}},
                       {{0.9247305743, -2.059704478},
                        {0.0009526352095, -0.065721965},
                        {0.001303876561, 0.0006397093808}}});
}

// AdamW, decay 0.1: p *= 1 - 0.1 * 0.1 first, the moments see g alone (the undecayed run's
// moments). Step 1: 0.99 p - 0.1 sign(g) = (0.89, -2.08).
TEST(CpuAdamW, ThreeStepsDecoupledDecay) {
  OptimizerParams params{0.1f, 0.0f, 0.1f};
  params.kind = OptimizerKind::adamw;
  check_steps(params,
              {{{0.890000002, -2.079999998}, {0.05, 0.05}, {0.00025, 0.00025}},
               {{0.9177103542, -2.126205822}, {-0.055, 0.045}, {0.00124975, 0.00024975}},
               {{0.9222023168, -2.096356992}, {-0.0245, -0.0095}, {0.00131100025, 0.00049950025}}});
}

TEST(CpuAdam, DoubleMatchesFloatFormula) {
  // The double twin over one step: p -= lr * g / (|g| + eps) exactly as written.
  OptimizerParams params{0.1f, 0.0f, 0.0f};
  params.kind = OptimizerKind::adam;
  std::vector<double> param = {1, -2}, m = {0, 0}, s = {0, 0};
  step<double>(params, 1, param, {0.5, 0.5}, m, &s);
  const double lr = double(0.1f), eps = double(1e-8f);
  EXPECT_TRUE(
      all_close(param, std::vector<double>{1 - lr * 0.5 / (0.5 + eps), -2 - lr * 0.5 / (0.5 + eps)},
                kFloatTol, "p"));
}

TEST(OptimizerParams, ChecksRanges) {
  OptimizerParams ok;
  EXPECT_NO_THROW(ok.check());
  auto with = [](auto change) {
    OptimizerParams p;
    change(p);
    return p;
  };
  EXPECT_THROW(with([](OptimizerParams& p) { p.eps = 0; }).check(), Error);
  EXPECT_THROW(with([](OptimizerParams& p) { p.beta1 = 1; }).check(), Error);
  EXPECT_THROW(with([](OptimizerParams& p) { p.beta2 = -0.1f; }).check(), Error);
  EXPECT_THROW(with([](OptimizerParams& p) { p.momentum = 1.5f; }).check(), Error);
  EXPECT_THROW(with([](OptimizerParams& p) { p.lr = -1; }).check(), Error);
  EXPECT_EQ(parse_optimizer("adamw"), OptimizerKind::adamw);
  EXPECT_THROW(parse_optimizer("rmsprop"), Error);
}

// Schedules at given steps: base 1, 4 epochs of 10 steps (T = 40).
constexpr test::Tolerance kRateTol{1e-6, 1e-6};
double rate(const std::string& text, int epoch, int step, float warmup = 0) {
  LrSchedule s = LrSchedule::parse(text);
  s.warmup_epochs = warmup;
  return s.rate(1.0f, epoch, step, 10, 4);
}

TEST(LrSchedule, PerEpochKindsHoldWithinAnEpoch) {
  EXPECT_EQ(rate("constant", 3, 9), 1.0);
  EXPECT_NEAR(rate("step:2:0.1", 1, 5), 1.0, 1e-7);
  EXPECT_NEAR(rate("step:2:0.1", 2, 0), 0.1, 1e-7);
  EXPECT_NEAR(rate("cosine", 2, 0), 0.5, 1e-6);  // (1 + cos(pi / 2)) / 2
  EXPECT_EQ(rate("cosine", 2, 0), rate("cosine", 2, 9));
  EXPECT_NEAR(rate("cosine", 1, 3), (1 + std::cos(3.14159265358979 / 4)) / 2, 1e-6);
}

TEST(LrSchedule, LinearDecaysPerStep) {
  EXPECT_NEAR(rate("linear", 0, 0), 1.0, kRateTol.atol);
  EXPECT_NEAR(rate("linear", 1, 0), 0.75, kRateTol.atol);  // g = 10 of 40
  EXPECT_NEAR(rate("linear", 3, 9), 1.0 / 40, kRateTol.atol);
}

TEST(LrSchedule, OneCycleFollowsPyTorch) {
  // pct 0.3: the peak at g = 0.3 * 40 - 1 = 11; from 1/25 up, then down to 1/25/1e4 at g = 39.
  EXPECT_NEAR(rate("onecycle", 0, 0), 0.04, kRateTol.atol);
  EXPECT_NEAR(rate("onecycle", 1, 1), 1.0, kRateTol.atol);
  // PyTorch's _annealing_cos(start, end, pct) = end + (start - end) / 2 (cos(pi pct) + 1).
  EXPECT_NEAR(rate("onecycle", 0, 5),
              1 + (0.04 - 1) / 2 * (std::cos(3.14159265358979 * 5 / 11) + 1), kRateTol.atol);
  EXPECT_NEAR(rate("onecycle", 3, 9), 4e-6, 1e-9);
  const double down = 4e-6 + (1 - 4e-6) / 2 * (std::cos(3.14159265358979 * 14.0 / 28.0) + 1);
  EXPECT_NEAR(rate("onecycle", 2, 5), down, kRateTol.atol);     // g = 25, 14 of the 28 steps down
  EXPECT_NEAR(rate("onecycle:0.5", 1, 9), 1.0, kRateTol.atol);  // peak at g = 19
}

TEST(LrSchedule, WarmupRampsPerStepThenHandsOver) {
  // 1.5 epochs = 15 steps: (g + 1) / 15 times the schedule's rate, then the schedule alone.
  EXPECT_NEAR(rate("constant", 0, 0, 1.5f), 1.0 / 15, kRateTol.atol);
  EXPECT_NEAR(rate("constant", 1, 2, 1.5f), 13.0 / 15, kRateTol.atol);
  EXPECT_NEAR(rate("cosine", 1, 4, 1.5f), 15.0 / 15 * rate("cosine", 1, 4), kRateTol.atol);
  EXPECT_EQ(rate("cosine", 1, 5, 1.5f), rate("cosine", 1, 5));
}

TEST(LrSchedule, ParseRejectsUnknown) {
  for (const char* bad : {"cosin", "onecycle:1", "onecycle:0", "step:0:0.1", "linear:3", ""})
    EXPECT_THROW(LrSchedule::parse(bad), Error) << bad;
}

}  // namespace
}  // namespace cnnrt
