// CPU reference convolution: the lecture's worked example, hand-computed strided/padded cases,
// finite-difference checks of every backward (docs/math.md section 1) and the fused activation.
#include <cstddef>
#include <string>
#include <vector>

#include "cnnrt/shape.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/ops.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

// Hand-computed values are small integers: float must match them to rounding only.
constexpr test::Tolerance kExactFloat{1e-5, 1e-6};

Conv2dGeometry geometry(int n, int c, int h, int w, int k, int kh, int kw, int stride_h,
                        int stride_w, Padding padding) {
  return make_conv2d_geometry("test", n, c, h, w, k, kh, kw, stride_h, stride_w, padding);
}

// z, or act(z) (the fused output) when `fused` is an activation.
template <typename T>
std::vector<T> forward(const Conv2dGeometry& g, const std::vector<T>& in, const std::vector<T>& w,
                       const T* bias, Activation fused = Activation::none) {
  std::vector<T> z = nan_vector<T>(g.out_size()), a = nan_vector<T>(g.out_size());
  cpu::conv2d_forward<T>(g, in.data(), w.data(), bias, z.data(),
                         FusedActivation<T>{fused, T(kFusedLeakySlope),
                                            fused == Activation::none ? nullptr : a.data()});
  return fused == Activation::none ? z : a;
}

// The lecture's worked example (docs/math.md section 1): valid, stride 1, no bias.
template <typename T>
void check_lecture_example() {
  const std::vector<T> image = {1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1,
                                1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0};
  const std::vector<T> kernel = {1, 0, 1, 0, 1, 0, 1, 0, 1};
  const Conv2dGeometry g = geometry(1, 1, 5, 5, 1, 3, 3, 1, 1, Padding::valid());
  ASSERT_EQ(g.out_h, 3);
  ASSERT_EQ(g.out_w, 3);
  const std::vector<double> expected = {4, 3, 4, 2, 4, 3, 2, 3, 4};
  EXPECT_TRUE(all_close(forward<T>(g, image, kernel, nullptr), expected, kExactFloat, "out"));
}

TEST(CpuConvForward, LectureExampleFloat) {
  check_lecture_example<float>();
}
TEST(CpuConvForward, LectureExampleDouble) {
  check_lecture_example<double>();
}

std::vector<float> iota_vector(std::size_t count) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = float(i + 1);
  return values;
}

TEST(CpuConvForward, ValidStride2) {
  // in = 1..25 as 5x5, W = [1 2; 3 4], stride 2: out = ceil(4 / 2) = 2 per axis.
  const Conv2dGeometry g = geometry(1, 1, 5, 5, 1, 2, 2, 2, 2, Padding::valid());
  ASSERT_EQ(g.out_h, 2);
  // out[0][0] = 1*1 + 2*2 + 6*3 + 7*4 = 51; out[0][1] = 3 + 8 + 24 + 36 = 71, ...
  const std::vector<double> expected = {51, 71, 151, 171};
  EXPECT_TRUE(all_close(forward<float>(g, iota_vector(25), {1, 2, 3, 4}, nullptr), expected,
                        kExactFloat, "out"));
}

TEST(CpuConvForward, SamePaddingAsymmetric) {
  // 4x4, 2x2 kernel, stride 1, same: total pad 1, all of it at the bottom/right (top gets 0).
  const Conv2dGeometry g = geometry(1, 1, 4, 4, 1, 2, 2, 1, 1, Padding::same());
  ASSERT_EQ(g.pad_top, 0);
  ASSERT_EQ(g.out_h, 4);
  // out[y][x] = in[y][x] + 2 in[y][x+1] + 3 in[y+1][x] + 4 in[y+1][x+1], zeros past the edge.
  const std::vector<double> expected = {44,  54,  64,  28, 84, 94, 104, 44,
                                        124, 134, 144, 60, 41, 44, 47,  16};
  EXPECT_TRUE(all_close(forward<float>(g, iota_vector(16), {1, 2, 3, 4}, nullptr), expected,
                        kExactFloat, "out"));
}

