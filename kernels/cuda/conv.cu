// CUDA convolution (SPEC.md section 1), NCHW, cross-correlation. Deterministic: every output is
// summed by one thread (forward, backward-data), or in a fixed order from per-sample-group partial
// sums (weight and bias gradients, staged path) or by one block with a fixed-order tree
// reduction (their fallback); no atomics.
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// Filters computed per forward block: each input patch loaded into shared memory is reused by
// this many filters, each thread keeps this many accumulators.
constexpr int kFiltersPerBlock = 8;
static_assert(kFiltersPerBlock % 4 == 0, "the forward kernel reads a tap's filters as float4s");
constexpr int kMaxForwardTile = 16;
constexpr std::size_t kSharedBytesLimit = 48 * 1024;  // the default per-block limit
constexpr int kReduceThreads = 256;                   // power of two (tree reduction)

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
  detail::block_tree_sum<kReduceThreads>(partial);
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
  detail::block_tree_sum<kReduceThreads>(partial);
  if (threadIdx.x == 0) dbias[k] = partial[0];
}

// Blocks the staged (fast) backward kernels aim for: enough to keep every SM of an H100/H200
// (132 SMs) busy with a few blocks each while one block stages its sample.
constexpr int kTargetStagedBlocks = 528;
constexpr int kStagedMaxThreads = 256;
// The register-blocked weight gradient: filters per thread, and the blocks it aims for (fewer
// than the staged kernels: its blocks hold up to 256 busy threads, and every block adds a row of
// partial sums for the reduction to read).
constexpr int kBlockedFilters = 4;
constexpr int kTargetBlockedBlocks = 264;
// Thread rows of the partial-sum reduction block (32 x this): few items (LeNet conv1 has 156)
// still get enough threads loading partial rows in parallel.
constexpr int kReduceGroupRows = 32;

