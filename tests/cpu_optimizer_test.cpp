// CPU reference SGD (SgdParams: PyTorch's momentum and weight-decay convention) against values
// worked out by hand over two steps.
#include <vector>

#include "kernels/cpu/optimizer.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};
constexpr test::Tolerance kDoubleTol{1e-14, 1e-14};

// lr 0.1, momentum 0.9, weight decay 0.01, params (1, -2), grads (0.5, 0.5) then (-1, 0):
//   step 1: v = g + 0.01 p            = (0.51, 0.48);       p -= 0.1 v -> (0.949, -2.048)
//   step 2: v = 0.9 v + (g + 0.01 p)  = (-0.53151, 0.41152); p -> (1.002151, -2.089152)
template <typename T>
void check_two_momentum_steps(test::Tolerance tol) {
  const SgdParams params{0.1f, 0.9f, 0.01f};
  std::vector<T> param = {1, -2}, velocity = {0, 0};
  const std::vector<T> grad1 = {0.5, 0.5}, grad2 = {-1, 0};
  cpu::sgd_update<T>(params, 2, param.data(), grad1.data(), velocity.data());
  EXPECT_TRUE(all_close(velocity, std::vector<double>{0.51, 0.48}, tol, "v after step 1"));
  EXPECT_TRUE(all_close(param, std::vector<double>{0.949, -2.048}, tol, "p after step 1"));
  cpu::sgd_update<T>(params, 2, param.data(), grad2.data(), velocity.data());
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
  const SgdParams params{0.5f, 0.0f, 0.0f};
  std::vector<double> param = {1, 2, 3}, velocity = {100, -100, 7};
  const std::vector<double> grad = {2, -4, 0};
  cpu::sgd_update<double>(params, 3, param.data(), grad.data(), velocity.data());
  EXPECT_TRUE(all_close(velocity, grad, kDoubleTol, "v"));
  EXPECT_TRUE(all_close(param, std::vector<double>{0, 4, 3}, kDoubleTol, "p"));
}

TEST(CpuSgd, WeightDecayAloneShrinksParameters) {
  // Zero gradient, decay 0.5, lr 0.5: p -= 0.25 p.
  const SgdParams params{0.5f, 0.0f, 0.5f};
  std::vector<double> param = {4, -8}, velocity = {0, 0};
  const std::vector<double> grad = {0, 0};
  cpu::sgd_update<double>(params, 2, param.data(), grad.data(), velocity.data());
  EXPECT_TRUE(all_close(param, std::vector<double>{3, -6}, kDoubleTol, "p"));
}

}  // namespace
}  // namespace cnnrt