TEST(CpuConvForward, ExplicitPaddingStride1And2) {
  // in = 1..9 as 3x3, W = ones(3x3), 1 zero on every side: each output is a neighbourhood sum.
  const std::vector<float> ones(9, 1.0f);
  const Conv2dGeometry g1 = geometry(1, 1, 3, 3, 1, 3, 3, 1, 1, Padding::explicit_pad(1, 1));
  EXPECT_TRUE(all_close(forward<float>(g1, iota_vector(9), ones, nullptr),
                        std::vector<double>{12, 21, 16, 27, 45, 33, 24, 39, 28}, kExactFloat,
                        "stride 1"));
  // Stride 2 keeps the corner windows only.
  const Conv2dGeometry g2 = geometry(1, 1, 3, 3, 1, 3, 3, 2, 2, Padding::explicit_pad(1, 1));
  ASSERT_EQ(g2.out_h, 2);
  EXPECT_TRUE(all_close(forward<float>(g2, iota_vector(9), ones, nullptr),
                        std::vector<double>{12, 16, 24, 28}, kExactFloat, "stride 2"));
}

TEST(CpuConvForward, BiasAndFusedRelu) {
  const std::vector<float> ones(9, 1.0f);
  const float bias = -30.0f;
  const Conv2dGeometry g = geometry(1, 1, 3, 3, 1, 3, 3, 1, 1, Padding::explicit_pad(1, 1));
  // Neighbourhood sums 12 21 16 / 27 45 33 / 24 39 28, minus 30, clamped at 0.
  EXPECT_TRUE(all_close(forward<float>(g, iota_vector(9), ones, &bias, Activation::relu),
                        std::vector<double>{0, 0, 0, 0, 15, 3, 0, 9, 0}, kExactFloat, "relu"));
  // Leaky ReLU (slope 0.1): negatives scaled instead of clamped.
  EXPECT_TRUE(all_close(forward<float>(g, iota_vector(9), ones, &bias, Activation::leaky_relu),
                        std::vector<double>{-1.8, -0.9, -1.4, -0.3, 15, 3, -0.6, 9, -0.2},
                        kExactFloat, "leaky"));
}

TEST(CpuConvForward, ChannelsFiltersAndBatch) {
  // n = 2 (sample 1 = 2 * sample 0), c = 2, k = 2, 2x2 input and kernel: one output per map.
  const std::vector<float> in = {1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 6, 8, 10, 12, 14, 16};
  const std::vector<float> weight = {1, 0, 0, 0, 0,  0,  0,  1,  // k0: c0 top-left, c1 bottom-right
                                     1, 1, 1, 1, -1, -1, -1, -1};  // k1: sum(c0) - sum(c1)
  const std::vector<float> bias = {0.5f, -0.5f};
  const Conv2dGeometry g = geometry(2, 2, 2, 2, 2, 2, 2, 1, 1, Padding::valid());
  // sample 0: k0 = 1 + 8 + 0.5, k1 = 10 - 26 - 0.5; sample 1 doubles the sums, not the bias.
  EXPECT_TRUE(all_close(forward<float>(g, in, weight, bias.data()),
                        std::vector<double>{9.5, -16.5, 18.5, -32.5}, kExactFloat, "out"));
}

TEST(CpuConvBackward, DataStride2ByHand) {
  // 4x4 input, 2x2 kernel, stride 2: windows do not overlap, so each DZ value scales a copy of W.
  const Conv2dGeometry g = geometry(1, 1, 4, 4, 1, 2, 2, 2, 2, Padding::valid());
  const std::vector<float> dout = {1, 2, 3, 4}, weight = {1, 2, 3, 4};
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::conv2d_backward_data<float>(g, dout.data(), weight.data(), din.data());
  EXPECT_TRUE(all_close(din, std::vector<double>{1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16},
                        kExactFloat, "din"));
}