int ceil_div_int(int a, int b) {
  return (a + b - 1) / b;
}
// Floor division for a possibly negative numerator (b > 0).
__host__ __device__ inline int floor_div(int a, int b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// How the staged weight-gradient path splits the work (a pure function of the geometry, so the
// workspace size and the launch always agree). Work items are the k*c*kh*kw weights followed by
// the k biases. A block owns one group of samples, one chunk of items and one slice of output
// rows, and writes one partial sum per item of its chunk into partial row group * slices +
// slice; a second kernel sums each item's partial rows in a fixed order.
struct WeightsGradPlan {
  bool staged = false;   // false: fall back to one block per weight
  bool blocked = false;  // staged, register-blocked (stride_w 1, kw 3 or 5): see its kernel
  int tasks = 0;         // blocked: ceil(k / kBlockedFilters) * c * kh
  int row_parts = 1, rows_per_part = 0;  // blocked: thread groups splitting a slice's rows
  int items = 0;                         // k * c * kh * kw + k
  int threads = 0;
  int items_per_block = 0, chunks = 0;
  int samples_per_group = 0, groups = 0;
  int rows_per_slice = 0, slices = 0;  // output rows
  int patch_h = 0, patch_w = 0;        // the zero-padded input rows/columns one slice reads
  int pitch = 0;                       // row pitch of the staged patch (>= patch_w)
  std::size_t shared_bytes = 0;
};

// Shared floats a staged weight-gradient block needs for `rows` output rows and `acc` items.
std::size_t weights_grad_shared_floats(const Conv2dGeometry& g, int rows, int pitch, int acc) {
  const std::size_t patch_h = std::size_t(rows - 1) * g.stride_h + g.kh;
  return std::size_t(g.c) * patch_h * pitch + std::size_t(g.k) * rows * g.out_w + std::size_t(acc);
}

// The register-blocked plan, when the geometry has one (stride_w 1, kw 3 or 5, at most
// kStagedMaxThreads tasks, shared memory within the limit): one chunk holding every item, slices
// of output rows up to about kTargetBlockedBlocks blocks, and the slice's rows split between
// row_parts thread groups so a block has up to kStagedMaxThreads busy threads. Sets p and
// returns true, or leaves p alone and returns false. p.groups must be set.
bool plan_blocked_weights_grad(const Conv2dGeometry& g, WeightsGradPlan& p) {
  if (g.stride_w != 1 || (g.kw != 3 && g.kw != 5)) return false;
  const int tasks = ceil_div_int(g.k, kBlockedFilters) * g.c * g.kh;
  if (tasks > kStagedMaxThreads) return false;
  WeightsGradPlan b = p;
  b.blocked = true;
  b.tasks = tasks;
  b.chunks = 1;
  b.items_per_block = b.items;
  const int wanted_slices = std::min(g.out_h, ceil_div_int(kTargetBlockedBlocks, b.groups));
  b.rows_per_slice = ceil_div_int(g.out_h, wanted_slices);
  b.slices = ceil_div_int(g.out_h, b.rows_per_slice);
  const int most_parts = std::min(b.rows_per_slice, kStagedMaxThreads / tasks);
  b.rows_per_part = ceil_div_int(b.rows_per_slice, most_parts);
  b.row_parts = ceil_div_int(b.rows_per_slice, b.rows_per_part);
  b.threads = ceil_div_int(tasks * b.row_parts, 32) * 32;
  b.patch_h = (b.rows_per_slice - 1) * g.stride_h + g.kh;
  const int sums_per_task = kBlockedFilters * (g.kw + 1);  // per filter: kw weights, the bias
  // The staged rows, plus the sums of every row part but the first (which keeps its own).
  b.shared_bytes =
      (std::size_t(g.c) * b.patch_h * b.pitch + std::size_t(g.k) * b.rows_per_slice * g.out_w +
       std::size_t(b.row_parts - 1) * tasks * sums_per_task) *
      sizeof(float);
  if (b.shared_bytes > kSharedBytesLimit) return false;
  p = b;
  return true;
}

WeightsGradPlan plan_weights_grad(const Conv2dGeometry& g) {
  WeightsGradPlan p;
  if (g.n <= 0 || g.out_h <= 0 || g.out_w <= 0 || g.weight_size() == 0) return p;
  const std::size_t items = g.weight_size() + std::size_t(g.k);
  if (items > std::size_t(1) << 30) return p;
  p.items = int(items);
  p.threads = std::min(kStagedMaxThreads, ceil_div_int(p.items, 32) * 32);
  p.patch_w = (g.out_w - 1) * g.stride_w + g.kw;
  // Row pitch congruent to kw (mod 32): a warp's threads read taps (i, j) of one position at
  // i * pitch + j, i.e. banks (i * kw + j) mod 32, all distinct for up to 32 taps.
  p.pitch = p.patch_w + (((g.kw - p.patch_w) % 32) + 32) % 32;
  const int rounds = ceil_div_int(p.items, p.threads);
  // Decided for the largest block (one chunk, one slice), so that it does not depend on g.n:
  // the executor sizes the workspace once for the full batch and runs smaller ones with it.
  p.staged = weights_grad_shared_floats(g, g.out_h, p.pitch, rounds * p.threads) * sizeof(float) <=
             kSharedBytesLimit;
  if (!p.staged) return p;
  // Groups of samples first (each block stages whole samples), then chunks of items, then
  // slices of output rows, until there are about kTargetStagedBlocks blocks; chunks hold whole
  // rounds of `threads` items.
  p.samples_per_group = ceil_div_int(g.n, kTargetStagedBlocks);
  p.groups = ceil_div_int(g.n, p.samples_per_group);
  if (plan_blocked_weights_grad(g, p)) return p;
  const int wanted_chunks = std::min(rounds, ceil_div_int(kTargetStagedBlocks, p.groups));
  p.items_per_block = p.threads * ceil_div_int(rounds, wanted_chunks);
  p.chunks = ceil_div_int(p.items, p.items_per_block);
  const int wanted_slices =
      std::min(g.out_h, ceil_div_int(kTargetStagedBlocks, p.groups * p.chunks));
  p.rows_per_slice = ceil_div_int(g.out_h, wanted_slices);
  p.slices = ceil_div_int(g.out_h, p.rows_per_slice);
  p.patch_h = (p.rows_per_slice - 1) * g.stride_h + g.kh;
  p.shared_bytes =
      weights_grad_shared_floats(g, p.rows_per_slice, p.pitch, p.items_per_block) * sizeof(float);
  return p;
}

// Partial rows the staged weight gradient writes, for any batch up to g.n: groups * slices,
// where slices <= ceil(kTargetStagedBlocks / groups) and slices <= out_h.
std::size_t weights_grad_partial_rows_bound(const Conv2dGeometry& g) {
  const std::size_t groups = std::size_t(std::min(g.n, kTargetStagedBlocks));
  return std::min(groups + kTargetStagedBlocks - 1, groups * std::size_t(g.out_h));
}

// Stages one sample for a weight-gradient block: in_s [c, patch_h, pitch] gets the zero-padded
// input rows that output rows oy0 .. oy0 + rows - 1 read (patch (r, col) = input (oy0 * stride_h
// - pad_top + r, col - pad_left)), dout_s [k, rows_per_slice, out_w] those rows of dout.
__device__ void stage_weights_grad_sample(const Conv2dGeometry& g, const WeightsGradPlan& p,
                                          const float* __restrict__ in,
                                          const float* __restrict__ dout, int sample, int oy0,
                                          int rows, float* in_s, float* dout_s) {
  const int y0 = oy0 * g.stride_h - g.pad_top;
  const int slice_plane = p.rows_per_slice * g.out_w;
  const float* in_sample = in + std::size_t(sample) * g.c * g.h * g.w;
  // Flat over the staged elements, unrolled: a thread has several loads in flight at once (a
  // loop of load-then-store waits out one global latency per element).
  const int in_elements = g.c * p.patch_h * p.patch_w;
#pragma unroll 4
  for (int e = threadIdx.x; e < in_elements; e += blockDim.x) {
    const int row = e / p.patch_w, col = e % p.patch_w;
    const int c = row / p.patch_h, y = y0 + row % p.patch_h, x = col - g.pad_left;
    in_s[row * p.pitch + col] = (y >= 0 && y < g.h && x >= 0 && x < g.w)
                                    ? in_sample[(std::size_t(c) * g.h + y) * g.w + x]
                                    : 0.0f;
  }
  // Each filter's rows oy0 .. oy0 + rows - 1 are contiguous in dout.
  const int filter_elements = rows * g.out_w;
  const float* dout_rows = dout + (std::size_t(sample) * g.k * g.out_h + oy0) * g.out_w;
#pragma unroll 4
  for (int e = threadIdx.x; e < g.k * filter_elements; e += blockDim.x) {
    const int k = e / filter_elements, q = e % filter_elements;
    dout_s[k * slice_plane + q] = dout_rows[std::size_t(k) * g.out_h * g.out_w + q];
  }
}

// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> partials: [groups * slices, k*c*kh*kw + k]
// grid: (groups, chunks, slices), block: threads (1-D). For each sample of its group the block
// stages, in shared memory, the zero-padded input rows its output rows read ([c, patch_h,
// pitch]: patch (r, col) = input (slice_oy0 * stride_h - pad_top + r, col - pad_left)) and those
// output rows of dout ([k, rows_per_slice, out_w]); each thread owns the items item_begin +
// thread + m * threads of its chunk and adds, per sample, its row-major sum over the slice's
// (oy, ox) to its own accumulator slot. Every sum has a fixed order: no dependence on scheduling.
__global__ void conv2d_backward_weights_partials_kernel(Conv2dGeometry g,
                                                        const float* __restrict__ in,
                                                        const float* __restrict__ dout,
                                                        float* __restrict__ partials,
                                                        WeightsGradPlan p) {
  extern __shared__ float shared[];
  const int patch = p.patch_h * p.pitch;
  const int slice_plane = p.rows_per_slice * g.out_w;
  float* in_s = shared;                       // [c, patch_h, pitch]
  float* dout_s = in_s + g.c * patch;         // [k, rows_per_slice, out_w]
  float* acc_s = dout_s + g.k * slice_plane;  // [items_per_block]
  const int weights = g.k * g.c * g.kh * g.kw;
  const int item_begin = blockIdx.y * p.items_per_block;
  const int item_end = min(p.items, item_begin + p.items_per_block);
  const int sample_begin = blockIdx.x * p.samples_per_group;
  const int sample_end = min(g.n, sample_begin + p.samples_per_group);
  const int oy0 = blockIdx.z * p.rows_per_slice;
  const int rows = min(g.out_h - oy0, p.rows_per_slice);  // output rows of this slice
  const int thread = threadIdx.x, threads = blockDim.x;

  // Each slot is read and written only by the thread that owns its item.
  for (int item = item_begin + thread; item < item_end; item += threads)
    acc_s[item - item_begin] = 0.0f;

  for (int sample = sample_begin; sample < sample_end; ++sample) {
    __syncthreads();  // the previous sample's rows are no longer read
    stage_weights_grad_sample(g, p, in, dout, sample, oy0, rows, in_s, dout_s);
    __syncthreads();

    for (int item = item_begin + thread; item < item_end; item += threads) {
      float sum = 0.0f;
      if (item < weights) {
        const int j = item % g.kw;
        const int i = (item / g.kw) % g.kh;
        const int c = (item / (g.kw * g.kh)) % g.c;
        const int k = item / (g.kw * g.kh * g.c);
        // patch (r * stride_h + i, ox * stride_w + j) meets dout (oy0 + r, ox)
        const float* in_tap = in_s + c * patch + i * p.pitch + j;
        const float* dout_plane = dout_s + k * slice_plane;
        for (int r = 0; r < rows; ++r) {
          const float* in_row = in_tap + r * g.stride_h * p.pitch;
          const float* dout_row = dout_plane + r * g.out_w;
          for (int ox = 0; ox < g.out_w; ++ox) sum += in_row[ox * g.stride_w] * dout_row[ox];
        }
      } else {
        const float* dout_plane = dout_s + (item - weights) * slice_plane;
        for (int q = 0; q < rows * g.out_w; ++q) sum += dout_plane[q];
      }
      acc_s[item - item_begin] += sum;
    }
  }

  float* block_partials =
      partials + (std::size_t(blockIdx.x) * p.slices + blockIdx.z) * std::size_t(p.items);
  for (int item = item_begin + thread; item < item_end; item += threads)
    block_partials[item] = acc_s[item - item_begin];
}

// The staged kernel's work with the operands in registers (stride_w 1, kw = KW): the staged
// kernel's thread reads two shared floats per multiply-add; here a task owns kBlockedFilters
// filters k0.. of one (c, i) row of taps, i.e. kBlockedFilters x KW weights (and the filters'
// biases when c = i = 0), and slides a KW-float window along the input row, so one input read
// and kBlockedFilters dout reads feed kBlockedFilters * KW multiply-adds.
// in: [n, c, h, w], dout: [n, k, out_h, out_w] -> partials: [groups * slices, k*c*kh*kw + k]
// grid: (groups, 1, slices), block: threads (1-D): thread = part * tasks + task, task = (k0 /
// kBlockedFilters, c, i) with i fastest; part sums the slice's rows part * rows_per_part .. of
// each sample of the group. Per sample, part 0 adds the other parts' sums to its own in part
// order, then to its accumulators: a fixed order for every weight.
template <int KW>
__global__ void conv2d_backward_weights_blocked_kernel(Conv2dGeometry g,
                                                       const float* __restrict__ in,
                                                       const float* __restrict__ dout,
                                                       float* __restrict__ partials,
                                                       WeightsGradPlan p) {
  constexpr int kSums = kBlockedFilters * (KW + 1);  // [filter][KW weights, bias]
  extern __shared__ float shared[];
  const int patch = p.patch_h * p.pitch;
  const int slice_plane = p.rows_per_slice * g.out_w;
  float* in_s = shared;                        // [c, patch_h, pitch]
  float* dout_s = in_s + g.c * patch;          // [k, rows_per_slice, out_w]
  float* part_s = dout_s + g.k * slice_plane;  // [row_parts - 1, tasks, kSums]
  const int task = threadIdx.x % p.tasks, part = threadIdx.x / p.tasks;
  const bool busy = part < p.row_parts;
  const int i = task % g.kh, c = (task / g.kh) % g.c;
  const int k0 = task / (g.kh * g.c) * kBlockedFilters;
  const int sample_begin = blockIdx.x * p.samples_per_group;
  const int sample_end = min(g.n, sample_begin + p.samples_per_group);
  const int oy0 = blockIdx.z * p.rows_per_slice;
  const int rows = min(g.out_h - oy0, p.rows_per_slice);
  const int r_begin = part * p.rows_per_part, r_end = min(rows, r_begin + p.rows_per_part);
  // Filters past k (the last group) read filter k - 1's rows; their sums are never written.
  int dout_offset[kBlockedFilters];
#pragma unroll
  for (int f = 0; f < kBlockedFilters; ++f) dout_offset[f] = min(k0 + f, g.k - 1) * slice_plane;

  float acc[kSums];
#pragma unroll
  for (int v = 0; v < kSums; ++v) acc[v] = 0.0f;
  for (int sample = sample_begin; sample < sample_end; ++sample) {
    __syncthreads();  // the previous sample's rows and part sums are no longer read
    stage_weights_grad_sample(g, p, in, dout, sample, oy0, rows, in_s, dout_s);
    __syncthreads();
    float sum[kSums];
#pragma unroll
    for (int v = 0; v < kSums; ++v) sum[v] = 0.0f;
    if (busy)
      for (int r = r_begin; r < r_end; ++r) {
        const float* in_row = in_s + c * patch + (r * g.stride_h + i) * p.pitch;
        const float* dout_row = dout_s + r * g.out_w;
        float window[KW];  // in_row[ox .. ox + KW - 1]
#pragma unroll
        for (int j = 0; j + 1 < KW; ++j) window[j] = in_row[j];
        for (int ox = 0; ox < g.out_w; ++ox) {
          window[KW - 1] = in_row[ox + KW - 1];
#pragma unroll
          for (int f = 0; f < kBlockedFilters; ++f) {
            const float d = dout_row[dout_offset[f] + ox];
#pragma unroll
            for (int j = 0; j < KW; ++j) sum[f * (KW + 1) + j] += window[j] * d;
            sum[f * (KW + 1) + KW] += d;
          }
#pragma unroll
          for (int j = 0; j + 1 < KW; ++j) window[j] = window[j + 1];
        }
      }
    if (p.row_parts > 1) {  // the same for the whole block
      if (busy && part > 0) {
        float* mine = part_s + ((part - 1) * p.tasks + task) * kSums;
#pragma unroll
        for (int v = 0; v < kSums; ++v) mine[v] = sum[v];
      }
      __syncthreads();
      if (part == 0)
        for (int other = 1; other < p.row_parts; ++other) {
          const float* theirs = part_s + ((other - 1) * p.tasks + task) * kSums;
#pragma unroll
          for (int v = 0; v < kSums; ++v) sum[v] += theirs[v];
        }
    }
#pragma unroll
    for (int v = 0; v < kSums; ++v) acc[v] += sum[v];
  }

  if (part != 0) return;
  const int weights = g.k * g.c * g.kh * KW;
  float* block_partials =
      partials + (std::size_t(blockIdx.x) * p.slices + blockIdx.z) * std::size_t(p.items);
#pragma unroll
  for (int f = 0; f < kBlockedFilters; ++f) {
    const int k = k0 + f;
    if (k >= g.k) continue;
#pragma unroll
    for (int j = 0; j < KW; ++j)
      block_partials[((k * g.c + c) * g.kh + i) * KW + j] = acc[f * (KW + 1) + j];
    if (c == 0 && i == 0) block_partials[weights + k] = acc[f * (KW + 1) + KW];
  }
}

// partials: [partial_rows, k*c*kh*kw + k] -> dweight: [k, c, kh, kw], dbias: [k] or nullptr
// grid: ceil(items / 32), block: (32, kReduceGroupRows). Thread (x, y) sums partial rows y,
// y + kReduceGroupRows, ... of item blockIdx.x * 32 + x in order (coalesced over x), then
// thread row 0 adds the thread rows' sums in order: a fixed order for every item.
__global__ void conv2d_backward_weights_reduce_kernel(Conv2dGeometry g,
                                                      const float* __restrict__ partials, int items,
                                                      int partial_rows, float* __restrict__ dweight,
                                                      float* __restrict__ dbias) {
  __shared__ float row_sums[kReduceGroupRows][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int item = blockIdx.x * 32 + tx;
  float sum = 0.0f;
  if (item < items) {
    // Unrolled so several loads are in flight before the (ordered) adds wait on them.
#pragma unroll 8
    for (int row = ty; row < partial_rows; row += kReduceGroupRows)
      sum += partials[std::size_t(row) * items + item];
  }
  row_sums[ty][tx] = sum;
  __syncthreads();
  if (ty != 0 || item >= items) return;
  float total = row_sums[0][tx];
  for (int row = 1; row < kReduceGroupRows; ++row) total += row_sums[row][tx];
  const int weights = g.k * g.c * g.kh * g.kw;
  if (item < weights)
    dweight[item] = total;
  else if (dbias != nullptr)
    dbias[item - weights] = total;
}

// How the stride-1 data-gradient path splits the work: a block owns one sample and one group of
// kChannels input channels; each thread owns two vertically adjacent input pixels of every
// channel in the group, so one dout value read from shared memory feeds 2 * kChannels FMAs
// against float4-broadcast weights (the staged path below feeds one FMA per two shared reads).
struct DataGradTiledPlan {
  bool usable = false;          // false: use the staged path (or its fallback)
  int channels_per_thread = 0;  // kChannels of the kernel: 4 or 8
  int channel_groups = 0;
  int rows = 0, pitch = 0;  // the zero-padded dout plane in shared memory
  int threads = 0;
  std::size_t shared_bytes = 0;
};

// Largest number of shared-memory bank conflicts among the dout reads of the first warps: thread t
// reads padded (2 * (t / w)) * pitch + t % w (plus a tap offset common to the warp).
int dout_read_conflicts(int w, int pitch, int tiles) {
  int worst = 0;
  for (int warp_start = 0; warp_start < std::min(tiles, 256); warp_start += 32) {
    int per_bank[32] = {};
    for (int t = warp_start; t < std::min(tiles, warp_start + 32); ++t)
      worst = std::max(worst, ++per_bank[(2 * (t / w) * pitch + t % w) % 32]);
  }
  return worst;
}

DataGradTiledPlan plan_data_grad_tiled(const Conv2dGeometry& g) {
  DataGradTiledPlan p;
  if (g.stride_h != 1 || g.stride_w != 1 || g.n <= 0 || g.c <= 0 || g.h <= 0 || g.w <= 0) return p;
  // The kernel indexes a sample's planes with int (far beyond what shared memory holds anyway).
  const std::size_t int_limit = std::size_t(1) << 30;
  if (std::size_t(g.c) * g.h * g.w > int_limit || std::size_t(g.k) * g.out_h * g.out_w > int_limit)
    return p;
  p.channels_per_thread = g.c <= 4 ? 4 : 8;
  p.channel_groups = ceil_div_int(g.c, p.channels_per_thread);
  // Two input rows per thread: an odd h gets one zero row more so the unused second pixel of the
  // last row pair reads inside the buffer.
  p.rows = 2 * ceil_div_int(g.h, 2) + g.kh - 1;
  const int cols = g.w + g.kw - 1;
  const int tiles = ceil_div_int(g.h, 2) * g.w;
  p.threads = std::min(kStagedMaxThreads, ceil_div_int(tiles, 32) * 32);
  const std::size_t weight_floats = std::size_t(g.k) * g.kh * g.kw * p.channels_per_thread;
  auto bytes = [&](int pitch) {
    return (weight_floats + std::size_t(g.k) * std::size_t(p.rows) * std::size_t(pitch)) *
           sizeof(float);
  };
  // The row pitch with the fewest bank conflicts that still fits (cols itself when none fits).
  p.pitch = cols;
  int best = dout_read_conflicts(g.w, cols, tiles);
  for (int pitch = cols + 1; pitch < cols + 32 && bytes(pitch) <= kSharedBytesLimit; ++pitch) {
    const int conflicts = dout_read_conflicts(g.w, pitch, tiles);
    if (conflicts < best) best = conflicts, p.pitch = pitch;
  }
  p.shared_bytes = bytes(p.pitch);
  p.usable = p.shared_bytes <= kSharedBytesLimit;
  return p;
}

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w], stride 1 only.
// grid: (n, channel_groups), block: threads (1-D). The block stages its channel group's weights
// transposed to [k, kh, kw, kChannels] (zero past c) and the sample's dout planes zero-padded to
// [k, rows, pitch] (padded (r, col) = dout (r + pad_top - kh + 1, col + pad_left - kw + 1)), so
// din (y, x) reads padded (y + kh - 1 - i, x + kw - 1 - j) at tap (i, j). Each thread sums the
// pixels (y, x) and (y + 1, x) of every channel in the group, in the order k, i, j like the
// other kernels.
template <int kChannels, int kKernel>
__global__ void conv2d_backward_data_tiled_kernel(Conv2dGeometry g, const float* __restrict__ dout,
                                                  const float* __restrict__ weight,
                                                  float* __restrict__ din, DataGradTiledPlan p) {
  static_assert(kChannels % 4 == 0, "weights are read as float4");
  extern __shared__ float4 shared4[];
  // kKernel > 0: the kernel is kKernel x kKernel, known here, so the tap loops unroll.
  const int kh = kKernel > 0 ? kKernel : g.kh, kw = kKernel > 0 ? kKernel : g.kw;
  const int taps = kh * kw;
  const int weight_floats = g.k * taps * kChannels;
  const int padded_plane = p.rows * p.pitch;
  float* weight_s = reinterpret_cast<float*>(shared4);  // [k, kh, kw, kChannels]
  float* dout_s = weight_s + weight_floats;             // [k, rows, pitch]
  const int sample = blockIdx.x, first_c = blockIdx.y * kChannels;
  const int thread = threadIdx.x, threads = blockDim.x;
  const int out_plane = g.out_h * g.out_w;

  // Zero everything first, then copy the real values with coalesced global reads, several in
  // flight per thread (the staging is latency-bound: one block per SM-slot, little else to do).
  for (int t = thread; t < weight_floats + g.k * padded_plane; t += threads) weight_s[t] = 0.0f;
  __syncthreads();
  const int group_c = min(kChannels, g.c - first_c);
  const int group_weights = g.k * group_c * taps;
#pragma unroll 4
  for (int t = thread; t < group_weights; t += threads) {
    const int k = t / (group_c * taps), rest = t % (group_c * taps);
    const int c = rest / taps, tap = rest % taps;
    weight_s[(k * taps + tap) * kChannels + c] =
        weight[(std::size_t(k) * g.c + first_c + c) * taps + tap];
  }
  const int first_oy = g.pad_top - g.kh + 1, first_ox = g.pad_left - g.kw + 1;
  const int used_rows = g.h + g.kh - 1, used_cols = g.w + g.kw - 1;
  const float* dout_sample = dout + std::size_t(sample) * g.k * out_plane;
#pragma unroll 4
  for (int t = thread; t < g.k * out_plane; t += threads) {
    const int k = t / out_plane, oy = (t % out_plane) / g.out_w, ox = t % g.out_w;
    const int r = oy - first_oy, col = ox - first_ox;
    if (r >= 0 && r < used_rows && col >= 0 && col < used_cols)
      dout_s[k * padded_plane + r * p.pitch + col] = dout_sample[t];
  }
  __syncthreads();

  const int in_plane = g.h * g.w;
  const int tiles = ((g.h + 1) / 2) * g.w;
  const float4* weight_s4 = reinterpret_cast<const float4*>(weight_s);
  for (int tile = thread; tile < tiles; tile += threads) {
    const int y = 2 * (tile / g.w), x = tile % g.w;
    float upper[kChannels], lower[kChannels];  // pixels (y, x) and (y + 1, x)
#pragma unroll
    for (int c = 0; c < kChannels; ++c) upper[c] = lower[c] = 0.0f;
    for (int k = 0; k < g.k; ++k) {
      const float* dout_corner = dout_s + k * padded_plane + (y + kh - 1) * p.pitch + x + kw - 1;
      const float4* filter = weight_s4 + k * taps * (kChannels / 4);
#pragma unroll
      for (int i = 0; i < kh; ++i) {
        const float* dout_row = dout_corner - i * p.pitch;
#pragma unroll
        for (int j = 0; j < kw; ++j) {
          const float d_upper = dout_row[-j], d_lower = dout_row[p.pitch - j];
#pragma unroll
          for (int q = 0; q < kChannels / 4; ++q) {
            const float4 w4 = filter[(i * kw + j) * (kChannels / 4) + q];
            upper[4 * q] += d_upper * w4.x;
            upper[4 * q + 1] += d_upper * w4.y;
            upper[4 * q + 2] += d_upper * w4.z;
            upper[4 * q + 3] += d_upper * w4.w;
            lower[4 * q] += d_lower * w4.x;
            lower[4 * q + 1] += d_lower * w4.y;
            lower[4 * q + 2] += d_lower * w4.z;
            lower[4 * q + 3] += d_lower * w4.w;
          }
        }
      }
    }
    float* din_pixel = din + (std::size_t(sample) * g.c + first_c) * in_plane + y * g.w + x;
#pragma unroll
    for (int c = 0; c < kChannels; ++c) {
      if (c >= group_c) break;
      din_pixel[c * in_plane] = upper[c];
      if (y + 1 < g.h) din_pixel[c * in_plane + g.w] = lower[c];
    }
  }
}

// How the staged data-gradient path splits the work: a block owns one sample and one chunk of
// that sample's c*h*w input elements, and stages all the weights plus the sample's dout planes,
// zero-padded so that every tap of the gather reads a valid (possibly zero) value.
struct DataGradPlan {
  bool staged = false;  // false: fall back to one thread per input element, from global memory
  int threads = 0;
  int elements_per_block = 0, chunks = 0;
  int first_oy = 0, first_ox = 0;  // the dout position at padded row 0 / column 0 (may be < 0)
  int rows = 0, cols = 0;          // the padded dout plane
  std::size_t shared_bytes = 0;
};

DataGradPlan plan_data_grad(const Conv2dGeometry& g) {
  DataGradPlan p;
  const std::size_t elements = std::size_t(g.c) * g.h * g.w;
  if (g.n <= 0 || elements == 0 || elements > std::size_t(1) << 30) return p;
  // din row y (padded row py = y + pad_top) reads dout rows oy = (py - i) / stride_h for the taps
  // i = py mod stride_h, + stride_h, ... < kh: pad_top - kh + 1 <= oy * stride_h <= py.
  p.first_oy = floor_div(g.pad_top - g.kh + 1, g.stride_h);
  p.first_ox = floor_div(g.pad_left - g.kw + 1, g.stride_w);
  p.rows = (g.pad_top + g.h - 1) / g.stride_h - p.first_oy + 1;
  p.cols = (g.pad_left + g.w - 1) / g.stride_w - p.first_ox + 1;
  p.threads = std::min(kStagedMaxThreads, ceil_div_int(int(elements), 32) * 32);
  const int rounds = ceil_div_int(int(elements), p.threads);
  const int wanted_chunks = std::min(rounds, ceil_div_int(kTargetStagedBlocks, g.n));
  p.elements_per_block = p.threads * ceil_div_int(rounds, wanted_chunks);
  p.chunks = ceil_div_int(int(elements), p.elements_per_block);
  const std::size_t floats =
      g.weight_size() + std::size_t(g.k) * std::size_t(p.rows) * std::size_t(p.cols);
  p.shared_bytes = floats * sizeof(float);
  p.staged = p.shared_bytes <= kSharedBytesLimit;
  return p;
}

// dout: [n, k, out_h, out_w], weight: [k, c, kh, kw] -> din: [n, c, h, w]
// grid: (n, chunks), block: threads (1-D). The block stages all weights ([k, c, kh, kw]) and the
// sample's dout planes zero-padded to [k, rows, cols] (padded (r, col) = dout (first_oy + r,
// first_ox + col)); each thread then gathers its input elements as the fallback kernel does,
// without bounds checks: out-of-range dout positions read the zero border.
__global__ void conv2d_backward_data_staged_kernel(Conv2dGeometry g, const float* __restrict__ dout,
                                                   const float* __restrict__ weight,
                                                   float* __restrict__ din, DataGradPlan p) {
  extern __shared__ float shared[];
  const int weights = g.k * g.c * g.kh * g.kw;
  const int padded_plane = p.rows * p.cols;
  float* weight_s = shared;          // [k, c, kh, kw]
  float* dout_s = shared + weights;  // [k, rows, cols]
  const int sample = blockIdx.x;
  const int thread = threadIdx.x, threads = blockDim.x;
  const int out_plane = g.out_h * g.out_w;

  for (int t = thread; t < weights; t += threads) weight_s[t] = weight[t];
  const float* dout_sample = dout + std::size_t(sample) * g.k * out_plane;
  // One warp per staged row: no per-element division.
  const int lane = thread % 32, warp = thread / 32, warps = threads / 32;
  for (int row = warp; row < g.k * p.rows; row += warps) {
    const int k = row / p.rows, oy = p.first_oy + row % p.rows;
    const bool row_inside = oy >= 0 && oy < g.out_h;
    const float* dout_row = dout_sample + k * out_plane + (row_inside ? oy : 0) * g.out_w;
    for (int col = lane; col < p.cols; col += 32) {
      const int ox = p.first_ox + col;
      dout_s[row * p.cols + col] = (row_inside && ox >= 0 && ox < g.out_w) ? dout_row[ox] : 0.0f;
    }
  }
  __syncthreads();

  const int in_plane = g.h * g.w;
  const int elements = g.c * in_plane;
  const int element_begin = blockIdx.y * p.elements_per_block;
  const int element_end = min(elements, element_begin + p.elements_per_block);
  float* din_sample = din + std::size_t(sample) * elements;
  for (int e = element_begin + thread; e < element_end; e += threads) {
    const int c = e / in_plane, y = (e % in_plane) / g.w, x = e % g.w;
    const int py = y + g.pad_top, px = x + g.pad_left;
    // The first tap i = py mod stride_h reads dout row oy = py / stride_h; each further tap
    // (i += stride_h) reads the row above.
    const int first_i = py % g.stride_h, first_row = py / g.stride_h - p.first_oy;
    const int first_j = px % g.stride_w, first_col = px / g.stride_w - p.first_ox;
    float sum = 0.0f;
    for (int k = 0; k < g.k; ++k) {
      const float* dout_plane = dout_s + k * padded_plane;
      const float* filter = weight_s + (k * g.c + c) * g.kh * g.kw;
      for (int i = first_i, row = first_row; i < g.kh; i += g.stride_h, --row) {
        const float* dout_row = dout_plane + row * p.cols;
        const float* filter_row = filter + i * g.kw;
        for (int j = first_j, col = first_col; j < g.kw; j += g.stride_w, --col)
          sum += dout_row[col] * filter_row[j];
      }
    }
    din_sample[e] = sum;
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

void conv2d_backward_data(const Conv2dGeometry& g, const float* dout, const float* weight,
                          float* din, cudaStream_t stream) {
  const std::size_t count = g.in_size();
  if (count == 0) return;
  const DataGradTiledPlan tiled = plan_data_grad_tiled(g);
  if (tiled.usable) {
    const dim3 grid{unsigned(g.n), unsigned(tiled.channel_groups)};
    // LeNet's 5x5 kernels get the unrolled instantiations.
    const bool five = g.kh == 5 && g.kw == 5;
    const auto launch = [&](auto kernel) {
      kernel<<<grid, unsigned(tiled.threads), tiled.shared_bytes, stream>>>(g, dout, weight, din,
                                                                            tiled);
      CNNRT_LAUNCH_CHECK(conv2d_backward_data_tiled_kernel);
    };
    if (tiled.channels_per_thread == 4)
      launch(five ? conv2d_backward_data_tiled_kernel<4, 5>
                  : conv2d_backward_data_tiled_kernel<4, 0>);
    else
      launch(five ? conv2d_backward_data_tiled_kernel<8, 5>
                  : conv2d_backward_data_tiled_kernel<8, 0>);
    return;
  }
  const DataGradPlan plan = plan_data_grad(g);
  if (plan.staged) {
    const dim3 grid{unsigned(g.n), unsigned(plan.chunks)};
    conv2d_backward_data_staged_kernel<<<grid, unsigned(plan.threads), plan.shared_bytes, stream>>>(
        g, dout, weight, din, plan);
    CNNRT_LAUNCH_CHECK(conv2d_backward_data_staged_kernel);
    return;
  }
  // Too large to stage (AlexNet's layers): gather straight from global memory.
  conv2d_backward_data_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                                stream>>>(g, dout, weight, din, count);
  CNNRT_LAUNCH_CHECK(conv2d_backward_data_kernel);
}

std::size_t conv2d_backward_weights_workspace_bytes(const Conv2dGeometry& g) {
  // The staged path's partial sums, for any batch up to g.n (the executor sizes the workspace
  // once for the full batch); the fallback reduces entirely in shared memory.
  const WeightsGradPlan plan = plan_weights_grad(g);
  return plan.staged ? weights_grad_partial_rows_bound(g) * std::size_t(plan.items) * sizeof(float)
                     : 0;
}

void conv2d_backward_weights(const Conv2dGeometry& g, const float* in, const float* dout,
                             float* dweight, float* dbias, void* workspace, cudaStream_t stream) {
  const WeightsGradPlan plan = plan_weights_grad(g);
  if (plan.staged) {
    if (workspace == nullptr)
      throw Error(fmt::format(
          "cuda::conv2d_backward_weights: input {}x{}x{}x{}, {} filters {}x{} needs a workspace "
          "of {} bytes (conv2d_backward_weights_workspace_bytes), got nullptr",
          g.n, g.c, g.h, g.w, g.k, g.kh, g.kw, conv2d_backward_weights_workspace_bytes(g)));
    float* partials = static_cast<float*>(workspace);
    const dim3 grid{unsigned(plan.groups), unsigned(plan.chunks), unsigned(plan.slices)};
    const auto partials_kernel = !plan.blocked ? conv2d_backward_weights_partials_kernel
                                 : g.kw == 3   ? conv2d_backward_weights_blocked_kernel<3>
                                               : conv2d_backward_weights_blocked_kernel<5>;
    partials_kernel<<<grid, unsigned(plan.threads), plan.shared_bytes, stream>>>(g, in, dout,
                                                                                 partials, plan);
    CNNRT_LAUNCH_CHECK(conv2d_backward_weights_partials_kernel);
    const dim3 reduce_block{32, unsigned(kReduceGroupRows)};
    conv2d_backward_weights_reduce_kernel<<<unsigned(ceil_div_int(plan.items, 32)), reduce_block, 0,
                                            stream>>>(g, partials, plan.items,
                                                      plan.groups * plan.slices, dweight, dbias);
    CNNRT_LAUNCH_CHECK(conv2d_backward_weights_reduce_kernel);
    return;
  }
  // Too large to stage one sample (AlexNet's layers): one block per weight.
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
