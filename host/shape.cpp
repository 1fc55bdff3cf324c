#include "cnnrt/shape.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

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

}  // namespace cnnrt
