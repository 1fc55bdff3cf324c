// CUDA max and average pooling against the CPU reference (kernels/cpu/pool.cpp): exact values and
// argmax routing for max pooling (ties included), gathers over overlapping windows (3x3 stride 2)
// in both backward passes, LeNet and AlexNet shapes, a seeded random sweep of sizes 1..33, and
// the backward pass of each activation fused into the pooling's.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/pool.hpp"
#include "kernels/cuda/pool.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Max pooling copies values: exact. The gathers sum at most ceil(win/stride)^2 terms in the same
// order as the CPU; average pooling multiplies by 1/(kh*kw) where the CPU divides (an ulp).
constexpr test::Tolerance kExact{0.0, 0.0};
constexpr test::Tolerance kPoolSum{1e-6, 1e-5};

struct PoolCase {
  int n, c, h, w, win_h, win_w, stride_h, stride_w;
};

std::string describe(const PoolCase& pc) {
  return "n" + std::to_string(pc.n) + " c" + std::to_string(pc.c) + " " + std::to_string(pc.h) +
         "x" + std::to_string(pc.w) + " win " + std::to_string(pc.win_h) + "x" +
         std::to_string(pc.win_w) + " s" + std::to_string(pc.stride_h) + "x" +
         std::to_string(pc.stride_w);
}

// `levels` > 0 quantises the input to that many values, so windows hold many ties.
void check_case(const PoolCase& pc, std::uint64_t seed, int levels = 0) {
  SCOPED_TRACE(describe(pc) + (levels > 0 ? " quantised" : ""));
  const Pool2dGeometry g = make_pool2d_geometry("test", pc.n, pc.c, pc.h, pc.w, pc.win_h, pc.win_w,
                                                pc.stride_h, pc.stride_w);
  std::vector<float> in = random_vector<float>(g.in_size(), seed);
  if (levels > 0)
    for (float& v : in) v = float(int((v + 1.0f) * 0.5f * float(levels)));  // 0 .. levels-1
  const std::vector<float> dout = random_vector<float>(g.out_size(), seed + 1);
  const auto in_dev = to_device(in);
  const auto dout_dev = to_device(dout);

  // Max forward: values and argmax exact.
  std::vector<float> out_expected(g.out_size());
  std::vector<std::int32_t> argmax_expected(g.out_size());
  cpu::max_pool_forward(g, in.data(), out_expected.data(), argmax_expected.data());
  auto out_dev = poisoned<float>(g.out_size());
  auto argmax_dev = poisoned<std::int32_t>(g.out_size());
  cuda::max_pool_forward(g, in_dev.data(), out_dev.data(), argmax_dev.data(), nullptr);
  EXPECT_TRUE(all_close(out_dev.download(), out_expected, kExact, "max forward"));
  EXPECT_TRUE(all_close(argmax_dev.download(), argmax_expected, kExact, "max argmax"));

  // Max backward, both sides routing through the CPU's argmax.
  std::vector<float> din_expected(g.in_size());
  cpu::max_pool_backward(g, dout.data(), argmax_expected.data(), din_expected.data(), {});
  const auto argmax_in = to_device(argmax_expected);
  auto din_dev = poisoned<float>(g.in_size());
  cuda::max_pool_backward(g, dout_dev.data(), argmax_in.data(), din_dev.data(), {}, nullptr);
  ASSERT_TRUE(any_nonzero(din_expected));
  EXPECT_TRUE(all_close(din_dev.download(), din_expected, kPoolSum, "max backward"));

  // Average forward and backward.
  std::vector<float> avg_expected(g.out_size());
  cpu::avg_pool_forward(g, in.data(), avg_expected.data());
  auto avg_dev = poisoned<float>(g.out_size());
  cuda::avg_pool_forward(g, in_dev.data(), avg_dev.data(), nullptr);
  EXPECT_TRUE(all_close(avg_dev.download(), avg_expected, kPoolSum, "avg forward"));

  std::vector<float> avg_din_expected(g.in_size());
  cpu::avg_pool_backward(g, dout.data(), avg_din_expected.data(), {});
  auto avg_din_dev = poisoned<float>(g.in_size());
  cuda::avg_pool_backward(g, dout_dev.data(), avg_din_dev.data(), {}, nullptr);
  ASSERT_TRUE(any_nonzero(avg_din_expected));
  EXPECT_TRUE(all_close(avg_din_dev.download(), avg_din_expected, kPoolSum, "avg backward"));
}

