// The TF32 implicit-GEMM convolution forward (kernels/cuda/conv_implicit_gemm.cu) against the CPU
// reference run on TF32-rounded operands (products exact on both sides, only the float sums'
// order differs), for the LeNet-5, Fashion-MNIST and AlexNet shapes and odd ones; with bias and a
// fused activation; bit-identical across runs; and visibly different from FP32 (the tensor cores
// really run in TF32). Skips without a GPU.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/shape.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

struct Tf32Case {
  std::string name;
  int n, c, h, w, k, kh, kw, stride_h, stride_w;
  Padding padding;
  bool with_bias;
};

const std::vector<Tf32Case>& cases() {
  static const std::vector<Tf32Case> all = {
      {"lenet5.conv1", 64, 1, 28, 28, 6, 5, 5, 1, 1, Padding::same(), true},
      {"lenet5.conv2", 64, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid(), true},
      {"fmnist-bn.conv1", 16, 1, 28, 28, 32, 3, 3, 1, 1, Padding::same(), true},
      {"fmnist-bn.conv2", 16, 32, 14, 14, 64, 3, 3, 1, 1, Padding::same(), false},
      {"alexnet.conv1", 2, 3, 227, 227, 96, 11, 11, 4, 4, Padding::valid(), true},
      {"alexnet.conv2", 2, 96, 27, 27, 256, 5, 5, 1, 1, Padding::explicit_pad(2, 2), true},
      {"alexnet.conv3", 2, 256, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
      {"alexnet.conv4", 2, 384, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
      {"alexnet.conv5", 2, 384, 13, 13, 256, 3, 3, 1, 1, Padding::explicit_pad(1, 1), true},
      {"s2_pad1_3x3", 3, 5, 9, 11, 7, 3, 3, 2, 2, Padding::explicit_pad(1, 1), true},
      {"s3_same_even_2x4", 1, 2, 9, 12, 3, 2, 4, 3, 2, Padding::same(), false},
      {"pointwise_1x1", 1, 3, 6, 5, 130, 1, 1, 1, 1, Padding::valid(), true},
      {"single_output", 1, 1, 1, 1, 1, 1, 1, 1, 1, Padding::valid(), true},
  };
  return all;
}

TEST(CudaConvTf32, ForwardMatchesTheReferenceOnRoundedOperands) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 2000;
  double largest_fp32_difference = 0;
  for (const Tf32Case& cc : cases()) {
    SCOPED_TRACE(cc.name);
    const Conv2dGeometry g =
        make_conv2d_geometry(cc.name.c_str(), cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw,
                             cc.stride_h, cc.stride_w, cc.padding);
    const std::vector<float> in = tf32_operand(g.in_size(), seed += 10);
    const std::vector<float> weight = tf32_operand(g.weight_size(), seed + 1);
    const std::vector<float> bias = random_vector<float>(std::size_t(g.k), seed + 2);
    const std::vector<float> in_r = rounded_to_tf32(in), weight_r = rounded_to_tf32(weight);
    const float* bias_host = cc.with_bias ? bias.data() : nullptr;
    const auto in_dev = to_device(in), weight_dev = to_device(weight), bias_dev = to_device(bias);
    const float* bias_device = cc.with_bias ? bias_dev.data() : nullptr;

    std::vector<float> z_expected = nan_vector<float>(g.out_size());
    std::vector<float> a_expected = nan_vector<float>(g.out_size());
    cpu::conv2d_forward(g, in_r.data(), weight_r.data(), bias_host, z_expected.data(), {});
    cpu::activation_forward(Activation::relu, kFusedLeakySlope, g.out_size(), z_expected.data(),
                            a_expected.data());
    ASSERT_TRUE(any_nonzero(z_expected));
    const Tolerance tol = tensor_core_summed_tolerance(std::size_t(g.c) * g.kh * g.kw + 1);

    std::vector<float> first_z;
    for (int run = 0; run < 2; ++run) {
      auto z_dev = poisoned<float>(g.out_size());
      auto a_dev = poisoned<float>(g.out_size());
      cuda::conv2d_forward_tf32(
          g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(),
          FusedActivation<float>{Activation::relu, kFusedLeakySlope, a_dev.data()}, nullptr);
      const std::vector<float> z = z_dev.download();
      EXPECT_TRUE(all_close(z, z_expected, tol, "tf32 forward z"));
      EXPECT_TRUE(all_close(a_dev.download(), a_expected, tol, "tf32 forward relu(z)"));
      expect_same_bits_every_run(run, z, first_z, "tf32 forward z");
    }
    {  // Nothing fused.
      auto z_dev = poisoned<float>(g.out_size());
      cuda::conv2d_forward_tf32(g, in_dev.data(), weight_dev.data(), bias_device, z_dev.data(), {},
                                nullptr);
      EXPECT_TRUE(all_close(z_dev.download(), z_expected, tol, "tf32 forward, nothing fused"));
    }
    std::vector<float> z_fp32(g.out_size());
    cpu::conv2d_forward(g, in.data(), weight.data(), bias_host, z_fp32.data(), {});
    for (std::size_t i = 0; i < z_fp32.size(); ++i)
      largest_fp32_difference =
          std::max(largest_fp32_difference, double(std::abs(first_z[i] - z_fp32[i])));
  }
  EXPECT_GT(largest_fp32_difference, kTf32VisibleDifference);
}

}  // namespace
}  // namespace cnnrt
