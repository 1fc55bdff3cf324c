// CUDA convolution against the CPU reference (kernels/cpu/conv.cpp): forward with every fused
// activation, backward-data and backward-weights+bias, over odd/prime sizes, strides 1-3, every
// padding mode, and the LeNet and AlexNet layer shapes; plus the lecture's worked example and a
// determinism check of the weight gradient.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cnnrt/shape.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

constexpr float kLeakySlope = 0.1f;
// Element-wise rules on top of a summed value: sigmoid's expf differs from std::exp by an ulp.
constexpr test::Tolerance kActivationExtra{1e-6, 1e-5};

struct ConvCase {
  int n, c, h, w, k, kh, kw, stride_h, stride_w;
  Padding padding;
  bool with_bias;
};

std::string describe(const ConvCase& cc) {
  return "n" + std::to_string(cc.n) + " c" + std::to_string(cc.c) + " " + std::to_string(cc.h) +
         "x" + std::to_string(cc.w) + " k" + std::to_string(cc.k) + " " + std::to_string(cc.kh) +
         "x" + std::to_string(cc.kw) + " s" + std::to_string(cc.stride_h) + "x" +
         std::to_string(cc.stride_w) + " " + cc.padding.to_string() +
         (cc.with_bias ? " bias" : " no-bias");
}

Conv2dGeometry geometry(const ConvCase& cc) {
  return make_conv2d_geometry("test", cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw, cc.stride_h,
                              cc.stride_w, cc.padding);
}

// Runs forward (plain, and with each fused activation), backward-data and backward-weights on both
// backends and compares.
void check_case(const ConvCase& cc, const std::vector<Activation>& activations,
                std::uint64_t seed) {
  SCOPED_TRACE(describe(cc));
  const Conv2dGeometry g = geometry(cc);
  const std::vector<float> in = random_vector<float>(g.in_size(), seed);
  const std::vector<float> weight = random_vector<float>(g.weight_size(), seed + 1);
  const std::vector<float> bias = random_vector<float>(std::size_t(g.k), seed + 2);
  const std::vector<float> dout = random_vector<float>(g.out_size(), seed + 3);
  const float* bias_host = cc.with_bias ? bias.data() : nullptr;

  const auto in_dev = to_device(in);
  const auto weight_dev = to_device(weight);
  const auto bias_dev = to_device(bias);
  const auto dout_dev = to_device(dout);
  const float* bias_device = cc.with_bias ? bias_dev.data() : nullptr;

  const std::size_t fan_in = std::size_t(g.c) * g.kh * g.kw;
  std::vector<float> z_expected(g.out_size());
  cpu::conv2d_forward(g, in.data(), weight.data(), bias_host, z_expected.data(), {});
  ASSERT_TRUE(any_nonzero(z_expected));
  const test::Tolerance z_tol = summed_tolerance(fan_in + 1);
  for (const Activation kind : activations) {
    SCOPED_TRACE("activation " + std::to_string(int(kind)));
    // The fused forward writes z and act(z); the reference applies the activation to its z.
    std::vector<float> a_expected(g.out_size());
    cpu::activation_forward(kind, kLeakySlope, g.out_size(), z_expected.data(), a_expected.data());
    auto z_dev = poisoned<float>(g.out_size());
    auto a_dev = poisoned<float>(g.out_size());
    cuda::conv2d_forward(g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(),
                         FusedActivation<float>{kind, kLeakySlope, a_dev.data()}, nullptr);
    test::Tolerance a_tol = z_tol;
    a_tol.atol += kActivationExtra.atol;
    a_tol.rtol += kActivationExtra.rtol;
    // ReLU may legitimately zero a tiny output (1x1, one filter); the others never give all zeros.
    if (kind != Activation::relu) {
      ASSERT_TRUE(any_nonzero(a_expected));
    }
    EXPECT_TRUE(all_close(z_dev.download(), z_expected, z_tol, "forward z"));
    EXPECT_TRUE(all_close(a_dev.download(), a_expected, a_tol, "forward act(z)"));
  }
  {  // Nothing fused: z only.
    auto z_dev = poisoned<float>(g.out_size());
    cuda::conv2d_forward(g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(), {},
                         nullptr);
    EXPECT_TRUE(all_close(z_dev.download(), z_expected, z_tol, "forward"));
  }

  std::vector<float> din_expected(g.in_size());
  cpu::conv2d_backward_data(g, dout.data(), weight.data(), din_expected.data());
  auto din_dev = poisoned<float>(g.in_size());
  cuda::conv2d_backward_data(g, dout_dev.data(), weight_dev.data(), din_dev.data(), nullptr);
  // Each input element sums at most k * kh * kw products.
  ASSERT_TRUE(any_nonzero(din_expected));
  EXPECT_TRUE(all_close(din_dev.download(), din_expected,
                        summed_tolerance(std::size_t(g.k) * g.kh * g.kw), "backward data"));

  std::vector<float> dweight_expected(g.weight_size()), dbias_expected(std::size_t(g.k));
  cpu::conv2d_backward_weights(g, in.data(), dout.data(), dweight_expected.data(),
                               cc.with_bias ? dbias_expected.data() : nullptr, nullptr);
  auto dweight_dev = poisoned<float>(g.weight_size());
  auto dbias_dev = poisoned<float>(std::size_t(g.k));
  DeviceBuffer<unsigned char> workspace(cuda::conv2d_backward_weights_workspace_bytes(g));
  cuda::conv2d_backward_weights(g, in_dev.data(), dout_dev.data(), dweight_dev.data(),
                                cc.with_bias ? dbias_dev.data() : nullptr, workspace.data(),
                                nullptr);
  const std::size_t positions = std::size_t(g.n) * g.out_h * g.out_w;
  ASSERT_TRUE(any_nonzero(dweight_expected));
  EXPECT_TRUE(all_close(dweight_dev.download(), dweight_expected, summed_tolerance(positions),
                        "backward weights"));
  if (cc.with_bias) {
    ASSERT_TRUE(any_nonzero(dbias_expected));
    EXPECT_TRUE(all_close(dbias_dev.download(), dbias_expected, summed_tolerance(positions),
                          "backward bias"));
  } else {
    // dbias == nullptr: the poisoned buffer must stay untouched (all 0xFF bytes, i.e. NaN).
    for (const float v : dbias_dev.download()) EXPECT_TRUE(std::isnan(v));
  }
}

