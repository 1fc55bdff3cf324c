// CUDA batch gather: the data set stays on the device as bytes; each step this kernel picks the
// batch through the (shuffled) index array and normalises it, so no host copy happens per step.
#include <fmt/format.h>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/data.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// images: [samples, pixels] uint8, labels: [samples] uint8, indices: [n] ->
// batch: [n, pixels] = (byte / 255 - mean) / std, batch_labels: [n]; grid-stride over n * pixels.
// Indices are trusted here (device memory; the host validates the shuffle it uploads)
// (consecutive threads read consecutive bytes of one image: coalesced).
__global__ void gather_batch_kernel(NormalizeParams norm, int n, int pixels,
                                    const std::uint8_t* __restrict__ images,
                                    const std::uint8_t* __restrict__ labels,
                                    const std::int32_t* __restrict__ indices,
                                    float* __restrict__ batch,
                                    std::int32_t* __restrict__ batch_labels) {
  const std::size_t count = std::size_t(n) * pixels;
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const std::size_t row = i / pixels;
    const std::size_t sample = std::size_t(indices[row]);
    const float byte = float(images[sample * pixels + i % pixels]);
    batch[i] = (byte / 255.0f - norm.mean) / norm.std;
    if (i % pixels == 0) batch_labels[row] = std::int32_t(labels[sample]);
  }
}

}  // namespace

void gather_batch(const NormalizeParams& norm, int n, int pixels, const std::uint8_t* images,
                  const std::uint8_t* labels, const std::int32_t* indices, float* batch,
                  std::int32_t* batch_labels, cudaStream_t stream) {
  if (!(norm.std != 0.0f))
    throw Error(
        fmt::format("cuda::gather_batch: normalisation std = {} must be non-zero", norm.std));
  if (n <= 0 || pixels <= 0) return;
  const std::size_t count = std::size_t(n) * pixels;
  gather_batch_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                        stream>>>(norm, n, pixels, images, labels, indices, batch, batch_labels);
  CNNRT_LAUNCH_CHECK(gather_batch_kernel);
}

}  // namespace cnnrt::cuda