TEST(CpuConvBackward, DataOverlappingWindowsByHand) {
  // 3x3 input, 2x2 kernel, stride 1, DZ = ones: each input sums the taps that read it.
  const Conv2dGeometry g = geometry(1, 1, 3, 3, 1, 2, 2, 1, 1, Padding::valid());
  const std::vector<float> dout = {1, 1, 1, 1}, weight = {1, 2, 3, 4};
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::conv2d_backward_data<float>(g, dout.data(), weight.data(), din.data());
  EXPECT_TRUE(all_close(din, std::vector<double>{1, 3, 2, 4, 10, 6, 3, 7, 4}, kExactFloat, "din"));
}

TEST(CpuConvBackward, WeightsAndBiasStride2ByHand) {
  // in = 1..16 as 4x4, DZ = [1 2; 3 4], stride 2: DW[i][j] = sum in[2y+i][2x+j] * DZ[y][x].
  const Conv2dGeometry g = geometry(1, 1, 4, 4, 1, 2, 2, 2, 2, Padding::valid());
  const std::vector<float> in = iota_vector(16), dout = {1, 2, 3, 4};
  std::vector<float> dweight = nan_vector<float>(4), dbias = nan_vector<float>(1);
  cpu::conv2d_backward_weights<float>(g, in.data(), dout.data(), dweight.data(), dbias.data(),
                                      nullptr);
  // DW[0][0] = 1*1 + 3*2 + 9*3 + 11*4 = 78, ...
  EXPECT_TRUE(all_close(dweight, std::vector<double>{78, 88, 118, 128}, kExactFloat, "dweight"));
  EXPECT_TRUE(all_close(dbias, std::vector<double>{10}, kExactFloat, "dbias"));
  // Without a bias buffer the weight gradient is unchanged.
  std::vector<float> dweight_only = nan_vector<float>(4);
  cpu::conv2d_backward_weights<float>(g, in.data(), dout.data(), dweight_only.data(), nullptr,
                                      nullptr);
  EXPECT_TRUE(all_close(dweight_only, std::vector<double>{78, 88, 118, 128}, kExactFloat,
                        "dweight, no bias"));
}

// ---- finite differences (double) over many shapes --------------------------------------------

struct ConvCase {
  std::string name;
  int n, c, h, w, k, kh, kw, stride_h, stride_w;
  Padding padding;
};

const ConvCase kGradientCases[] = {
    {"valid 5x5 k3", 1, 1, 5, 5, 1, 3, 3, 1, 1, Padding::valid()},
    {"valid odd 7x6 stride 2", 2, 2, 7, 6, 3, 3, 3, 2, 2, Padding::valid()},
    {"same 7x7 stride 2", 2, 3, 7, 7, 2, 3, 3, 2, 2, Padding::same()},
    {"same 8x8 stride 2 asymmetric", 1, 2, 8, 8, 3, 3, 3, 2, 2, Padding::same()},
    {"same 10x10 k4 stride 3", 2, 2, 10, 10, 2, 4, 4, 3, 3, Padding::same()},
    {"same 9x9 k5 (LeNet conv1)", 1, 1, 9, 9, 2, 5, 5, 1, 1, Padding::same()},
    {"explicit 10x9 stride 3", 2, 2, 10, 9, 2, 4, 3, 3, 3, Padding::explicit_pad(1, 2)},
    {"explicit 6x7 stride 2x3", 1, 3, 6, 7, 2, 3, 2, 2, 3, Padding::explicit_pad(2, 1)},
};