const std::vector<Activation> kAllActivations{Activation::none, Activation::relu,
                                              Activation::leaky_relu, Activation::sigmoid};

// docs/math.md section 1's worked example: valid, stride 1, no bias.
TEST(CudaConv, LectureExample) {
  CNNRT_REQUIRE_GPU();
  const Conv2dGeometry g =
      make_conv2d_geometry("lecture", 1, 1, 5, 5, 1, 3, 3, 1, 1, Padding::valid());
  const std::vector<float> a{1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1,
                             1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};
  const std::vector<float> b{1, 0, 1, 0, 1, 0, 1, 0, 1};
  const std::vector<float> expected{4, 3, 4, 2, 4, 3, 2, 3, 4};
  const auto a_dev = to_device(a);
  const auto b_dev = to_device(b);
  auto out_dev = poisoned<float>(g.out_size());
  cuda::conv2d_forward(g, a_dev.data(), b_dev.data(), nullptr, out_dev.data(), {}, nullptr);
  EXPECT_TRUE(all_close(out_dev.download(), expected, test::Tolerance{0.0, 0.0}, "lecture"));
}

TEST(CudaConv, HandPickedShapes) {
  CNNRT_REQUIRE_GPU();
  const std::vector<ConvCase> cases{
      {1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::valid(), true},
      {1, 1, 5, 5, 1, 3, 3, 1, 1, Padding::valid(), false},
      {7, 3, 13, 11, 6, 3, 3, 2, 2, Padding::same(), true},
      {7, 6, 17, 17, 16, 5, 5, 3, 3, Padding::same(), true},
      {1, 3, 33, 31, 16, 7, 7, 3, 2, Padding::explicit_pad(2, 1), true},
      {7, 6, 29, 23, 1, 4, 2, 1, 3, Padding::explicit_pad(1, 2), false},
      {64, 3, 17, 17, 16, 3, 3, 2, 2, Padding::same(), true},
      {1, 1, 2, 2, 6, 5, 5, 1, 1, Padding::same(), true},               // kernel larger than input
      {7, 1, 31, 3, 6, 3, 1, 1, 1, Padding::explicit_pad(0, 0), true},  // 1-wide kernel
      {1, 6, 19, 19, 6, 19, 19, 1, 1, Padding::valid(), true},          // kernel = input
      {1, 3, 9, 9, 16, 2, 2, 3, 3, Padding::valid(), true},             // stride > kernel
  };
  std::uint64_t seed = 100;
  for (const ConvCase& cc : cases) check_case(cc, kAllActivations, seed += 10);
}

