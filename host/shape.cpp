#include "cnnrt/shape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "cnnrt/error.hpp"
#include "kernels/ops.hpp"

namespace cnnrt {

namespace {
// Output sizes are worked out in 64 bits, so that no hyper-parameter can overflow them; the padded
// input must still fit in int, which the kernels index it with.
std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
}  // namespace

std::string Padding::to_string() const {
  switch (mode) {
    case Mode::valid:
      return "valid";
    case Mode::same:
      return "same";
    case Mode::explicit_:
      return fmt::format("explicit {}x{}", h, w);
  }
  return "unknown";
}

AxisGeometry conv_axis(int in, int kernel, int stride, Padding::Mode mode, int pad) {
  AxisGeometry axis;
  if (in <= 0 || kernel <= 0 || stride <= 0) return axis;
  const std::int64_t n = in, k = kernel, s = stride;
  std::int64_t out = 0, pad_before = 0;
  switch (mode) {
    case Padding::Mode::valid:
      out = n >= k ? ceil_div(n - k + 1, s) : 0;
      break;
    case Padding::Mode::same: {
      out = ceil_div(n, s);
      const std::int64_t total = std::max((out - 1) * s + k - n, std::int64_t{0});
      if (n + total > kIntMax) return axis;
      pad_before = total / 2;
      break;
    }
    case Padding::Mode::explicit_: {
      const std::int64_t padded = n + 2 * std::int64_t{pad};
      if (pad < 0 || padded > kIntMax) return axis;
      out = padded >= k ? (padded - k) / s + 1 : 0;
      pad_before = pad;
      break;
    }
  }
  axis.out = static_cast<int>(out);
  axis.pad_before = static_cast<int>(pad_before);
  return axis;
}

int pool_out_size(int in, int window, int stride) {
  if (in <= 0 || window <= 0 || stride <= 0 || in < window) return 0;
  return (in - window) / stride + 1;
}

Conv2dGeometry make_conv2d_geometry(const char* layer, int n, int c, int h, int w, int k, int kh,
                                    int kw, int stride_h, int stride_w, Padding padding) {
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || k <= 0 || kh <= 0 || kw <= 0 || stride_h <= 0 ||
      stride_w <= 0)
    throw Error(
        fmt::format("{}: invalid convolution: input {}x{}x{}x{}, {} filters {}x{}, stride "
                    "{}x{} (all must be positive)",
                    layer, n, c, h, w, k, kh, kw, stride_h, stride_w));
  const AxisGeometry y = conv_axis(h, kh, stride_h, padding.mode, padding.h);
  const AxisGeometry x = conv_axis(w, kw, stride_w, padding.mode, padding.w);
  if (y.out <= 0 || x.out <= 0)
    throw Error(fmt::format("{}: input {}x{}x{} does not fit kernel {}x{} with {} padding", layer,
                            c, h, w, kh, kw, padding.to_string()));
  Conv2dGeometry g;
  g.n = n, g.c = c, g.h = h, g.w = w, g.k = k, g.kh = kh, g.kw = kw;
  g.stride_h = stride_h, g.stride_w = stride_w;
  g.pad_top = y.pad_before, g.pad_left = x.pad_before;
  g.out_h = y.out, g.out_w = x.out;
  return g;
}

Pool2dGeometry make_pool2d_geometry(const char* layer, int n, int c, int h, int w, int win_h,
                                    int win_w, int stride_h, int stride_w) {
  const int out_h = pool_out_size(h, win_h, stride_h);
  const int out_w = pool_out_size(w, win_w, stride_w);
  if (n <= 0 || c <= 0 || out_h <= 0 || out_w <= 0)
    throw Error(fmt::format("{}: input {}x{}x{} does not fit pooling window {}x{} stride {}x{}",
                            layer, c, h, w, win_h, win_w, stride_h, stride_w));
  Pool2dGeometry g;
  g.n = n, g.c = c, g.h = h, g.w = w;
  g.win_h = win_h, g.win_w = win_w, g.stride_h = stride_h, g.stride_w = stride_w;
  g.out_h = out_h, g.out_w = out_w;
  return g;
}

}  // namespace cnnrt
