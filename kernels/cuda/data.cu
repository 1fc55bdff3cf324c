// CUDA batch gather: the data set stays on the device as bytes; each step this kernel picks the
// batch through the (shuffled) index array and normalises it, so no host copy happens per step.
#include <fmt/format.h>

#include <algorithm>

#include "kernels/augment.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/data.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// images: [samples, pixels] uint8, labels: [samples] uint8, indices: [n] ->
// batch: [n, pixels] = (augmented byte / 255 - mean[c]) / std[c], batch_labels: [n] (indices
// advanced by step[0] * n when a step counter {batch, epoch} is given); grid-stride over n labels,
// then over n * pixels values (consecutive threads read consecutive bytes of one image:
// coalesced). Indices are trusted here (device memory; the host validates the shuffle it uploads).
__global__ void gather_batch_kernel(NormalizeParams norm, AugmentParams aug, int n, int pixels,
                                    const std::uint8_t* __restrict__ images,
                                    const std::uint8_t* __restrict__ labels,
                                    const std::int32_t* __restrict__ indices,
                                    const std::int32_t* __restrict__ step,
                                    float* __restrict__ batch,
                                    std::int32_t* __restrict__ batch_labels) {
  // With a step counter the batch is order[step * n, (step + 1) * n), read on the device so a
  // captured graph can replay the same launch for every step.
  if (step != nullptr) {
    indices += std::size_t(step[0]) * std::size_t(n);
    aug.step = std::uint32_t(step[0]);
    aug.epoch = std::uint32_t(step[1]);
  }
  const std::size_t count = pixels > 0 ? std::size_t(n) * std::size_t(pixels) : 0;
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  const std::size_t first = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::size_t row = first; row < std::size_t(n); row += stride)
    batch_labels[row] = std::int32_t(labels[indices[row]]);
  for (std::size_t i = first; i < count; i += stride) {
    const std::size_t sample = std::size_t(indices[i / pixels]);
    const int p = int(i % pixels);
    float byte;
    if (aug.pad > 0 || aug.flip ||
        aug.mirror) {  // each value redraws its sample's shift: no shared state
      const AugmentDraw d = augment_draw(aug, std::uint32_t(sample), aug.step, aug.epoch);
      const long long from = augment_source(aug, d, p);
      byte = from < 0 ? 0.0f : float(images[sample * pixels + std::size_t(from)]);
    } else {
      byte = float(images[sample * pixels + std::size_t(p)]);
    }
    const int c = norm.channels > 1 ? p / norm.plane : 0;
    batch[i] = (byte / 255.0f - norm.mean[c]) / norm.std[c];
  }
}

}  // namespace

void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                          const std::uint8_t* images, const std::uint8_t* labels,
                          const std::int32_t* order, const std::int32_t* step, float* batch,
                          std::int32_t* batch_labels, cudaStream_t stream) {
  check_normalize("cuda::gather_batch", norm, pixels);
  check_augment("cuda::gather_batch", aug, pixels);
  if (n <= 0) return;
  // Enough threads for the larger of the two loops (labels: n, pixels: n * pixels).
  const std::size_t work =
      std::max(std::size_t(n), std::size_t(n) * std::size_t(std::max(pixels, 0)));
  gather_batch_kernel<<<detail::elementwise_blocks(work), detail::kElementwiseThreads, 0, stream>>>(
      norm, aug, n, pixels, images, labels, order, step, batch, batch_labels);
  CNNRT_LAUNCH_CHECK(gather_batch_kernel);
}

void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                  const std::uint8_t* images, const std::uint8_t* labels,
                  const std::int32_t* indices, float* batch, std::int32_t* batch_labels,
                  cudaStream_t stream) {
  gather_batch_at_step(norm, aug, n, pixels, images, labels, indices, nullptr, batch, batch_labels,
                       stream);
}

namespace {
// counter: [1] -> counter + 1
__global__ void advance_counter_kernel(std::int32_t* counter) {
  *counter += 1;
}
}  // namespace

void advance_counter(std::int32_t* counter, cudaStream_t stream) {
  advance_counter_kernel<<<1, 1, 0, stream>>>(counter);
  CNNRT_LAUNCH_CHECK(advance_counter_kernel);
}

}  // namespace cnnrt::cuda