// Seeded random sweep: sizes 1..33, strides 1-3, every padding mode, C in {1,3,6}, K in {1,6,16},
// N in {1,7}.
TEST(CudaConv, RandomShapes) {
  CNNRT_REQUIRE_GPU();
  std::mt19937 rng(20240611);
  const int channels[] = {1, 3, 6}, filters[] = {1, 6, 16}, batches[] = {1, 7};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 40; ++trial) {
    ConvCase cc{};
    cc.n = batches[pick(0, 1)];
    cc.c = channels[pick(0, 2)];
    cc.k = filters[pick(0, 2)];
    cc.h = pick(1, 33);
    cc.w = pick(1, 33);
    cc.stride_h = pick(1, 3);
    cc.stride_w = pick(1, 3);
    cc.with_bias = trial % 3 != 0;
    const int mode = pick(0, 2);
    if (mode == 0) {
      cc.padding = Padding::valid();
      cc.kh = pick(1, std::min(cc.h, 7));
      cc.kw = pick(1, std::min(cc.w, 7));
    } else if (mode == 1) {
      cc.padding = Padding::same();
      cc.kh = pick(1, 7);
      cc.kw = pick(1, 7);
    } else {
      const int pad_h = pick(0, 3), pad_w = pick(0, 3);
      cc.padding = Padding::explicit_pad(pad_h, pad_w);
      cc.kh = pick(1, std::min(cc.h + 2 * pad_h, 7));
      cc.kw = pick(1, std::min(cc.w + 2 * pad_w, 7));
    }
    check_case(cc, {trial % 2 == 0 ? Activation::relu : Activation::sigmoid},
               1000 + std::uint64_t(trial) * 10);
  }
}

TEST(CudaConv, LeNetShapes) {
  CNNRT_REQUIRE_GPU();
  check_case({256, 1, 28, 28, 6, 5, 5, 1, 1, Padding::same(), true},
             {Activation::none, Activation::sigmoid}, 7);
  check_case({256, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid(), true},
             {Activation::none, Activation::relu}, 17);
}

// Shapes on either side of the staged kernels' 48 KB shared-memory limit (conv_backward_*.cu
// stage one sample per block when it fits, else fall back to the global-memory kernels), and a
// batch large enough that a block of the weight gradient sums two samples (n > 528 blocks; 601
// leaves the last group one).
// Shared bytes that decide the path, 3x3 "same", c3, k6: weight gradient 41604 at 33x33
// (staged), 57456 at 34x34 (fallback); data gradient (stride 1: the two-row tiled kernel first,
// then the staged one) 47328 tiled at 42x42, 49440 tiled / 48168 staged at 43x42 (staged),
// 50544 tiled / 49248 staged at 43x43 (fallback).
TEST(CudaConv, StagedPathBoundaries) {
  CNNRT_REQUIRE_GPU();
  const std::vector<ConvCase> cases{
      {5, 3, 33, 33, 6, 3, 3, 1, 1, Padding::same(), true},
      {5, 3, 34, 34, 6, 3, 3, 1, 1, Padding::same(), true},
      {5, 3, 42, 42, 6, 3, 3, 1, 1, Padding::same(), false},
      {5, 3, 43, 42, 6, 3, 3, 1, 1, Padding::same(), false},
      {5, 3, 43, 43, 6, 3, 3, 1, 1, Padding::same(), true},
      {601, 2, 9, 9, 3, 3, 3, 2, 2, Padding::same(), true},  // last group: one sample
  };
  std::uint64_t seed = 500;
  for (const ConvCase& cc : cases) check_case(cc, {Activation::none}, seed += 10);
}

