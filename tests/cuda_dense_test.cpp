// CUDA dense layer against the CPU reference (kernels/cpu/dense.cpp), both GEMM paths (the tiled
// kernel and cuBLAS): forward with and without bias, backward-data, backward-weights+bias, for
// odd/prime shapes, LeNet's and AlexNet-like layers; activations fused into forward and
// backward-data; plus determinism of the weight gradient.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/dense.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Owns a cuBLAS handle on the default stream for one test.
class CublasHandle {
 public:
  CublasHandle() { CNNRT_CUBLAS_CHECK(cublasCreate(&handle_)); }
  ~CublasHandle() { (void)cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

const char* name(cuda::GemmImpl impl) {
  return impl == cuda::GemmImpl::tiled ? "tiled" : "cublas";
}

struct DenseCase {
  int n, in_features, out_features;
  bool with_bias;
};

void check_case(const DenseCase& dc, cuda::GemmImpl impl, cublasHandle_t cublas,
                std::uint64_t seed) {
  SCOPED_TRACE(std::string(name(impl)) + " n" + std::to_string(dc.n) + " in" +
               std::to_string(dc.in_features) + " out" + std::to_string(dc.out_features) +
               (dc.with_bias ? " bias" : " no-bias"));
  DenseGeometry g;
  g.n = dc.n;
  g.in_features = dc.in_features;
  g.out_features = dc.out_features;
  const std::vector<float> in = random_vector<float>(g.in_size(), seed);
  const std::vector<float> weight = random_vector<float>(g.weight_size(), seed + 1);
  const std::vector<float> bias = random_vector<float>(std::size_t(g.out_features), seed + 2);
  const std::vector<float> dout = random_vector<float>(g.out_size(), seed + 3);
  const auto in_dev = to_device(in);
  const auto weight_dev = to_device(weight);
  const auto bias_dev = to_device(bias);
  const auto dout_dev = to_device(dout);

  std::vector<float> out_expected(g.out_size());
  cpu::dense_forward(g, in.data(), weight.data(), dc.with_bias ? bias.data() : nullptr,
                     out_expected.data(), {});
  auto out_dev = poisoned<float>(g.out_size());
  cuda::dense_forward(g, in_dev.data(), weight_dev.data(), dc.with_bias ? bias_dev.data() : nullptr,
                      out_dev.data(), {}, impl, cublas, nullptr);
  ASSERT_TRUE(any_nonzero(out_expected));
  EXPECT_TRUE(all_close(out_dev.download(), out_expected,
                        summed_tolerance(std::size_t(g.in_features) + 1), "forward"));

  std::vector<float> din_expected(g.in_size());
  cpu::dense_backward_data(g, dout.data(), weight.data(), din_expected.data(), {});
  auto din_dev = poisoned<float>(g.in_size());
  cuda::dense_backward_data(g, dout_dev.data(), weight_dev.data(), din_dev.data(), {}, impl, cublas,
                            nullptr);
  ASSERT_TRUE(any_nonzero(din_expected));
  EXPECT_TRUE(all_close(din_dev.download(), din_expected,
                        summed_tolerance(std::size_t(g.out_features)), "backward data"));

  std::vector<float> dweight_expected(g.weight_size()), dbias_expected(g.out_features);
  cpu::dense_backward_weights(g, in.data(), dout.data(), dweight_expected.data(),
                              dc.with_bias ? dbias_expected.data() : nullptr);
  auto dweight_dev = poisoned<float>(g.weight_size());
  auto dbias_dev = poisoned<float>(std::size_t(g.out_features));
  cuda::dense_backward_weights(g, in_dev.data(), dout_dev.data(), dweight_dev.data(),
                               dc.with_bias ? dbias_dev.data() : nullptr, impl, cublas, nullptr);
  ASSERT_TRUE(any_nonzero(dweight_expected));
  EXPECT_TRUE(all_close(dweight_dev.download(), dweight_expected,
                        summed_tolerance(std::size_t(g.n)), "backward weights"));
  if (dc.with_bias) {
    ASSERT_TRUE(any_nonzero(dbias_expected));
    EXPECT_TRUE(all_close(dbias_dev.download(), dbias_expected, summed_tolerance(std::size_t(g.n)),
                          "backward bias"));
  }
}

const std::vector<DenseCase> kCases{
    {1, 1, 1, true},       {1, 7, 3, false},      {7, 33, 10, true},   {7, 16, 16, true},
    {13, 31, 17, false},   {64, 400, 120, true},  {33, 1, 29, true},   {5, 47, 1, true},
    {256, 400, 120, true}, {256, 120, 84, true},  {256, 84, 10, true},  // LeNet's dense layers
    {2, 9216, 256, true},  {2, 4096, 1000, true},                       // AlexNet-like, small n
};

TEST(CudaDense, TiledMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 500;
  for (const DenseCase& dc : kCases) check_case(dc, cuda::GemmImpl::tiled, nullptr, seed += 10);
}

TEST(CudaDense, CublasMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  CublasHandle cublas;
  std::uint64_t seed = 500;
  for (const DenseCase& dc : kCases)
    check_case(dc, cuda::GemmImpl::cublas, cublas.get(), seed += 10);
}

TEST(CudaDense, CublasPathNeedsAHandle) {
  CNNRT_REQUIRE_GPU();
  DenseGeometry g;
  g.n = 2;
  g.in_features = 3;
  g.out_features = 4;
  const auto in_dev = to_device(random_vector<float>(g.in_size(), 1));
  const auto weight_dev = to_device(random_vector<float>(g.weight_size(), 2));
  auto out_dev = poisoned<float>(g.out_size());
  EXPECT_THROW(cuda::dense_forward(g, in_dev.data(), weight_dev.data(), nullptr, out_dev.data(), {},
                                   cuda::GemmImpl::cublas, nullptr, nullptr),
               Error);
}

// The tensor-core kernel (GemmImpl::tf32) against the reference run on operands rounded to TF32:
// the products are then exact on both sides, so only the order of the float sums differs. Every
// path: forward with bias and a fused activation, backward-data with a fused activation, the
// weight gradient with the bias gradient as its ones column. And against the reference on the
// unrounded operands it must differ by TF32's rounding (about 2^-11 per operand): proof that the
// operands really are rounded, i.e. that the tensor cores run in TF32.
TEST(CudaDense, Tf32MatchesTheReferenceOnRoundedOperands) {
  CNNRT_REQUIRE_GPU();
  const std::vector<DenseCase> cases{
      {256, 400, 120, true}, {256, 120, 84, true}, {256, 84, 10, true},  // LeNet
      {1, 1, 1, true},       {7, 33, 17, true},    {33, 50, 31, false}, {2, 4096, 1000, true},
  };
  std::uint64_t seed = 1700;
  double largest_fp32_difference = 0;
  for (const DenseCase& dc : cases) {
    SCOPED_TRACE("n" + std::to_string(dc.n) + " in" + std::to_string(dc.in_features) + " out" +
                 std::to_string(dc.out_features));
    const DenseGeometry g{dc.n, dc.in_features, dc.out_features};
    const std::vector<float> in = tf32_operand(g.in_size(), seed += 10);
    const std::vector<float> weight = tf32_operand(g.weight_size(), seed + 1);
    const std::vector<float> bias = random_vector<float>(std::size_t(g.out_features), seed + 2);
    const std::vector<float> dout = tf32_operand(g.out_size(), seed + 3);
    const std::vector<float> in_r = rounded_to_tf32(in), weight_r = rounded_to_tf32(weight);
    const std::vector<float> dout_r = rounded_to_tf32(dout);
    const auto in_dev = to_device(in), weight_dev = to_device(weight);
    const auto bias_dev = to_device(bias), dout_dev = to_device(dout);
    const float* bias_host = dc.with_bias ? bias.data() : nullptr;
    const float* bias_device = dc.with_bias ? bias_dev.data() : nullptr;

    // Forward, ReLU fused: z and act(z).
    std::vector<float> z_expected(g.out_size()), a_expected(g.out_size());
    cpu::dense_forward(g, in_r.data(), weight_r.data(), bias_host, z_expected.data(), {});
    cpu::activation_forward(Activation::relu, kFusedLeakySlope, g.out_size(), z_expected.data(),
                            a_expected.data());
    auto z_dev = poisoned<float>(g.out_size());
    auto a_dev = poisoned<float>(g.out_size());
    cuda::dense_forward(g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(),
                        FusedActivation<float>{Activation::relu, kFusedLeakySlope, a_dev.data()},
                        cuda::GemmImpl::tf32, nullptr, nullptr);
    const std::vector<float> z = z_dev.download();
    const test::Tolerance forward_tol =
        tensor_core_summed_tolerance(std::size_t(g.in_features) + 1);
    ASSERT_TRUE(any_nonzero(z_expected));
    EXPECT_TRUE(all_close(z, z_expected, forward_tol, "tf32 forward z"));
    EXPECT_TRUE(all_close(a_dev.download(), a_expected, forward_tol, "tf32 forward act(z)"));
    std::vector<float> z_fp32(g.out_size());
    cpu::dense_forward(g, in.data(), weight.data(), bias_host, z_fp32.data(), {});
    for (std::size_t i = 0; i < z.size(); ++i)
      largest_fp32_difference =
          std::max(largest_fp32_difference, double(std::abs(z[i] - z_fp32[i])));

    // Backward data, sigmoid fused.
    const ActivationPair act(Activation::sigmoid, g.in_size(), seed + 4);
    std::vector<float> din(g.in_size());
    cpu::dense_backward_data(g, dout_r.data(), weight_r.data(), din.data(), {});
    const std::vector<float> dz_expected = act.backward(din);
    ASSERT_TRUE(any_nonzero(dz_expected));
    auto dz_dev = poisoned<float>(g.in_size());
    cuda::dense_backward_data(g, dout_dev.data(), weight_dev.data(), dz_dev.data(), act.fused(),
                              cuda::GemmImpl::tf32, nullptr, nullptr);
    EXPECT_TRUE(all_close(dz_dev.download(), dz_expected,
                          tensor_core_summed_tolerance(std::size_t(g.out_features)),
                          "tf32 backward data"));

    // Weight and bias gradients.
    std::vector<float> dweight_expected(g.weight_size()), dbias_expected(g.out_features);
    cpu::dense_backward_weights(g, in_r.data(), dout_r.data(), dweight_expected.data(),
                                dc.with_bias ? dbias_expected.data() : nullptr);
    auto dweight_dev = poisoned<float>(g.weight_size());
    auto dbias_dev = poisoned<float>(std::size_t(g.out_features));
    cuda::dense_backward_weights(g, in_dev.data(), dout_dev.data(), dweight_dev.data(),
                                 dc.with_bias ? dbias_dev.data() : nullptr, cuda::GemmImpl::tf32,
                                 nullptr, nullptr);
    ASSERT_TRUE(any_nonzero(dweight_expected));
    EXPECT_TRUE(all_close(dweight_dev.download(), dweight_expected,
                          tensor_core_summed_tolerance(std::size_t(g.n)), "tf32 backward weights"));
    if (dc.with_bias) {
      ASSERT_TRUE(any_nonzero(dbias_expected));
      EXPECT_TRUE(all_close(dbias_dev.download(), dbias_expected,
                            tensor_core_summed_tolerance(std::size_t(g.n)), "tf32 backward bias"));
    } else {
      for (const float v : dbias_dev.download()) EXPECT_TRUE(std::isnan(v));
    }
  }
  // Sums of hundreds of products of values in [-1, 1] carry TF32's rounding of order 1e-3.
  EXPECT_GT(largest_fp32_difference, kTf32VisibleDifference);
}

// Activations fused into the layer, both paths (the tiled GEMM's epilogue; cuBLAS then an
// epilogue kernel): forward writes z and act(z), backward-data writes the gradient at the input of
// the activation in front of the layer. Against the reference layer + reference activation.
TEST(CudaDense, FusedActivations) {
  CNNRT_REQUIRE_GPU();
  CublasHandle cublas;
  const std::vector<DenseCase> cases{
      {256, 400, 120, true}, {256, 120, 84, true}, {256, 84, 10, true},  // LeNet
      {7, 33, 17, true},     {5, 16, 3, false},
  };
  std::uint64_t seed = 800;
  for (const cuda::GemmImpl impl : {cuda::GemmImpl::tiled, cuda::GemmImpl::cublas})
    for (const DenseCase& dc : cases) {
      SCOPED_TRACE(std::string(name(impl)) + " n" + std::to_string(dc.n) + " in" +
                   std::to_string(dc.in_features) + " out" + std::to_string(dc.out_features));
      const DenseGeometry g{dc.n, dc.in_features, dc.out_features};
      const std::vector<float> in = random_vector<float>(g.in_size(), seed += 10);
      const std::vector<float> weight = random_vector<float>(g.weight_size(), seed + 1);
      const std::vector<float> bias = random_vector<float>(std::size_t(g.out_features), seed + 2);
      const std::vector<float> dout = random_vector<float>(g.out_size(), seed + 3);
      const auto in_dev = to_device(in), weight_dev = to_device(weight);
      const auto bias_dev = to_device(bias), dout_dev = to_device(dout);
      const float* bias_host = dc.with_bias ? bias.data() : nullptr;
      const float* bias_device = dc.with_bias ? bias_dev.data() : nullptr;
      const test::Tolerance forward_tol = summed_tolerance(std::size_t(g.in_features) + 1);
      const test::Tolerance backward_tol = summed_tolerance(std::size_t(g.out_features));

      std::vector<float> z_expected(g.out_size()), din(g.in_size());
      cpu::dense_forward(g, in.data(), weight.data(), bias_host, z_expected.data(), {});
      cpu::dense_backward_data(g, dout.data(), weight.data(), din.data(), {});
      ASSERT_TRUE(any_nonzero(z_expected));
      for (const Activation kind : kFusibleActivations) {
        SCOPED_TRACE("activation " + std::to_string(int(kind)));
        std::vector<float> a_expected(g.out_size());
        cpu::activation_forward(kind, kFusedLeakySlope, g.out_size(), z_expected.data(),
                                a_expected.data());
        auto z_dev = poisoned<float>(g.out_size());
        auto a_dev = poisoned<float>(g.out_size());
        cuda::dense_forward(g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(),
                            FusedActivation<float>{kind, kFusedLeakySlope, a_dev.data()}, impl,
                            cublas.get(), nullptr);
        EXPECT_TRUE(all_close(z_dev.download(), z_expected, forward_tol, "forward z"));
        EXPECT_TRUE(all_close(a_dev.download(), a_expected, forward_tol, "forward act(z)"));

        // The layer's input is the output of an activation in front of it.
        const ActivationPair act(kind, g.in_size(), seed + 4);
        const std::vector<float> dz_expected = act.backward(din);
        ASSERT_TRUE(any_nonzero(dz_expected));
        auto dz_dev = poisoned<float>(g.in_size());
        cuda::dense_backward_data(g, dout_dev.data(), weight_dev.data(), dz_dev.data(), act.fused(),
                                  impl, cublas.get(), nullptr);
        EXPECT_TRUE(all_close(dz_dev.download(), dz_expected, backward_tol, "fused backward data"));
      }
    }
}

// Two launches, identical bits, for each implementation.
TEST(CudaDense, BackwardWeightsIsDeterministic) {
  CNNRT_REQUIRE_GPU();
  CublasHandle cublas;
  DenseGeometry g;
  g.n = 256;
  g.in_features = 400;
  g.out_features = 120;
  const auto in_dev = to_device(random_vector<float>(g.in_size(), 71));
  const auto dout_dev = to_device(random_vector<float>(g.out_size(), 72));
  for (const cuda::GemmImpl impl : {cuda::GemmImpl::tiled, cuda::GemmImpl::cublas}) {
    SCOPED_TRACE(name(impl));
    std::vector<float> first_dweight, first_dbias;
    for (int run = 0; run < 2; ++run) {
      auto dweight_dev = poisoned<float>(g.weight_size());
      auto dbias_dev = poisoned<float>(std::size_t(g.out_features));
      cuda::dense_backward_weights(g, in_dev.data(), dout_dev.data(), dweight_dev.data(),
                                   dbias_dev.data(), impl, cublas.get(), nullptr);
      const std::vector<float> dweight = dweight_dev.download(), dbias = dbias_dev.download();
      ASSERT_TRUE(any_nonzero(dweight));
      ASSERT_TRUE(any_nonzero(dbias));
      expect_same_bits_every_run(run, dweight, first_dweight, "dweight");
      expect_same_bits_every_run(run, dbias, first_dbias, "dbias");
    }
  }
}

}  // namespace
}  // namespace cnnrt
