// CUDA convolution (SPEC.md section 1), NCHW, cross-correlation. Deterministic: every output is
// summed by one thread (forward, backward-data) or one block with a fixed-order tree reduction
// (weight and bias gradients); no atomics.
#include <fmt/format.h>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// Filters computed per forward block: each input patch loaded into shared memory is reused by
// this many filters, each thread keeps this many accumulators.
constexpr int kFiltersPerBlock = 8;
constexpr int kMaxForwardTile = 16;
constexpr std::size_t kSharedBytesLimit = 48 * 1024;  // the default per-block limit
constexpr int kReduceThreads = 256;                   // power of two (tree reduction)

// Shared floats one forward block needs: the input patch behind a tile x tile output block, plus
// kFiltersPerBlock filters' weights for one channel.
std::size_t forward_shared_floats(const Conv2dGeometry& g, int tile) {
  const std::size_t patch_h = std::size_t(tile - 1) * g.stride_h + g.kh;
  const std::size_t patch_w = std::size_t(tile - 1) * g.stride_w + g.kw;
  return patch_h * patch_w + std::size_t(kFiltersPerBlock) * g.kh * g.kw;
}

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out: [n, k, out_h, out_w]
// grid: (n * ceil(k / kFiltersPerBlock), ceil(out_h / tile), ceil(out_w / tile)), block: (tile,
// tile). Per channel the block stages the input patch its tile reads (zeros outside the input)
// and the weights of its filters in shared memory, then each thread accumulates its output pixel
// for kFiltersPerBlock filters.
__global__ void conv2d_forward_kernel(Conv2dGeometry g, const float* __restrict__ in,
                                      const float* __restrict__ weight,
                                      const float* __restrict__ bias, float* __restrict__ out,
                                      Activation fused, float leaky_slope) {
  extern __shared__ float shared[];
  const int tile = blockDim.x;
  const int patch_h = (tile - 1) * g.stride_h + g.kh;
  const int patch_w = (tile - 1) * g.stride_w + g.kw;
  const int filter_size = g.kh * g.kw;
  float* patch = shared;
  float* filters = shared + patch_h * patch_w;

  const int filter_groups = (g.k + kFiltersPerBlock - 1) / kFiltersPerBlock;
  const int sample = blockIdx.x / filter_groups;
  const int k0 = (blockIdx.x % filter_groups) * kFiltersPerBlock;
  const int oy0 = blockIdx.y * tile, ox0 = blockIdx.z * tile;
  const int iy0 = oy0 * g.stride_h - g.pad_top, ix0 = ox0 * g.stride_w - g.pad_left;
  const int ty = threadIdx.y, tx = threadIdx.x;
  const int thread = ty * tile + tx, threads = tile * tile;

  float acc[kFiltersPerBlock];
#pragma unroll
  for (int f = 0; f < kFiltersPerBlock; ++f) acc[f] = 0.0f;

  for (int c = 0; c < g.c; ++c) {
    const float* plane = in + (std::size_t(sample) * g.c + c) * g.h * g.w;
    for (int t = thread; t < patch_h * patch_w; t += threads) {
      const int iy = iy0 + t / patch_w, ix = ix0 + t % patch_w;
      patch[t] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? plane[iy * g.w + ix] : 0.0f;
    }
    for (int t = thread; t < kFiltersPerBlock * filter_size; t += threads) {
      const int k = k0 + t / filter_size;
      filters[t] =
          k < g.k ? weight[(std::size_t(k) * g.c + c) * filter_size + t % filter_size] : 0.0f;
    }
    __syncthreads();
    for (int i = 0; i < g.kh; ++i) {
      const float* patch_row = patch + (ty * g.stride_h + i) * patch_w + tx * g.stride_w;
      for (int j = 0; j < g.kw; ++j) {
        const float value = patch_row[j];
#pragma unroll
        for (int f = 0; f < kFiltersPerBlock; ++f)
          acc[f] += value * filters[f * filter_size + i * g.kw + j];
      }
    }
    __syncthreads();  // the next channel overwrites the patch
  }

  const int oy = oy0 + ty, ox = ox0 + tx;
  if (oy >= g.out_h || ox >= g.out_w) return;
#pragma unroll
  for (int f = 0; f < kFiltersPerBlock; ++f) {
    const int k = k0 + f;
    if (k >= g.k) break;
    const float z = acc[f] + (bias != nullptr ? bias[k] : 0.0f);
    out[((std::size_t(sample) * g.k + k) * g.out_h + oy) * g.out_w + ox] =
        detail::activate(fused, leaky_slope, z);
  }
}

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w] (count elements)
// One thread per input element (grid-stride): it sums dout[n, k, oy, ox] * weight[k, c, i, j]
// over every (k, i, j) with oy * stride_h + i - pad_top = y (and the same for x), i.e. the
// output positions whose window reads it. A gather: each din element has one writer.
__global__ void conv2d_backward_data_kernel(Conv2dGeometry g, const float* __restrict__ dout,
                                            const float* __restrict__ weight,
                                            float* __restrict__ din, std::size_t count) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t index = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; index < count;
       index += stride) {
    const int x = int(index % g.w);
    const int y = int((index / g.w) % g.h);
    const int c = int((index / (std::size_t(g.w) * g.h)) % g.c);
    const int sample = int(index / (std::size_t(g.w) * g.h * g.c));
    const int py = y + g.pad_top, px = x + g.pad_left;  // position in the padded input
    // Taps i with (py - i) divisible by the stride, py - i >= 0, and oy = (py - i) / stride in
    // range; the first such i is py % stride_h.
    float sum = 0.0f;
    for (int k = 0; k < g.k; ++k) {
      const float* dout_plane = dout + (std::size_t(sample) * g.k + k) * g.out_h * g.out_w;
      const float* filter = weight + (std::size_t(k) * g.c + c) * g.kh * g.kw;
      for (int i = py % g.stride_h; i < g.kh && i <= py; i += g.stride_h) {
        const int oy = (py - i) / g.stride_h;
        if (oy >= g.out_h) continue;
        for (int j = px % g.stride_w; j < g.kw && j <= px; j += g.stride_w) {
          const int ox = (px - j) / g.stride_w;
          if (ox >= g.out_w) continue;
          sum += dout_plane[oy * g.out_w + ox] * filter[i * g.kw + j];
        }
      }
    }
    din[index] = sum;
  }
}

