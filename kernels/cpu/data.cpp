// CPU reference batch gather with augmentation (see AugmentParams) and normalisation (see
// NormalizeParams).
#include "kernels/cpu/data.hpp"

#include <fmt/format.h>

#include <cstddef>

#include "cnnrt/error.hpp"
#include "kernels/augment.hpp"

namespace cnnrt::cpu {

// images: [samples, pixels], labels: [samples], indices: [n] -> batch: [n, pixels],
// batch_labels: [n]
template <typename T>
void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                  const std::uint8_t* images, const std::uint8_t* labels,
                  const std::int32_t* indices, T* batch, std::int32_t* batch_labels) {
  check_normalize("gather_batch", norm, pixels);
  check_augment("gather_batch", aug, pixels);
  T mean[NormalizeParams::kMaxChannels], std_dev[NormalizeParams::kMaxChannels];
  for (int c = 0; c < norm.channels; ++c) mean[c] = T(norm.mean[c]), std_dev[c] = T(norm.std[c]);
  const int plane = norm.channels > 1 ? norm.plane : (pixels > 0 ? pixels : 1);
  for (int s = 0; s < n; ++s) {
    const std::int32_t sample = indices[s];
    if (sample < 0)
      throw Error(
          fmt::format("gather_batch: index {} at batch position {} is negative", sample, s));
    const std::uint8_t* src = images + std::size_t(sample) * pixels;
    T* dst = batch + std::size_t(s) * pixels;
    const bool augmented = aug.enabled();
    const AugmentDraw d =
        augmented ? augment_draw(aug, std::uint32_t(sample), aug.step, aug.epoch) : AugmentDraw{};
    for (int c = 0, p = 0; p < pixels; ++c)
      for (const int end = p + plane; p < end; ++p) {
        const long long from = augmented ? augment_source(aug, d, p) : p;
        dst[p] = (T(from < 0 ? 0 : src[from]) / T(255) - mean[c]) / std_dev[c];
      }
    batch_labels[s] = labels[sample];
  }
}

template void gather_batch<float>(const NormalizeParams&, const AugmentParams&, int, int,
                                  const std::uint8_t*, const std::uint8_t*, const std::int32_t*,
                                  float*, std::int32_t*);
template void gather_batch<double>(const NormalizeParams&, const AugmentParams&, int, int,
                                   const std::uint8_t*, const std::uint8_t*, const std::int32_t*,
                                   double*, std::int32_t*);

// order: [samples], step: [2] {batch number, epoch} -> the batch order[step * n, (step + 1) * n)
template <typename T>
void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                          const std::uint8_t* images, const std::uint8_t* labels,
                          const std::int32_t* order, const std::int32_t* step, T* batch,
                          std::int32_t* batch_labels) {
  AugmentParams at = aug;
  at.step = std::uint32_t(step[0]);
  at.epoch = std::uint32_t(step[1]);
  gather_batch(norm, at, n, pixels, images, labels, order + std::size_t(step[0]) * std::size_t(n),
               batch, batch_labels);
}

void advance_counter(std::int32_t* counter) {
  *counter += 1;
}

template void gather_batch_at_step<float>(const NormalizeParams&, const AugmentParams&, int, int,
                                          const std::uint8_t*, const std::uint8_t*,
                                          const std::int32_t*, const std::int32_t*, float*,
                                          std::int32_t*);
template void gather_batch_at_step<double>(const NormalizeParams&, const AugmentParams&, int, int,
                                           const std::uint8_t*, const std::uint8_t*,
                                           const std::int32_t*, const std::int32_t*, double*,
                                           std::int32_t*);

}  // namespace cnnrt::cpu
