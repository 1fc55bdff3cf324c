// The implicit-GEMM index arithmetic (kernels/implicit_gemm.hpp), checked on the CPU: a tiled
// GEMM loop built only from those functions (staging A and B tiles as a tensor-core kernel does,
// zeros outside the matrices) runs forward, backward-data and backward-weights, compared with the
// plain-loop reference (kernels/cpu/conv.cpp) for every LeNet-5, Fashion-MNIST and AlexNet preset
// convolution and for odd shapes, under several tile sizes.
#include "kernels/implicit_gemm.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/shape.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace igemm;
using test::Tolerance;

// Both sides run in double and differ only in summation order; any index error is O(0.1).
constexpr Tolerance kSameSumDouble{1e-10, 1e-10};

struct Shape {
  std::string name;
  int n, c, h, w, k, kh, kw, stride_h, stride_w;
  Padding padding;
};

Conv2dGeometry geometry(const Shape& s) {
  return make_conv2d_geometry(s.name.c_str(), s.n, s.c, s.h, s.w, s.k, s.kh, s.kw, s.stride_h,
                              s.stride_w, s.padding);
}

// The presets' convolutions (tools/presets/*.json), at batch 1 or 2 to keep the CPU time short.
const std::vector<Shape>& preset_shapes() {
  static const std::vector<Shape> shapes = {
      {"lenet5.conv1", 2, 1, 28, 28, 6, 5, 5, 1, 1, Padding::same()},
      {"lenet5.conv2", 2, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid()},
      {"fmnist-bn.conv1", 2, 1, 28, 28, 32, 3, 3, 1, 1, Padding::same()},
      {"fmnist-bn.conv2", 2, 32, 14, 14, 64, 3, 3, 1, 1, Padding::same()},
      {"alexnet.conv1", 1, 3, 227, 227, 96, 11, 11, 4, 4, Padding::valid()},
      {"alexnet.conv2", 1, 96, 27, 27, 256, 5, 5, 1, 1, Padding::explicit_pad(2, 2)},
      {"alexnet.conv3", 1, 256, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1)},
      {"alexnet.conv4", 1, 384, 13, 13, 384, 3, 3, 1, 1, Padding::explicit_pad(1, 1)},
      {"alexnet.conv5", 1, 384, 13, 13, 256, 3, 3, 1, 1, Padding::explicit_pad(1, 1)},
  };
  return shapes;
}

// Strides 2 and 3 (with gaps where the stride passes the kernel), asymmetric "same" padding of
// even kernels, non-square kernels and strides, 1x1, a kernel as large as the input, channel
// counts that are not multiples of any tile.
const std::vector<Shape>& odd_shapes() {
  static const std::vector<Shape> shapes = {
      {"s2_pad1_3x3", 3, 5, 9, 11, 7, 3, 3, 2, 2, Padding::explicit_pad(1, 1)},
      {"s3_gaps_2x2", 2, 3, 10, 8, 5, 2, 2, 3, 3, Padding::valid()},
      {"s3_same_5x5", 1, 4, 13, 10, 9, 5, 5, 3, 3, Padding::same()},
      {"same_even_4x4", 2, 3, 7, 6, 5, 4, 4, 1, 1, Padding::same()},
      {"s2_same_even_2x4", 1, 2, 9, 12, 3, 2, 4, 2, 2, Padding::same()},
      {"nonsquare_3x1_s1x2", 2, 6, 8, 9, 4, 3, 1, 1, 2, Padding::explicit_pad(1, 0)},
      {"nonsquare_1x5_s2x1", 1, 3, 5, 12, 6, 1, 5, 2, 1, Padding::explicit_pad(0, 2)},
      {"pointwise_1x1", 1, 3, 6, 5, 130, 1, 1, 1, 1, Padding::valid()},
      {"pointwise_1x1_s2", 2, 70, 5, 7, 3, 1, 1, 2, 2, Padding::valid()},
      {"kernel_is_input", 2, 4, 5, 5, 3, 5, 5, 1, 1, Padding::valid()},
      {"channels_65_to_33", 1, 65, 6, 6, 33, 3, 3, 1, 1, Padding::explicit_pad(1, 1)},
      {"wide_pad_3", 1, 2, 4, 4, 2, 3, 3, 1, 1, Padding::explicit_pad(3, 3)},
  };
  return shapes;
}

// A common tensor-core tile, the WMMA TF32 kernel's, then odd sizes that leave partial tiles in
// every dimension.
const std::vector<GemmTile>& tiles() {
  static const std::vector<GemmTile> t = {{64, 64, 32},
                                          {kTf32ConvTileM, kTf32ConvTileN, kTf32ConvTileR},
                                          {33, 17, 7},
                                          {1, 5, 64},
                                          {128, 16, 8}};
  return t;
}