// Sums `partial` over the block in a fixed tree order; the result is in partial[0].
__device__ void block_tree_sum(float* partial) {
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    __syncthreads();
    if (int(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
  }
  __syncthreads();
}

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight: [k, c, kh, kw]
// grid: k * c * kh * kw blocks (one per weight), block: kReduceThreads. Each thread sums a
// strided slice of the (n, oy, ox) positions, then the block reduces in a fixed tree order, so
// the result does not depend on scheduling.
__global__ void conv2d_backward_weights_kernel(Conv2dGeometry g, const float* __restrict__ in,
                                               const float* __restrict__ dout,
                                               float* __restrict__ dweight) {
  __shared__ float partial[kReduceThreads];
  const int weight_index = blockIdx.x;
  const int j = weight_index % g.kw;
  const int i = (weight_index / g.kw) % g.kh;
  const int c = (weight_index / (g.kw * g.kh)) % g.c;
  const int k = weight_index / (g.kw * g.kh * g.c);
  const int plane = g.out_h * g.out_w;
  const std::size_t positions = std::size_t(g.n) * plane;

  float sum = 0.0f;
  for (std::size_t p = threadIdx.x; p < positions; p += kReduceThreads) {
    const int sample = int(p / plane);
    const int oy = int(p % plane) / g.out_w, ox = int(p % plane) % g.out_w;
    const int y = oy * g.stride_h + i - g.pad_top, x = ox * g.stride_w + j - g.pad_left;
    if (y < 0 || y >= g.h || x < 0 || x >= g.w) continue;
    sum += in[((std::size_t(sample) * g.c + c) * g.h + y) * g.w + x] *
           dout[(std::size_t(sample) * g.k + k) * plane + int(p % plane)];
  }
  partial[threadIdx.x] = sum;
  block_tree_sum(partial);
  if (threadIdx.x == 0) dweight[weight_index] = partial[0];
}

// dout: [n, k, out_h, out_w] -> dbias: [k]; grid: k blocks, block: kReduceThreads, fixed order.
__global__ void conv2d_backward_bias_kernel(Conv2dGeometry g, const float* __restrict__ dout,
                                            float* __restrict__ dbias) {
  __shared__ float partial[kReduceThreads];
  const int k = blockIdx.x;
  const int plane = g.out_h * g.out_w;
  const std::size_t positions = std::size_t(g.n) * plane;
  float sum = 0.0f;
  for (std::size_t p = threadIdx.x; p < positions; p += kReduceThreads) {
    const std::size_t sample = p / plane;
    sum += dout[(sample * g.k + k) * plane + p % plane];
  }
  partial[threadIdx.x] = sum;
  block_tree_sum(partial);
  if (threadIdx.x == 0) dbias[k] = partial[0];
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, Activation fused, float leaky_slope,
                    cudaStream_t stream) {
  if (g.out_size() == 0) return;
  // The largest square tile (16, 8, 4, 2, 1) whose patch and filters fit in shared memory.
  int tile = kMaxForwardTile;
  while (tile > 1 && forward_shared_floats(g, tile) * sizeof(float) > kSharedBytesLimit) tile /= 2;
  const std::size_t shared_bytes = forward_shared_floats(g, tile) * sizeof(float);
  if (shared_bytes > kSharedBytesLimit)
    throw Error(fmt::format(
        "cuda::conv2d_forward: kernel {}x{} with stride {}x{} needs {} bytes of shared memory, "
        "more than the {} available",
        g.kh, g.kw, g.stride_h, g.stride_w, shared_bytes, kSharedBytesLimit));
  const int filter_groups = (g.k + kFiltersPerBlock - 1) / kFiltersPerBlock;
  const dim3 grid{unsigned(g.n) * unsigned(filter_groups), unsigned((g.out_h + tile - 1) / tile),
                  unsigned((g.out_w + tile - 1) / tile)};
  const dim3 block{unsigned(tile), unsigned(tile)};
  conv2d_forward_kernel<<<grid, block, shared_bytes, stream>>>(g, in, weight, bias, out, fused,
                                                               leaky_slope);
  CNNRT_LAUNCH_CHECK(conv2d_forward_kernel);
}

void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, cudaStream_t stream) {
  const std::size_t count = g.in_size();
  if (count == 0) return;
  conv2d_backward_data_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                                stream>>>(g, dout, weight, din, count);
  CNNRT_LAUNCH_CHECK(conv2d_backward_data_kernel);
}

std::size_t conv2d_backward_weights_workspace_bytes(const Conv2dGeometry&) {
  return 0;  // one block per weight reduces entirely in shared memory
}

void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, void* /*workspace*/,
                             cudaStream_t stream) {
  const std::size_t weights = g.weight_size();
  if (weights > 0) {
    conv2d_backward_weights_kernel<<<unsigned(weights), kReduceThreads, 0, stream>>>(g, in, dout,
                                                                                     dweight);
    CNNRT_LAUNCH_CHECK(conv2d_backward_weights_kernel);
  }
  if (dbias != nullptr && g.k > 0) {
    conv2d_backward_bias_kernel<<<unsigned(g.k), kReduceThreads, 0, stream>>>(g, dout, dbias);
    CNNRT_LAUNCH_CHECK(conv2d_backward_bias_kernel);
  }
}

}  // namespace cnnrt::cuda
