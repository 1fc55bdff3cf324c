// Output sizes for valid / same / explicit padding and strides 1-3 (docs/math.md section 1).
#include "cnnrt/shape.hpp"

#include "cnnrt/error.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

struct AxisCase {
  int in, kernel, stride;
  Padding::Mode mode;
  int pad;
  int expected_out, expected_pad_before;
};

TEST(ConvAxis, MatchesTheLectureAndPyTorchRules) {
  const AxisCase cases[] = {
      // valid: ceil((in - k + 1) / s)
      {5, 3, 1, Padding::Mode::valid, 0, 3, 0},
      {28, 5, 1, Padding::Mode::valid, 0, 24, 0},
      {14, 5, 1, Padding::Mode::valid, 0, 10, 0},
      {7, 3, 2, Padding::Mode::valid, 0, 3, 0},   // (5)/2 -> ceil 2.5 = 3
      {8, 3, 2, Padding::Mode::valid, 0, 3, 0},   // 6/2 = 3
      {10, 3, 3, Padding::Mode::valid, 0, 3, 0},  // 8/3 -> ceil 2.67 = 3
      {227, 11, 4, Padding::Mode::valid, 0, 55, 0},
      // same: ceil(in / s), total pad = max((out-1)*s + k - in, 0), top gets floor(total/2)
      {28, 5, 1, Padding::Mode::same, 0, 28, 2},
      {5, 3, 1, Padding::Mode::same, 0, 5, 1},
      {7, 3, 2, Padding::Mode::same, 0, 4, 1},   // total (3*2+3-7)=2
      {8, 3, 2, Padding::Mode::same, 0, 4, 0},   // total (3*2+3-8)=1 -> top 0, bottom 1
      {10, 4, 3, Padding::Mode::same, 0, 4, 1},  // total (3*3+4-10)=3 -> top 1, bottom 2
      {9, 1, 3, Padding::Mode::same, 0, 3, 0},   // total max(6+1-9,0)=0
      // explicit: floor((in + 2p - k) / s) + 1
      {5, 3, 1, Padding::Mode::explicit_, 1, 5, 1},
      {27, 5, 1, Padding::Mode::explicit_, 2, 27, 2},
      {13, 3, 1, Padding::Mode::explicit_, 1, 13, 1},
      {7, 3, 2, Padding::Mode::explicit_, 1, 4, 1},
      {10, 3, 3, Padding::Mode::explicit_, 0, 3, 0},
  };
  for (const auto& c : cases) {
    const AxisGeometry axis = conv_axis(c.in, c.kernel, c.stride, c.mode, c.pad);
    EXPECT_EQ(axis.out, c.expected_out) << "in " << c.in << " k " << c.kernel << " s " << c.stride;
    EXPECT_EQ(axis.pad_before, c.expected_pad_before)
        << "in " << c.in << " k " << c.kernel << " s " << c.stride;
  }
}

TEST(ConvAxis, KernelLargerThanInputDoesNotFit) {
  EXPECT_LE(conv_axis(4, 5, 1, Padding::Mode::valid, 0).out, 0);
  EXPECT_THROW(make_conv2d_geometry("conv2", 1, 6, 4, 4, 16, 5, 5, 1, 1, Padding::valid()), Error);
  try {
    make_conv2d_geometry("conv2", 1, 6, 4, 4, 16, 5, 5, 1, 1, Padding::valid());
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv2: input 6x4x4 does not fit kernel 5x5 with valid padding");
  }
}

// Sizes near int's limit are worked out without overflow (int arithmetic would wrap): the exact
// answers below, or "does not fit" when the padded input is past what the kernels can index.
TEST(ConvAxis, HugeSizesDoNotOverflow) {
  constexpr int kMax = 2147483647;
  // valid: ceil((2^31 - 1 - 1 + 1) / 2) = 2^30
  EXPECT_EQ(conv_axis(kMax, 1, 2, Padding::Mode::valid, 0).out, 1073741824);
  // same: ceil((2^31 - 1) / (2^31 - 1)) = 1, total pad max(0 + 3 - kMax, 0) = 0
  EXPECT_EQ(conv_axis(kMax, 3, kMax, Padding::Mode::same, 0).out, 1);
  // same with a kernel as large as the input: total pad kMax - 1 makes the padded axis too large.
  EXPECT_LE(conv_axis(kMax, kMax, 1, Padding::Mode::same, 0).out, 0);
  // explicit: 28 + 2 * 10^9 = 2000000028 fits; floor((2000000028 - 5) / 1) + 1
  EXPECT_EQ(conv_axis(28, 5, 1, Padding::Mode::explicit_, 1000000000).out, 2000000024);
  EXPECT_LE(conv_axis(28, 5, 1, Padding::Mode::explicit_, kMax).out, 0);
  EXPECT_LE(conv_axis(28, 5, 1, Padding::Mode::explicit_, -1).out, 0);
  const std::string message = test::error_message([] {
    make_conv2d_geometry("conv1", 1, 1, 28, 28, 6, 5, 5, 1, 1, Padding::explicit_pad(kMax, 0));
  });
  EXPECT_TRUE(test::contains(message, "conv1: input 1x28x28 does not fit kernel 5x5"));
}

TEST(PoolSize, FloorRule) {
  EXPECT_EQ(pool_out_size(28, 2, 2), 14);
  EXPECT_EQ(pool_out_size(10, 2, 2), 5);
  EXPECT_EQ(pool_out_size(55, 3, 2), 27);
  EXPECT_EQ(pool_out_size(13, 3, 2), 6);
  EXPECT_EQ(pool_out_size(5, 2, 2), 2);
  EXPECT_LE(pool_out_size(1, 2, 2), 0);
}

}  // namespace
}  // namespace cnnrt
