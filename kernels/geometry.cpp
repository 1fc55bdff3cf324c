// The geometry builders of kernels/ops.hpp: the user's description checked once, turned into the
// sizes and padding the kernels index with.
#include <fmt/format.h>

#include "cnnrt/error.hpp"
#include "cnnrt/shape.hpp"
#include "kernels/ops.hpp"

namespace cnnrt {

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

void check_augment(const char* where, const AugmentParams& aug, int pixels) {
  if (!aug.enabled()) return;
  if (aug.channels <= 0 || aug.height <= 0 || aug.width <= 0 ||
      std::int64_t(aug.channels) * aug.height * aug.width != pixels)
    throw Error(fmt::format("{}: augmentation shape {}x{}x{} does not hold samples of {} values",
                            where, aug.channels, aug.height, aug.width, pixels));
  if (aug.pad < 0 || aug.pad >= aug.height || aug.pad >= aug.width)
    throw Error(fmt::format("{}: crop padding {} must be in [0, {}) for {}x{} images", where,
                            aug.pad, aug.height < aug.width ? aug.height : aug.width, aug.height,
                            aug.width));
}

void check_normalize(const char* where, const NormalizeParams& norm, int pixels) {
  if (norm.channels < 1 || norm.channels > NormalizeParams::kMaxChannels)
    throw Error(fmt::format("{}: normalisation over {} channels (1 to {} supported)", where,
                            norm.channels, NormalizeParams::kMaxChannels));
  if (norm.channels > 1 && (norm.plane <= 0 || std::int64_t(norm.channels) * norm.plane != pixels))
    throw Error(
        fmt::format("{}: normalisation of {} channels of {} values does not hold samples "
                    "of {} values",
                    where, norm.channels, norm.plane, pixels));
  for (int c = 0; c < norm.channels; ++c)
    if (!(norm.std[c] != 0.0f))
      throw Error(fmt::format("{}: normalisation std = {} (channel {}) must be non-zero", where,
                              norm.std[c], c));
}

}  // namespace cnnrt
