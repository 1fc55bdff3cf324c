// CPU reference pooling (docs/math.md section 5): the lecture's 2x2 average backward (DZ / 4),
// max-pool ties routing to the first maximum, overlapping windows, finite-difference checks and the
// fused activation in front.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/network.hpp"
#include "kernels/cpu/pool.hpp"
#include "kernels/ops.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};

Pool2dGeometry geometry(int n, int c, int h, int w, int win, int stride) {
  return make_pool2d_geometry("test", n, c, h, w, win, win, stride, stride);
}

std::vector<float> iota_vector(std::size_t count) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = float(i + 1);
  return values;
}

TEST(CpuAvgPool, ForwardIsTheWindowMean) {
  const Pool2dGeometry g = geometry(1, 1, 4, 4, 2, 2);
  std::vector<float> out = nan_vector<float>(g.out_size());
  cpu::avg_pool_forward<float>(g, iota_vector(16).data(), out.data());
  // mean(1, 2, 5, 6) = 3.5, mean(3, 4, 7, 8) = 5.5, ...
  EXPECT_TRUE(all_close(out, std::vector<double>{3.5, 5.5, 11.5, 13.5}, kFloatTol, "out"));
}

TEST(CpuGlobalAvgPool, MeanOfEachPlaneAndItsShareBack) {
  // global_avg_pool is average pooling with one window the size of the plane: 2 samples x 2
  // channels of 2x3, values 1..24, means 3.5, 9.5, 15.5, 21.5.
  const Pool2dGeometry g = make_pool2d_geometry("test", 2, 2, 2, 3, 2, 3, 2, 3);
  ASSERT_EQ(g.out_h * g.out_w, 1);
  std::vector<float> out = nan_vector<float>(g.out_size());
  cpu::avg_pool_forward<float>(g, iota_vector(24).data(), out.data());
  EXPECT_TRUE(all_close(out, std::vector<double>{3.5, 9.5, 15.5, 21.5}, kFloatTol, "out"));
  const std::vector<float> dout = {6, 12, -3, 0};
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::avg_pool_backward<float>(g, dout.data(), din.data(), {});
  std::vector<double> expected;
  for (double d : {1.0, 2.0, -0.5, 0.0}) expected.insert(expected.end(), 6, d);  // dout / 6
  EXPECT_TRUE(all_close(din, expected, kFloatTol, "din"));
}

TEST(CpuGlobalAvgPool, LayerGivesOneValuePerChannel) {
  Network network(SampleShape{3, 5, 4}, 2, "gap");
  network.global_avg_pool().dense(2);
  EXPECT_EQ(network.layers()[0].name, "pool1");
  EXPECT_EQ(network.infer_shapes()[0].to_string(), "3x1x1");
  const std::vector<LayerCost> costs = layer_costs(network);
  EXPECT_EQ(costs[0].description, "global avg pool");
  EXPECT_EQ(costs[0].parameters, 0);
  EXPECT_EQ(costs[0].flops, 60);
  EXPECT_EQ(network_from_json(network_to_json(network), "round trip").layers()[0].type,
            "global_avg_pool");
}

TEST(CpuAvgPool, LectureBackwardGivesQuarterOfDz) {
  const Pool2dGeometry g = geometry(1, 1, 4, 4, 2, 2);
  const std::vector<float> dout = {1, 2, 3, 4};
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::avg_pool_backward<float>(g, dout.data(), din.data(), {});
  EXPECT_TRUE(all_close(din,
                        std::vector<double>{0.25, 0.25, 0.5, 0.5, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75,
                                            1, 1, 0.75, 0.75, 1, 1},
                        kFloatTol, "din"));
}