TEST(CudaPool, HandPickedShapes) {
  CNNRT_REQUIRE_GPU();
  const std::vector<PoolCase> cases{
      {1, 1, 1, 1, 1, 1, 1, 1},
      {1, 1, 2, 2, 2, 2, 2, 2},
      {7, 3, 5, 5, 2, 2, 2, 2},
      {7, 6, 7, 9, 3, 3, 2, 2},
      {1, 3, 33, 31, 3, 3, 2, 2},
      {7, 1, 13, 17, 2, 3, 1, 3},
      {64, 6, 11, 11, 3, 2, 3, 1},
      {1, 6, 4, 29, 4, 1, 1, 2},
      {7, 3, 23, 19, 1, 1, 3, 3},
      // Windows that tile the input exactly (max pool's backward: one thread per window).
      {5, 2, 9, 8, 3, 2, 3, 2},
      {3, 4, 6, 12, 1, 4, 1, 4},
  };
  std::uint64_t seed = 200;
  for (const PoolCase& pc : cases) check_case(pc, seed += 10);
}

// Quantised inputs: many equal values per window, so argmax must pick the first maximum in
// row-major order exactly as the CPU does.
TEST(CudaPool, TiesPickTheFirstMaximum) {
  CNNRT_REQUIRE_GPU();
  check_case({7, 3, 17, 17, 3, 3, 2, 2}, 300, 2);
  check_case({7, 3, 16, 16, 2, 2, 2, 2}, 310, 3);
  check_case({1, 6, 31, 29, 3, 3, 1, 1}, 320, 2);
}

TEST(CudaPool, RandomShapes) {
  CNNRT_REQUIRE_GPU();
  std::mt19937 rng(7031);
  const int channels[] = {1, 3, 6}, batches[] = {1, 7};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < 40; ++trial) {
    PoolCase pc{};
    pc.n = batches[pick(0, 1)];
    pc.c = channels[pick(0, 2)];
    pc.h = pick(1, 33);
    pc.w = pick(1, 33);
    pc.win_h = pick(1, std::min(pc.h, 4));
    pc.win_w = pick(1, std::min(pc.w, 4));
    pc.stride_h = pick(1, 3);
    pc.stride_w = pick(1, 3);
    check_case(pc, 2000 + std::uint64_t(trial) * 10);
  }
}

TEST(CudaPool, LeNetAndAlexNetShapes) {
  CNNRT_REQUIRE_GPU();
  check_case({256, 6, 28, 28, 2, 2, 2, 2}, 401);   // LeNet pool 1
  check_case({256, 16, 10, 10, 2, 2, 2, 2}, 411);  // LeNet pool 2
  check_case({2, 96, 55, 55, 3, 3, 2, 2}, 421);    // AlexNet pool 1 (overlapping)
  check_case({2, 256, 27, 27, 3, 3, 2, 2}, 431);   // AlexNet pool 2
  check_case({2, 256, 13, 13, 3, 3, 2, 2}, 441);   // AlexNet pool 5
}