// The register-blocked weight gradient (stride_w 1, kw 3 or 5, ceil(k / 4) * c * kh <= 256
// tasks): a partial last filter group (k 6, 5, 1), one and several row parts per block (rows
// split between thread groups), stride_h 2, padding, 240 tasks, 260 tasks (the staged kernel
// instead), and groups of two samples (n > 528).
TEST(CudaConv, BlockedWeightGradientShapes) {
  CNNRT_REQUIRE_GPU();
  const std::vector<ConvCase> cases{
      {3, 1, 12, 12, 6, 5, 5, 1, 1, Padding::same(), true},
      {2, 3, 9, 17, 5, 3, 3, 2, 1, Padding::explicit_pad(1, 0), true},
      {2, 12, 11, 11, 16, 5, 5, 1, 1, Padding::valid(), true},  // 240 tasks
      {2, 13, 11, 11, 16, 5, 5, 1, 1, Padding::valid(), true},  // 260 tasks: staged kernel
      {4, 2, 30, 7, 1, 3, 3, 1, 1, Padding::same(), false},
      {601, 2, 9, 9, 7, 3, 3, 1, 1, Padding::same(), true},
  };
  std::uint64_t seed = 900;
  for (const ConvCase& cc : cases) check_case(cc, {Activation::none}, seed += 10);
}

// The stride-1 tiled data gradient's channel groups (4 channels per thread for c <= 4, else 8):
// full groups, a partial last group, several groups, with odd heights (the unused second row).
TEST(CudaConv, TiledDataGradientChannelGroups) {
  CNNRT_REQUIRE_GPU();
  const std::vector<ConvCase> cases{
      {2, 4, 7, 3, 3, 1, 3, 1, 1, Padding::same(), true},
      {2, 8, 6, 5, 4, 3, 2, 1, 1, Padding::valid(), false},
      {3, 11, 9, 7, 5, 3, 3, 1, 1, Padding::explicit_pad(1, 2), true},
      {2, 20, 5, 8, 6, 5, 5, 1, 1, Padding::same(), true},
  };
  std::uint64_t seed = 700;
  for (const ConvCase& cc : cases) check_case(cc, {Activation::none}, seed += 10);
}

// AlexNet's five convolutions at batch 1 (the CPU reference is the slow side).
TEST(CudaConv, AlexNetShapes) {
  CNNRT_REQUIRE_GPU();
  check_case({1, 3, 227, 227, 96, 11, 11, 4, 4, Padding::valid(), true}, {Activation::relu}, 27);
  check_case({1, 96, 27, 27, 256, 5, 5, 1, 1, Padding::explicit_pad(2, 2), true},
             {Activation::relu}, 37);
  check_case({1, 256, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
             {Activation::relu}, 47);
  check_case({1, 384, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
             {Activation::relu}, 57);
  check_case({2, 384, 13, 13, 256, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
             {Activation::relu}, 67);
}

// The weight and bias gradients must not depend on scheduling: two launches, identical bits.
TEST(CudaConv, BackwardWeightsIsDeterministic) {
  CNNRT_REQUIRE_GPU();
  const Conv2dGeometry g =
      make_conv2d_geometry("determinism", 256, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid());
  const auto in_dev = to_device(random_vector<float>(g.in_size(), 5));
  const auto dout_dev = to_device(random_vector<float>(g.out_size(), 6));
  DeviceBuffer<unsigned char> workspace(cuda::conv2d_backward_weights_workspace_bytes(g));
  std::vector<float> first_dweight, first_dbias;
  for (int run = 0; run < 2; ++run) {
    auto dweight_dev = poisoned<float>(g.weight_size());
    auto dbias_dev = poisoned<float>(std::size_t(g.k));
    cuda::conv2d_backward_weights(g, in_dev.data(), dout_dev.data(), dweight_dev.data(),
                                  dbias_dev.data(), workspace.data(), nullptr);
    const std::vector<float> dweight = dweight_dev.download(), dbias = dbias_dev.download();
    ASSERT_TRUE(any_nonzero(dweight));
    ASSERT_TRUE(any_nonzero(dbias));
    expect_same_bits_every_run(run, dweight, first_dweight, "dweight");
    expect_same_bits_every_run(run, dbias, first_dbias, "dbias");
  }
}

}  // namespace
}  // namespace cnnrt
