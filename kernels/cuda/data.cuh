#pragma once
// CUDA batch gather from the device-resident uint8 data set, the twin of kernels/cpu/data.hpp.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt::cuda {

// images: [samples, pixels] uint8, labels: [samples] uint8, indices: [n] (all device) ->
// batch: [n, pixels] float, batch_labels: [n] int32; augmented at (aug.step, aug.epoch)
void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                  const std::uint8_t* images, const std::uint8_t* labels,
                  const std::int32_t* indices, float* batch, std::int32_t* batch_labels,
                  cudaStream_t stream);

// The same for batch number step[0] of a shuffled order: indices = order + step[0] * n, the
// augmentation drawn at (step[0], step[1]); step: [2] device int32 {batch in the epoch, epoch},
// read on the device, so one captured graph serves every step of every epoch (step may be
// nullptr: then indices = order, which is gather_batch).
void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                          const std::uint8_t* images, const std::uint8_t* labels,
                          const std::int32_t* order, const std::int32_t* step, float* batch,
                          std::int32_t* batch_labels, cudaStream_t stream);

// counter: [1] device int32, incremented by one (the graph's last node).
void advance_counter(std::int32_t* counter, cudaStream_t stream);

}  // namespace cnnrt::cuda