// A CPU stand-in for one thread block per (tile_m, tile_n): it stages tile.m x tile.r of A and
// tile.r x tile.n of B per reduction step through the loaders (zero outside the matrices, as a
// kernel's bounds-checked shared-memory fill), accumulates, and stores the in-range outputs. A
// tile dimension larger than the matrix's is cut to the matrix's rounded up to 8, as a kernel
// picks a narrower tile for AlexNet conv1's 3 input channels; zeros of A (padding, stride gaps)
// skip their multiply, which changes no sum.
template <typename LoadA, typename LoadB, typename Store>
void tiled_gemm(const GemmShape& s, GemmTile t, LoadA load_a, LoadB load_b, Store store) {
  const auto cut = [](int tile, int size) { return tile <= size ? tile : ceil_div(size, 8) * 8; };
  t = {cut(t.m, s.m), cut(t.n, s.n), cut(t.r, s.r)};
  const TileCounts tc = tile_counts(s, t);
  std::vector<double> a(std::size_t(t.m) * t.r), b(std::size_t(t.r) * t.n),
      acc(std::size_t(t.m) * t.n);
  for (int tm = 0; tm < tc.m; ++tm)
    for (int tn = 0; tn < tc.n; ++tn) {
      const int m0 = tile_begin(tm, t.m), m1 = tile_end(tm, t.m, s.m);
      const int n0 = tile_begin(tn, t.n), n1 = tile_end(tn, t.n, s.n);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int tr = 0; tr < tc.r; ++tr) {
        const int r0 = tile_begin(tr, t.r), r1 = tile_end(tr, t.r, s.r);
        for (int mm = 0; mm < t.m; ++mm)
          for (int rr = 0; rr < t.r; ++rr) {
            const int m = m0 + mm, r = r0 + rr;
            a[std::size_t(mm) * t.r + rr] = m < m1 && r < r1 ? load_a(m, r) : 0.0;
          }
        for (int rr = 0; rr < t.r; ++rr)
          for (int nn = 0; nn < t.n; ++nn) {
            const int r = r0 + rr, n = n0 + nn;
            b[std::size_t(rr) * t.n + nn] = r < r1 && n < n1 ? load_b(r, n) : 0.0;
          }
        for (int mm = 0; mm < t.m; ++mm)
          for (int rr = 0; rr < t.r; ++rr) {
            const double av = a[std::size_t(mm) * t.r + rr];
            if (av == 0.0) continue;
            const double* brow = &b[std::size_t(rr) * t.n];
            double* crow = &acc[std::size_t(mm) * t.n];
            for (int nn = 0; nn < t.n; ++nn) crow[nn] += av * brow[nn];
          }
      }
      for (int m = m0; m < m1; ++m)
        for (int n = n0; n < n1; ++n) store(m, n, acc[std::size_t(m - m0) * t.n + (n - n0)]);
    }
}

double at(const std::vector<double>& v, std::int64_t offset) {
  return offset < 0 ? 0.0 : v[std::size_t(offset)];
}

struct Tensors {
  std::vector<double> in, weight, bias, dout;
};

Tensors random_tensors(const Conv2dGeometry& g) {
  return {test::random_vector<double>(g.in_size(), 1),
          test::random_vector<double>(g.weight_size(), 2),
          test::random_vector<double>(std::size_t(g.k), 3),
          test::random_vector<double>(g.out_size(), 4)};
}

std::vector<double> gemm_forward(const Conv2dGeometry& g, const GemmTile& tile, const Tensors& x) {
  std::vector<double> out = test::nan_vector<double>(g.out_size());
  tiled_gemm(
      forward_gemm(g), tile,
      [&](int m, int r) { return at(x.in, forward_a(g, out_pixel(g, m), filter_tap(g, r))); },
      [&](int r, int n) { return at(x.weight, forward_b(g, r, n)); },
      [&](int m, int n, double v) {
        out[std::size_t(forward_c(g, out_pixel(g, m), n))] = v + x.bias[std::size_t(n)];
      });
  return out;
}

std::vector<double> gemm_backward_data(const Conv2dGeometry& g, const GemmTile& tile,
                                       const Tensors& x) {
  std::vector<double> din = test::nan_vector<double>(g.in_size());
  int row = -1;  // the tile fill walks a row's taps in turn: its pixel is decomposed once
  InPixel q;
  tiled_gemm(
      backward_data_gemm(g), tile,
      [&](int m, int r) {
        if (m != row) q = in_pixel(g, row = m);
        return at(x.dout, backward_data_a(g, q, filter_tap(g, r)));
      },
      [&](int r, int n) { return at(x.weight, backward_data_b(g, filter_tap(g, r), n)); },
      [&](int m, int n, double v) { din[std::size_t(backward_data_c(g, in_pixel(g, m), n))] = v; });
  return din;
}