TEST(CpuAvgPool, OverlappingWindowsSumInBackward) {
  // 3x3 windows, stride 2, on 5x5: rows/columns 0, 1, 3, 4 lie in one window, 2 in two.
  const Pool2dGeometry g = geometry(1, 1, 5, 5, 3, 2);
  ASSERT_EQ(g.out_h, 2);
  const std::vector<float> dout(4, 9.0f);  // 9 / 9 = 1 per covering window
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::avg_pool_backward<float>(g, dout.data(), din.data(), {});
  const double cover[5] = {1, 1, 2, 1, 1};
  std::vector<double> expected;
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 5; ++x) expected.push_back(cover[y] * cover[x]);
  EXPECT_TRUE(all_close(din, expected, kFloatTol, "din"));
}

TEST(CpuMaxPool, ForwardAndArgmaxByHand) {
  // Two planes (n = 1, c = 2); argmax is y * w + x inside each plane.
  const std::vector<float> in = {
      1,  9,  2,  0,   //
      3,  4,  8,  5,   //
      7,  0,  1,  1,   //
      6,  2,  3,  4,   //
      -5, -1, -9, -9,  //
      -2, -3, -9, -8,  //
      0,  0,  -1, -1,  //
      0,  0,  -1, -1,
  };
  const Pool2dGeometry g = geometry(1, 2, 4, 4, 2, 2);
  std::vector<float> out = nan_vector<float>(g.out_size());
  std::vector<std::int32_t> argmax(g.out_size(), -1);
  cpu::max_pool_forward<float>(g, in.data(), out.data(), argmax.data());
  EXPECT_TRUE(all_close(out, std::vector<double>{9, 8, 7, 4, -1, -8, 0, -1}, kFloatTol, "out"));
  // Plane 1's last two windows are all ties: the first, row-major, wins.
  EXPECT_EQ(argmax, (std::vector<std::int32_t>{1, 6, 8, 15, 1, 7, 8, 10}));
}

TEST(CpuMaxPool, TiesRouteToTheFirstMaximum) {
  // Window values 1 5 / 5 5: the maximum 5 appears three times; row-major first is (0, 1).
  const std::vector<float> in = {1, 5, 5, 5};
  const Pool2dGeometry g = geometry(1, 1, 2, 2, 2, 2);
  std::vector<float> out = nan_vector<float>(1);
  std::vector<std::int32_t> argmax(1, -1);
  cpu::max_pool_forward<float>(g, in.data(), out.data(), argmax.data());
  EXPECT_EQ(out[0], 5.0f);
  EXPECT_EQ(argmax[0], 1);
  const std::vector<float> dout = {2.5f};
  std::vector<float> din = nan_vector<float>(4);
  cpu::max_pool_backward<float>(g, dout.data(), argmax.data(), din.data(), {});
  EXPECT_TRUE(all_close(din, std::vector<double>{0, 2.5, 0, 0}, kFloatTol, "din"));
}

TEST(CpuMaxPool, OverlappingWindowsSumInBackward) {
  // 3x3 stride 2 on 5x5 with the global maximum at the centre: all four windows pick it.
  std::vector<float> in(25, 0.0f);
  in[2 * 5 + 2] = 10.0f;
  const Pool2dGeometry g = geometry(1, 1, 5, 5, 3, 2);
  std::vector<float> out = nan_vector<float>(g.out_size());
  std::vector<std::int32_t> argmax(g.out_size(), -1);
  cpu::max_pool_forward<float>(g, in.data(), out.data(), argmax.data());
  EXPECT_EQ(argmax, (std::vector<std::int32_t>{12, 12, 12, 12}));
  const std::vector<float> dout = {1, 2, 3, 4};
  std::vector<float> din = nan_vector<float>(g.in_size());
  cpu::max_pool_backward<float>(g, dout.data(), argmax.data(), din.data(), {});
  std::vector<double> expected(25, 0.0);
  expected[12] = 10.0;
  EXPECT_TRUE(all_close(din, expected, kFloatTol, "din"));
}

// ---- finite differences (double) ------------------------------------------------------------

struct PoolCase {
  std::string name;
  int n, c, h, w, win_h, win_w, stride_h, stride_w;
};