TEST(CpuConvGradient, DataWeightsAndBiasMatchFiniteDifferences) {
  std::uint64_t seed = 100;
  for (const ConvCase& cc : kGradientCases) {
    SCOPED_TRACE(cc.name);
    const Conv2dGeometry g =
        geometry(cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw, cc.stride_h, cc.stride_w, cc.padding);
    const auto in = random_vector<double>(g.in_size(), ++seed);
    const auto weight = random_vector<double>(g.weight_size(), ++seed);
    const auto bias = random_vector<double>(std::size_t(g.k), ++seed);
    const auto upstream = random_vector<double>(g.out_size(), ++seed);  // R in L = sum(out * R)

    std::vector<double> din = nan_vector<double>(g.in_size());
    std::vector<double> dweight = nan_vector<double>(g.weight_size());
    std::vector<double> dbias = nan_vector<double>(std::size_t(g.k));
    cpu::conv2d_backward_data<double>(g, upstream.data(), weight.data(), din.data());
    cpu::conv2d_backward_weights<double>(g, in.data(), upstream.data(), dweight.data(),
                                         dbias.data(), nullptr);

    EXPECT_TRUE(test::check_gradient("din", in, din, [&](const std::vector<double>& x) {
      return test::weighted_sum(forward<double>(g, x, weight, bias.data()), upstream);
    }));
    EXPECT_TRUE(test::check_gradient("dweight", weight, dweight, [&](const std::vector<double>& x) {
      return test::weighted_sum(forward<double>(g, in, x, bias.data()), upstream);
    }));
    EXPECT_TRUE(test::check_gradient("dbias", bias, dbias, [&](const std::vector<double>& x) {
      return test::weighted_sum(forward<double>(g, in, weight, x.data()), upstream);
    }));
  }
}

// The fused forward composed with activation_backward: checks that the fused activation is the
// one the backward pass differentiates.
TEST(CpuConvGradient, FusedActivationsMatchFiniteDifferences) {
  const Conv2dGeometry g = geometry(2, 2, 7, 7, 3, 3, 3, 2, 2, Padding::same());
  const auto in = random_vector<double>(g.in_size(), 7);
  const auto weight = random_vector<double>(g.weight_size(), 8);
  const auto bias = random_vector<double>(std::size_t(g.k), 9);
  const auto upstream = random_vector<double>(g.out_size(), 10);
  for (Activation kind : {Activation::relu, Activation::leaky_relu, Activation::sigmoid}) {
    SCOPED_TRACE(static_cast<int>(kind));
    const std::vector<double> z = forward<double>(g, in, weight, bias.data());
    const std::vector<double> a = forward<double>(g, in, weight, bias.data(), kind);
    std::vector<double> dz = nan_vector<double>(g.out_size());
    cpu::activation_backward<double>(kind, kFusedLeakySlope, g.out_size(), z.data(), a.data(),
                                     upstream.data(), dz.data());
    std::vector<double> din = nan_vector<double>(g.in_size());
    cpu::conv2d_backward_data<double>(g, dz.data(), weight.data(), din.data());
    EXPECT_TRUE(test::check_gradient("din", in, din, [&](const std::vector<double>& x) {
      return test::weighted_sum(forward<double>(g, x, weight, bias.data(), kind), upstream);
    }));
  }
}

// The fused forward writes z and act(z) with the same bits as the plain convolution followed by
// activation_forward, batch, filters, padding and stride included.
template <typename T>
void check_fused_forward_same_bits() {
  for (const ConvCase& cc : kGradientCases) {
    SCOPED_TRACE(cc.name);
    const Conv2dGeometry g =
        geometry(cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw, cc.stride_h, cc.stride_w, cc.padding);
    const auto in = random_vector<T>(g.in_size(), 11);
    const auto weight = random_vector<T>(g.weight_size(), 12);
    const auto bias = random_vector<T>(std::size_t(g.k), 13);
    for (const T* b : {bias.data(), static_cast<const T*>(nullptr)})
      expect_fused_forward_same_bits<T>(g.out_size(), [&](T* z, const FusedActivation<T>& fused) {
        cpu::conv2d_forward<T>(g, in.data(), weight.data(), b, z, fused);
      });
  }
}

TEST(CpuConvForward, FusedActivationIsTheSameBitsFloat) {
  check_fused_forward_same_bits<float>();
}
TEST(CpuConvForward, FusedActivationIsTheSameBitsDouble) {
  check_fused_forward_same_bits<double>();
}

}  // namespace
}  // namespace cnnrt