std::vector<double> gemm_backward_weights(const Conv2dGeometry& g, const GemmTile& tile,
                                          const Tensors& x) {
  std::vector<double> dweight = test::nan_vector<double>(g.weight_size());
  tiled_gemm(
      backward_weights_gemm(g), tile,
      [&](int m, int r) { return at(x.dout, backward_weights_a(g, m, out_pixel(g, r))); },
      [&](int r, int n) {
        return at(x.in, backward_weights_b(g, out_pixel(g, r), filter_tap(g, n)));
      },
      [&](int m, int n, double v) { dweight[std::size_t(backward_weights_c(g, m, n))] = v; });
  return dweight;
}

// db[m]: the row sums of backward-weights' A.
std::vector<double> gemm_backward_bias(const Conv2dGeometry& g, const Tensors& x) {
  const GemmShape s = backward_weights_gemm(g);
  std::vector<double> dbias(std::size_t(s.m), 0.0);
  for (int m = 0; m < s.m; ++m)
    for (int r = 0; r < s.r; ++r)
      dbias[std::size_t(m)] += at(x.dout, backward_weights_a(g, m, out_pixel(g, r)));
  return dbias;
}

void check_shape(const Shape& shape, const std::vector<GemmTile>& tile_list) {
  SCOPED_TRACE(shape.name);
  const Conv2dGeometry g = geometry(shape);
  ASSERT_TRUE(gemm_fits_int(g));
  const Tensors x = random_tensors(g);

  std::vector<double> out = test::nan_vector<double>(g.out_size());
  std::vector<double> din = test::nan_vector<double>(g.in_size());
  std::vector<double> dweight = test::nan_vector<double>(g.weight_size());
  std::vector<double> dbias = test::nan_vector<double>(std::size_t(g.k));
  cpu::conv2d_forward<double>(g, x.in.data(), x.weight.data(), x.bias.data(), out.data(),
                              FusedActivation<double>{});
  cpu::conv2d_backward_data<double>(g, x.dout.data(), x.weight.data(), din.data());
  cpu::conv2d_backward_weights<double>(g, x.in.data(), x.dout.data(), dweight.data(), dbias.data(),
                                       nullptr);
  ASSERT_TRUE(test::any_nonzero(din));
  ASSERT_TRUE(test::any_nonzero(dweight));
  ASSERT_TRUE(test::any_nonzero(dbias));

  for (const GemmTile& tile : tile_list) {
    SCOPED_TRACE(testing::Message() << "tile " << tile.m << "x" << tile.n << "x" << tile.r);
    EXPECT_TRUE(test::all_close(gemm_forward(g, tile, x), out, kSameSumDouble, "forward"));
    EXPECT_TRUE(
        test::all_close(gemm_backward_data(g, tile, x), din, kSameSumDouble, "backward-data"));
    EXPECT_TRUE(test::all_close(gemm_backward_weights(g, tile, x), dweight, kSameSumDouble,
                                "backward-weights"));
  }
  EXPECT_TRUE(test::all_close(gemm_backward_bias(g, x), dbias, kSameSumDouble, "backward-bias"));
}

bool is_alexnet(const Shape& s) {
  return s.name.rfind("alexnet.", 0) == 0;
}

class PresetShape : public testing::TestWithParam<Shape> {};
class OddShape : public testing::TestWithParam<Shape> {};

// LeNet-5 and Fashion-MNIST under every tile; AlexNet under the WMMA TF32 kernel's tile only (its
// larger layers take seconds per pass on the CPU; the odd shapes cover the partial tiles).
TEST_P(PresetShape, MatchesReference) {
  const std::vector<GemmTile> kernel_tile = {tiles()[1]};
  check_shape(GetParam(), is_alexnet(GetParam()) ? kernel_tile : tiles());
}

TEST_P(OddShape, MatchesReference) {
  check_shape(GetParam(), tiles());
}

std::string shape_name(const testing::TestParamInfo<Shape>& info) {
  std::string name = info.param.name;
  for (char& ch : name)
    if (ch == '.' || ch == '-') ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Presets, PresetShape, testing::ValuesIn(preset_shapes()), shape_name);
INSTANTIATE_TEST_SUITE_P(Odd, OddShape, testing::ValuesIn(odd_shapes()), shape_name);

