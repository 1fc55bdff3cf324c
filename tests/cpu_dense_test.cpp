// CPU reference dense layer (docs/math.md section 4): hand-computed forward/backward with the
// [out, in] weight layout, finite-difference checks over several shapes and fused activations.
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/cpu/dense.hpp"
#include "kernels/ops.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};

// n = 2, in = 3, out = 2. weight rows are output units (PyTorch's [out, in]).
const DenseGeometry kSmall{2, 3, 2};
const std::vector<float> kIn = {1, 2, 3, 4, 5, 6};
const std::vector<float> kWeight = {1, 0, -1, 0.5f, 0.5f, 0.5f};
const std::vector<float> kBias = {0.1f, -0.2f};
const std::vector<float> kDout = {1, 2, 3, -1};

TEST(CpuDense, ForwardByHand) {
  std::vector<float> out = nan_vector<float>(kSmall.out_size());
  cpu::dense_forward<float>(kSmall, kIn.data(), kWeight.data(), kBias.data(), out.data(), {});
  // sample 0: 1 - 3 + 0.1, 0.5 * 6 - 0.2; sample 1: 4 - 6 + 0.1, 0.5 * 15 - 0.2
  EXPECT_TRUE(all_close(out, std::vector<double>{-1.9, 2.8, -1.9, 7.3}, kFloatTol, "out"));
  std::vector<float> no_bias = nan_vector<float>(kSmall.out_size());
  cpu::dense_forward<float>(kSmall, kIn.data(), kWeight.data(), nullptr, no_bias.data(), {});
  EXPECT_TRUE(all_close(no_bias, std::vector<double>{-2, 3, -2, 7.5}, kFloatTol, "no bias"));
}

TEST(CpuDense, BackwardDataByHand) {
  std::vector<float> din = nan_vector<float>(kSmall.in_size());
  cpu::dense_backward_data<float>(kSmall, kDout.data(), kWeight.data(), din.data(), {});
  // DA[n,j] = sum_k DZ[n,k] W[j,k]: sample 0 = 1*(1,0,-1) + 2*(.5,.5,.5), sample 1 = 3*... - 1*...
  EXPECT_TRUE(all_close(din, std::vector<double>{2, 1, 0, 2.5, -0.5, -3.5}, kFloatTol, "din"));
}

TEST(CpuDense, BackwardWeightsByHand) {
  std::vector<float> dweight = nan_vector<float>(kSmall.weight_size());
  std::vector<float> dbias = nan_vector<float>(2);
  cpu::dense_backward_weights<float>(kSmall, kIn.data(), kDout.data(), dweight.data(),
                                     dbias.data());
  // DW[j,k] = sum_n A[n,j] DZ[n,k], stored [k][j]: k0 = 1*(1,2,3) + 3*(4,5,6), k1 = 2*... - 1*...
  EXPECT_TRUE(all_close(dweight, std::vector<double>{13, 17, 21, -2, -1, 0}, kFloatTol, "dw"));
  EXPECT_TRUE(all_close(dbias, std::vector<double>{4, 1}, kFloatTol, "db"));
  std::vector<float> dweight_only = nan_vector<float>(kSmall.weight_size());
  cpu::dense_backward_weights<float>(kSmall, kIn.data(), kDout.data(), dweight_only.data(),
                                     nullptr);
  EXPECT_TRUE(all_close(dweight_only, dweight, kFloatTol, "dw, no bias"));
}

const DenseGeometry kShapes[] = {{1, 1, 1}, {3, 7, 5}, {4, 16, 10}, {2, 400, 3}};

std::string describe(const DenseGeometry& g) {
  return std::to_string(g.n) + "x" + std::to_string(g.in_features) + " -> " +
         std::to_string(g.out_features);
}

TEST(CpuDenseGradient, MatchesFiniteDifferences) {
  std::uint64_t seed = 500;
  for (const DenseGeometry& g : kShapes) {
    SCOPED_TRACE(describe(g));
    const auto in = random_vector<double>(g.in_size(), ++seed);
    const auto weight = random_vector<double>(g.weight_size(), ++seed);
    const auto bias = random_vector<double>(std::size_t(g.out_features), ++seed);
    const auto upstream = random_vector<double>(g.out_size(), ++seed);
    const auto loss = [&](const std::vector<double>& a, const std::vector<double>& w,
                          const std::vector<double>& b) {
      std::vector<double> out(g.out_size());
      cpu::dense_forward<double>(g, a.data(), w.data(), b.data(), out.data(), {});
      return test::weighted_sum(out, upstream);
    };

    std::vector<double> din = nan_vector<double>(g.in_size());
    std::vector<double> dweight = nan_vector<double>(g.weight_size());
    std::vector<double> dbias = nan_vector<double>(std::size_t(g.out_features));
    cpu::dense_backward_data<double>(g, upstream.data(), weight.data(), din.data(), {});
    cpu::dense_backward_weights<double>(g, in.data(), upstream.data(), dweight.data(),
                                        dbias.data());
    EXPECT_TRUE(test::check_gradient(
        "din", in, din, [&](const std::vector<double>& x) { return loss(x, weight, bias); }));
    EXPECT_TRUE(test::check_gradient("dweight", weight, dweight, [&](const std::vector<double>& x) {
      return loss(in, x, bias);
    }));
    EXPECT_TRUE(test::check_gradient(
        "dbias", bias, dbias, [&](const std::vector<double>& x) { return loss(in, weight, x); }));
  }
}

// The forward with an activation fused after it and the data gradient with one fused in front:
// the same bits as the plain layer followed by activation_forward / activation_backward.
template <typename T>
void check_fused_same_bits() {
  std::uint64_t seed = 600;
  for (const DenseGeometry& g : kShapes) {
    SCOPED_TRACE(describe(g));
    const auto in = random_vector<T>(g.in_size(), ++seed);
    const auto weight = random_vector<T>(g.weight_size(), ++seed);
    const auto bias = random_vector<T>(std::size_t(g.out_features), ++seed);
    const auto dout = random_vector<T>(g.out_size(), ++seed);
    for (const T* b : {bias.data(), static_cast<const T*>(nullptr)})
      expect_fused_forward_same_bits<T>(g.out_size(), [&](T* z, const FusedActivation<T>& fused) {
        cpu::dense_forward<T>(g, in.data(), weight.data(), b, z, fused);
      });
    expect_fused_backward_same_bits<T>(
        g.in_size(), ++seed, [&](T* din, const FusedActivationGrad<T>& fused) {
          cpu::dense_backward_data<T>(g, dout.data(), weight.data(), din, fused);
        });
  }
}

TEST(CpuDense, FusedActivationIsTheSameBitsFloat) {
  check_fused_same_bits<float>();
}
TEST(CpuDense, FusedActivationIsTheSameBitsDouble) {
  check_fused_same_bits<double>();
}

}  // namespace
}  // namespace cnnrt
