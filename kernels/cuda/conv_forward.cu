// CUDA convolution forward (docs/math.md section 1), NCHW, cross-correlation: shared-memory tiles,
// the bias and the next activation fused. Deterministic: every output is summed by one thread.
#include <fmt/format.h>

#include <cstddef>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/conv_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// Filters computed per forward block: each input patch loaded into shared memory is reused by
// this many filters, each thread keeps this many accumulators.
constexpr int kFiltersPerBlock = 8;
static_assert(kFiltersPerBlock % 4 == 0, "the forward kernel reads a tap's filters as float4s");
constexpr int kMaxForwardTile = 16;

// The output block of one forward thread block: tile_h x tile_w outputs, one per thread.
struct ForwardTile {
  int h = 1, w = 1;
};

// The side of a tile of at most `limit` that covers `extent` in the fewest tiles, shrunk so those
// tiles split it evenly: LeNet's 10 x 10 conv2 output takes one 10 x 10 tile (a 16 x 16 block
// would leave 156 of its 256 threads without an output), 28 x 28 four 14 x 14 ones.
int balanced_tile_side(int extent, int limit) {
  const int tiles = (extent + limit - 1) / limit;
  return (extent + tiles - 1) / tiles;
}

// Shared floats one forward block needs: the input patch behind its output tile, plus
// kFiltersPerBlock filters' weights for one channel.
// The forward kernel's patch floats, rounded up so the filters after them start 16-byte aligned.
__host__ __device__ inline std::size_t forward_patch_floats(std::size_t patch) {
  return (patch + 3) / 4 * 4;
}

std::size_t forward_shared_floats(const Conv2dGeometry& g, ForwardTile tile) {
  const std::size_t patch_h = std::size_t(tile.h - 1) * g.stride_h + g.kh;
  const std::size_t patch_w = std::size_t(tile.w - 1) * g.stride_w + g.kw;
  return forward_patch_floats(patch_h * patch_w) + std::size_t(kFiltersPerBlock) * g.kh * g.kw;
}

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out (z), fused.activated
// (act(z), when not nullptr): [n, k, out_h, out_w]
// grid: (n * ceil(k / kFiltersPerBlock), ceil(out_h / tile_h), ceil(out_w / tile_w)), block:
// (tile_w, tile_h). Per channel the block stages the input patch its tile reads (zeros outside the
// input) and the weights of its filters in shared memory, then each thread accumulates its output
// pixel for kFiltersPerBlock filters.
template <int kKernel>
__global__ void conv2d_forward_kernel(Conv2dGeometry g, const float* __restrict__ in,
                                      const float* __restrict__ weight,
                                      const float* __restrict__ bias, float* __restrict__ out,
                                      FusedActivation<float> fused) {
  extern __shared__ __align__(16) float shared[];  // the filters are read as float4
  const int tile_w = blockDim.x, tile_h = blockDim.y;
  // kKernel > 0: the kernel is kKernel x kKernel, known here, so the tap loops unroll.
  const int kh = kKernel > 0 ? kKernel : g.kh, kw = kKernel > 0 ? kKernel : g.kw;
  const int patch_h = (tile_h - 1) * g.stride_h + kh;
  const int patch_w = (tile_w - 1) * g.stride_w + kw;
  const int filter_size = kh * kw;
  float* patch = shared;
  // [kh * kw][kFiltersPerBlock]: a tap's filters side by side, read as float4 broadcasts.
  float* filters = shared + forward_patch_floats(std::size_t(patch_h) * patch_w);

  const int filter_groups = (g.k + kFiltersPerBlock - 1) / kFiltersPerBlock;
  const int sample = blockIdx.x / filter_groups;
  const int k0 = (blockIdx.x % filter_groups) * kFiltersPerBlock;
  const int oy0 = blockIdx.y * tile_h, ox0 = blockIdx.z * tile_w;
  const int iy0 = oy0 * g.stride_h - g.pad_top, ix0 = ox0 * g.stride_w - g.pad_left;
  const int ty = threadIdx.y, tx = threadIdx.x;
  const int thread = ty * tile_w + tx, threads = tile_w * tile_h;

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
      const int f = t / filter_size, tap = t % filter_size, k = k0 + f;
      filters[tap * kFiltersPerBlock + f] =
          k < g.k ? weight[(std::size_t(k) * g.c + c) * filter_size + tap] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kh; ++i) {
      const float* patch_row = patch + (ty * g.stride_h + i) * patch_w + tx * g.stride_w;
#pragma unroll
      for (int j = 0; j < kw; ++j) {
        const float value = patch_row[j];
        const float4* tap =
            reinterpret_cast<const float4*>(filters + (i * kw + j) * kFiltersPerBlock);
#pragma unroll
        for (int q = 0; q < kFiltersPerBlock / 4; ++q) {
          const float4 w4 = tap[q];
          acc[4 * q + 0] += value * w4.x;
          acc[4 * q + 1] += value * w4.y;
          acc[4 * q + 2] += value * w4.z;
          acc[4 * q + 3] += value * w4.w;
        }
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
    const std::size_t at = ((std::size_t(sample) * g.k + k) * g.out_h + oy) * g.out_w + ox;
    out[at] = z;
    if (fused.activated != nullptr)
      fused.activated[at] = detail::activate(fused.kind, fused.leaky_slope, z);
  }
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* in, const float* weight,
                    const float* bias, float* out, const FusedActivation<float>& fused,
                    cudaStream_t stream) {
  if (g.out_size() == 0) return;
  // The largest tile (sides at most 16, 8, 4, 2, 1, split evenly over the output) whose patch and
  // filters fit in shared memory.
  auto tile_for = [&](int limit) {
    return ForwardTile{balanced_tile_side(g.out_h, limit), balanced_tile_side(g.out_w, limit)};
  };
  int limit = kMaxForwardTile;
  while (limit > 1 && forward_shared_floats(g, tile_for(limit)) * sizeof(float) > kSharedBytesLimit)
    limit /= 2;
  const ForwardTile tile = tile_for(limit);
  const std::size_t shared_bytes = forward_shared_floats(g, tile) * sizeof(float);
  if (shared_bytes > kSharedBytesLimit)
    throw Error(fmt::format(
        "cuda::conv2d_forward: kernel {}x{} with stride {}x{} needs {} bytes of shared memory, "
        "more than the {} available",
        g.kh, g.kw, g.stride_h, g.stride_w, shared_bytes, kSharedBytesLimit));
  const int filter_groups = (g.k + kFiltersPerBlock - 1) / kFiltersPerBlock;
  const dim3 grid{unsigned(g.n) * unsigned(filter_groups),
                  unsigned((g.out_h + tile.h - 1) / tile.h),
                  unsigned((g.out_w + tile.w - 1) / tile.w)};
  const dim3 block{unsigned(tile.w), unsigned(tile.h)};
  // LeNet's 5x5 kernels get the unrolled instantiation.
  const auto kernel = g.kh == 5 && g.kw == 5 ? conv2d_forward_kernel<5> : conv2d_forward_kernel<0>;
  kernel<<<grid, block, shared_bytes, stream>>>(g, in, weight, bias, out, fused);
  CNNRT_LAUNCH_CHECK(conv2d_forward_kernel);
}

}  // namespace cnnrt::cuda