// Worked by hand for AlexNet's conv1 at batch 2: 227x227x3 -> 55x55x96, 11x11 stride 4.
TEST(ImplicitGemm, DimensionsAndTileCountsByHand) {
  const Conv2dGeometry g = geometry({"conv1", 2, 3, 227, 227, 96, 11, 11, 4, 4, Padding::valid()});
  const GemmTile t{64, 64, 32};
  const GemmShape f = forward_gemm(g), d = backward_data_gemm(g), w = backward_weights_gemm(g);
  EXPECT_EQ(f.m, 2 * 55 * 55);  // 6050
  EXPECT_EQ(f.n, 96);
  EXPECT_EQ(f.r, 3 * 11 * 11);  // 363
  EXPECT_EQ(d.m, 2 * 227 * 227);
  EXPECT_EQ(d.n, 3);
  EXPECT_EQ(d.r, 96 * 121);
  EXPECT_EQ(w.m, 96);
  EXPECT_EQ(w.n, 363);
  EXPECT_EQ(w.r, 6050);
  const TileCounts ft = tile_counts(f, t);
  EXPECT_EQ(ft.m, 95);  // 6050 / 64 = 94.53
  EXPECT_EQ(ft.n, 2);
  EXPECT_EQ(ft.r, 12);  // 363 / 32 = 11.3
  const TileCounts dt = tile_counts(d, t);
  EXPECT_EQ(dt.m, 1611);  // 103058 / 64 = 1610.3
  EXPECT_EQ(dt.n, 1);
  EXPECT_EQ(dt.r, 363);  // 11616 / 32 exactly
  EXPECT_EQ(tile_end(94, 64, f.m), 6050);
  EXPECT_EQ(tile_begin(94, 64), 6016);
  EXPECT_EQ(tile_end(0, 64, 3), 3);

  // Output pixel 57 of image 1: oy 1, ox 2, window corner (4, 8).
  const OutPixel o = out_pixel(g, 3025 + 57);
  EXPECT_EQ(o.img, 1);
  EXPECT_EQ(o.oy, 1);
  EXPECT_EQ(o.ox, 2);
  EXPECT_EQ(o.iy0, 4);
  EXPECT_EQ(o.ix0, 8);
  // Tap 130 = channel 1, i 0, j 9: input (1, 1, 4, 17).
  const Tap tap = filter_tap(g, 130);
  EXPECT_EQ(tap.channel, 1);
  EXPECT_EQ(tap.i, 0);
  EXPECT_EQ(tap.j, 9);
  EXPECT_EQ(forward_a(g, o, tap), ((1 * 3 + 1) * 227 + 4) * 227 + 17);
}

// Padding and stride gaps map to -1, worked by hand on a 5x5 input, 3x3 kernel, stride 2, pad 1.
TEST(ImplicitGemm, PaddingAndGapsByHand) {
  const Conv2dGeometry g =
      geometry({"small", 1, 1, 5, 5, 1, 3, 3, 2, 2, Padding::explicit_pad(1, 1)});
  ASSERT_EQ(g.out_h, 3);
  const OutPixel corner = out_pixel(g, 0);                         // window corner (-1, -1)
  EXPECT_EQ(forward_a(g, corner, filter_tap(g, 0)), -1);           // (i, j) = (0, 0): padding
  EXPECT_EQ(forward_a(g, corner, filter_tap(g, 4)), 0);            // (1, 1): input (0, 0)
  EXPECT_EQ(forward_a(g, out_pixel(g, 8), filter_tap(g, 8)), -1);  // (2,2) of the last: row 5
  // Input (1, 1) at tap (0, 0): y + pad - i = 2 -> output (1, 1); at tap (1, 1): 1 is odd: a gap.
  const InPixel q = in_pixel(g, 6);
  EXPECT_EQ(q.y, 1);
  EXPECT_EQ(q.x, 1);
  EXPECT_EQ(backward_data_a(g, q, filter_tap(g, 0)), 4);
  EXPECT_EQ(backward_data_a(g, q, filter_tap(g, 4)), -1);
  // Input (4, 4) at tap (0, 0): 5 / 2 is no output; at (1, 1): 4 / 2 = output (2, 2).
  const InPixel last = in_pixel(g, 24);
  EXPECT_EQ(backward_data_a(g, last, filter_tap(g, 0)), -1);
  EXPECT_EQ(backward_data_a(g, last, filter_tap(g, 4)), 8);
}

// Split-K covers every reduction tile exactly once, in order, for any split count.
TEST(ImplicitGemm, SplitKCoversEveryTileOnce) {
  for (int r_tiles : {1, 2, 7, 12, 363})
    for (int splits = 1; splits <= r_tiles; ++splits) {
      int next = 0;
      for (int s = 0; s < splits; ++s) {
        ASSERT_EQ(split_begin(s, splits, r_tiles), next);
        ASSERT_GE(split_end(s, splits, r_tiles), next);
        next = split_end(s, splits, r_tiles);
      }
      ASSERT_EQ(next, r_tiles) << r_tiles << " tiles in " << splits;
    }
}

}  // namespace
}  // namespace cnnrt
