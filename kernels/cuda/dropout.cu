// CUDA dropout (docs/math.md section 6). Element i draws philox_uniform(seed, offset, first + i),
// the very function the CPU twin calls, so both backends produce the same mask bit for bit.
#include <fmt/format.h>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/dropout.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/philox.hpp"

namespace cnnrt::cuda {
namespace {

// The host-side check the CPU twin makes too: p = 1 would divide by zero.
void check_probability(const char* where, float p) {
  if (!(p >= 0.0f && p < 1.0f))  // also rejects NaN
    throw Error(fmt::format("{}: dropout probability p = {} must be in [0, 1)", where, p));
}

// in: [count] -> out: [count] = in * (1 / (1 - p)) where kept, else 0; mask: [count] (1 kept)
__global__ void dropout_forward_kernel(DropoutParams params, std::size_t count,
                                       const float* __restrict__ in, float* __restrict__ out,
                                       std::uint8_t* __restrict__ mask) {
  const float keep_scale = 1.0f / (1.0f - params.p);  // survivors carry the dropped mass
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const bool keep = philox_uniform(params.seed, params.offset, params.first + i) >= params.p;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? in[i] * keep_scale : 0.0f;
  }
}

// dout, mask: [count] -> din: [count] = dout * (1 / (1 - p)) where kept, else 0
__global__ void dropout_backward_kernel(DropoutParams params, std::size_t count,
                                        const float* __restrict__ dout,
                                        const std::uint8_t* __restrict__ mask,
                                        float* __restrict__ din) {
  const float keep_scale = 1.0f / (1.0f - params.p);  // survivors carry the dropped mass
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    din[i] = mask[i] != 0 ? dout[i] * keep_scale : 0.0f;
}

}  // namespace

void dropout_forward(const DropoutParams& params, std::size_t count, const float* in, float* out,
                     std::uint8_t* mask, cudaStream_t stream) {
  check_probability("cuda::dropout_forward", params.p);
  if (count == 0) return;
  dropout_forward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                           stream>>>(params, count, in, out, mask);
  CNNRT_LAUNCH_CHECK(dropout_forward_kernel);
}

void dropout_backward(const DropoutParams& params, std::size_t count, const float* dout,
                      const std::uint8_t* mask, float* din, cudaStream_t stream) {
  check_probability("cuda::dropout_backward", params.p);
  if (count == 0) return;
  dropout_backward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                            stream>>>(params, count, dout, mask, din);
  CNNRT_LAUNCH_CHECK(dropout_backward_kernel);
}

}  // namespace cnnrt::cuda