// Each activation's backward pass fused into the pooling's (the executor runs conv -> activation
// -> pool this way): against the reference pooling backward followed by the reference activation
// backward, for max and average pooling.
TEST(CudaPool, FusedActivationBackward) {
  CNNRT_REQUIRE_GPU();
  const std::vector<PoolCase> cases{
      {256, 6, 28, 28, 2, 2, 2, 2},  // LeNet pool 1
      {7, 16, 10, 10, 2, 2, 2, 2},   // LeNet pool 2
      {2, 5, 13, 11, 3, 3, 2, 2},    // overlapping windows
      {3, 2, 9, 7, 2, 3, 3, 2},      // inputs no window covers
  };
  std::uint64_t seed = 900;
  for (const PoolCase& pc : cases) {
    SCOPED_TRACE(describe(pc));
    const Pool2dGeometry g = make_pool2d_geometry("test", pc.n, pc.c, pc.h, pc.w, pc.win_h,
                                                  pc.win_w, pc.stride_h, pc.stride_w);
    const std::vector<float> dout = random_vector<float>(g.out_size(), seed += 10);
    const auto dout_dev = to_device(dout);
    for (const Activation kind : kFusibleActivations) {
      SCOPED_TRACE("activation " + std::to_string(int(kind)));
      const ActivationPair act(kind, g.in_size(), seed + 1);
      // The pooling's input is the activation's output.
      std::vector<float> pooled(g.out_size());
      std::vector<std::int32_t> argmax(g.out_size());
      cpu::max_pool_forward(g, act.a.data(), pooled.data(), argmax.data());
      const auto argmax_dev = to_device(argmax);

      std::vector<float> da(g.in_size());
      cpu::max_pool_backward(g, dout.data(), argmax.data(), da.data(), {});
      const std::vector<float> max_expected = act.backward(da);
      ASSERT_TRUE(any_nonzero(max_expected));
      auto max_dev = poisoned<float>(g.in_size());
      cuda::max_pool_backward(g, dout_dev.data(), argmax_dev.data(), max_dev.data(), act.fused(),
                              nullptr);
      EXPECT_TRUE(all_close(max_dev.download(), max_expected, kPoolSum, "fused max backward"));

      cpu::avg_pool_backward(g, dout.data(), da.data(), {});
      const std::vector<float> avg_expected = act.backward(da);
      ASSERT_TRUE(any_nonzero(avg_expected));
      auto avg_dev = poisoned<float>(g.in_size());
      cuda::avg_pool_backward(g, dout_dev.data(), avg_dev.data(), act.fused(), nullptr);
      EXPECT_TRUE(all_close(avg_dev.download(), avg_expected, kPoolSum, "fused avg backward"));
    }
  }
}

// global_avg_pool runs average pooling with one window the size of the plane: a sum of h * w
// values per output.
TEST(CudaPool, GlobalAveragePooling) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 1300;
  for (const PoolCase& pc :
       {PoolCase{128, 64, 7, 7, 7, 7, 7, 7}, PoolCase{3, 5, 28, 28, 28, 28, 28, 28},
        PoolCase{9, 2, 1, 1, 1, 1, 1, 1}, PoolCase{4, 3, 5, 11, 5, 11, 5, 11}}) {
    SCOPED_TRACE(describe(pc));
    const Pool2dGeometry g =
        make_pool2d_geometry("test", pc.n, pc.c, pc.h, pc.w, pc.h, pc.w, pc.h, pc.w);
    ASSERT_EQ(g.out_h * g.out_w, 1);
    const std::vector<float> in = random_vector<float>(g.in_size(), seed += 10);
    const std::vector<float> dout = random_vector<float>(g.out_size(), seed + 1);
    std::vector<double> mean(g.out_size(), 0.0), share(g.in_size());
    const std::size_t plane = std::size_t(pc.h) * pc.w;
    for (std::size_t i = 0; i < g.in_size(); ++i) {
      mean[i / plane] += double(in[i]) / double(plane);
      share[i] = double(dout[i / plane]) / double(plane);
    }
    const auto in_dev = to_device(in);
    const auto dout_dev = to_device(dout);
    auto out_dev = poisoned<float>(g.out_size());
    cuda::avg_pool_forward(g, in_dev.data(), out_dev.data(), nullptr);
    EXPECT_TRUE(all_close(out_dev.download(), mean, summed_tolerance(plane), "forward"));
    auto din_dev = poisoned<float>(g.in_size());
    cuda::avg_pool_backward(g, dout_dev.data(), din_dev.data(), {}, nullptr);
    EXPECT_TRUE(all_close(din_dev.download(), share, kPoolSum, "backward"));
  }
}

}  // namespace
}  // namespace cnnrt
