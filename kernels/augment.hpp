#pragma once
// The per-sample draw of the batch gather's augmentation (see AugmentParams), header only so the
// CPU twin and the CUDA kernel compute the same shift and flip from the same Philox bits.
#include <cstdint>

#include "kernels/ops.hpp"
#include "kernels/philox.hpp"

namespace cnnrt {

struct AugmentDraw {
  int dx = 0, dy = 0;  // the crop's shift, in [-pad, pad]
  bool flip = false;
};

CNNRT_HOST_DEVICE AugmentDraw augment_draw(const AugmentParams& aug, std::uint32_t sample,
                                           std::uint32_t step, std::uint32_t epoch) {
  const Philox4 bits = philox4x32_10(Philox4{{sample, step, epoch, kAugmentStream}},
                                     static_cast<std::uint32_t>(aug.seed),
                                     static_cast<std::uint32_t>(aug.seed >> 32));
  AugmentDraw d;
  if (aug.pad > 0) {
    const std::uint32_t span = 2u * static_cast<std::uint32_t>(aug.pad) + 1u;
    d.dx = static_cast<int>(bits.v[0] % span) - aug.pad;
    d.dy = static_cast<int>(bits.v[1] % span) - aug.pad;
  }
  d.flip = aug.mirror || (aug.flip && (bits.v[2] & 1u) != 0);
  return d;
}

// The source offset within the sample of output pixel p (c, y, x), or -1 for a padding zero.
CNNRT_HOST_DEVICE long long augment_source(const AugmentParams& aug, const AugmentDraw& d, int p) {
  const int plane = aug.height * aug.width;
  const int c = p / plane, y = (p % plane) / aug.width, x = p % aug.width;
  const int sy = y + d.dy, sx = (d.flip ? aug.width - 1 - x : x) + d.dx;
  if (sy < 0 || sy >= aug.height || sx < 0 || sx >= aug.width) return -1;
  return (static_cast<long long>(c) * aug.height + sy) * aug.width + sx;
}

}  // namespace cnnrt