const PoolCase kGradientCases[] = {
    {"2x2 stride 2", 2, 3, 4, 4, 2, 2, 2, 2},
    {"2x2 stride 2 odd input", 1, 2, 5, 7, 2, 2, 2, 2},
    {"3x3 stride 2 overlapping", 2, 2, 7, 7, 3, 3, 2, 2},
    {"3x3 stride 2 overlapping, even input", 1, 3, 6, 8, 3, 3, 2, 2},
    {"3x3 stride 3", 1, 2, 9, 10, 3, 3, 3, 3},
    {"2x3 window stride 1x2", 2, 1, 5, 7, 2, 3, 1, 2},
};

Pool2dGeometry geometry(const PoolCase& pc) {
  return make_pool2d_geometry("test", pc.n, pc.c, pc.h, pc.w, pc.win_h, pc.win_w, pc.stride_h,
                              pc.stride_w);
}

TEST(CpuPoolGradient, MaxAndAvgMatchFiniteDifferences) {
  std::uint64_t seed = 300;
  for (const PoolCase& pc : kGradientCases) {
    SCOPED_TRACE(pc.name);
    const Pool2dGeometry g = geometry(pc);
    const auto in = random_vector<double>(g.in_size(), ++seed);
    const auto upstream = random_vector<double>(g.out_size(), ++seed);

    std::vector<double> out = nan_vector<double>(g.out_size());
    std::vector<std::int32_t> argmax(g.out_size(), -1);
    cpu::max_pool_forward<double>(g, in.data(), out.data(), argmax.data());
    std::vector<double> din = nan_vector<double>(g.in_size());
    cpu::max_pool_backward<double>(g, upstream.data(), argmax.data(), din.data(), {});
    EXPECT_TRUE(test::check_gradient("max din", in, din, [&](const std::vector<double>& x) {
      std::vector<double> y(g.out_size());
      std::vector<std::int32_t> index(g.out_size());
      cpu::max_pool_forward<double>(g, x.data(), y.data(), index.data());
      return test::weighted_sum(y, upstream);
    }));

    std::vector<double> avg_din = nan_vector<double>(g.in_size());
    cpu::avg_pool_backward<double>(g, upstream.data(), avg_din.data(), {});
    EXPECT_TRUE(test::check_gradient("avg din", in, avg_din, [&](const std::vector<double>& x) {
      std::vector<double> y(g.out_size());
      cpu::avg_pool_forward<double>(g, x.data(), y.data());
      return test::weighted_sum(y, upstream);
    }));
  }
}

// Both backward passes with an activation fused in front: the same bits as the plain backward
// followed by activation_backward, overlapping windows and uncovered inputs included.
template <typename T>
void check_fused_backward_same_bits() {
  std::uint64_t seed = 400;
  for (const PoolCase& pc : kGradientCases) {
    SCOPED_TRACE(pc.name);
    const Pool2dGeometry g = geometry(pc);
    const auto in = random_vector<T>(g.in_size(), ++seed);
    const auto dout = random_vector<T>(g.out_size(), ++seed);
    std::vector<T> out(g.out_size());
    std::vector<std::int32_t> argmax(g.out_size());
    cpu::max_pool_forward<T>(g, in.data(), out.data(), argmax.data());
    {
      SCOPED_TRACE("max");
      expect_fused_backward_same_bits<T>(
          g.in_size(), ++seed, [&](T* din, const FusedActivationGrad<T>& fused) {
            cpu::max_pool_backward<T>(g, dout.data(), argmax.data(), din, fused);
          });
    }
    SCOPED_TRACE("avg");
    expect_fused_backward_same_bits<T>(g.in_size(), ++seed,
                                       [&](T* din, const FusedActivationGrad<T>& fused) {
                                         cpu::avg_pool_backward<T>(g, dout.data(), din, fused);
                                       });
  }
}

TEST(CpuPoolGradient, FusedActivationIsTheSameBitsFloat) {
  check_fused_backward_same_bits<float>();
}
TEST(CpuPoolGradient, FusedActivationIsTheSameBitsDouble) {
  check_fused_backward_same_bits<double>();
}

}  // namespace
}  // namespace cnnrt
