#pragma once
// CPU reference batch gather: picks samples of a uint8 data set through an index array,
// augments them (see AugmentParams) and normalises them to float (see NormalizeParams).
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// images: [samples, pixels] uint8, labels: [samples] uint8, indices: [n] ->
//   batch: [n, pixels] = (augmented images[indices[i]] / 255 - mean) / std, batch_labels: [n]
//   int32; the augmentation draws at (aug.step, aug.epoch).
template <typename T>
void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                  const std::uint8_t* images, const std::uint8_t* labels,
                  const std::int32_t* indices, T* batch, std::int32_t* batch_labels);

// The same for batch number step[0] of a shuffled order: indices = order + step[0] * n, the
// augmentation drawn at (step[0], step[1]). step: [2] int32 {batch in the epoch, epoch}.
template <typename T>
void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                          const std::uint8_t* images, const std::uint8_t* labels,
                          const std::int32_t* order, const std::int32_t* step, T* batch,
                          std::int32_t* batch_labels);

// counter: [1] -> counter + 1
void advance_counter(std::int32_t* counter);

}  // namespace cnnrt::cpu
