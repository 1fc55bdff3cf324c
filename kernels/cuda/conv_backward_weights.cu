// CUDA convolution weight and bias gradients (docs/math.md section 1), NCHW. Deterministic: summed
// in a fixed order from per-sample-group partial sums (staged path) or by one block with a
// fixed-order tree reduction (the fallback); no atomics.
#include <fmt/format.h>

#include <algorithm>
#include <cstddef>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/conv_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

constexpr int kReduceThreads = 256;  // power of two (tree reduction)

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

// The register-blocked weight gradient: filters per thread, and the blocks it aims for (fewer
// than the staged kernels: its blocks hold up to 256 busy threads, and every block adds a row of
// partial sums for the reduction to read).
constexpr int kBlockedFilters = 4;
constexpr int kTargetBlockedBlocks = 264;
// Thread rows of the partial-sum reduction block (32 x this): few items (LeNet conv1 has 156)
// still get enough threads loading partial rows in parallel.
constexpr int kReduceGroupRows = 32;

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

}  // namespace

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
    if (plan.blocked)
      CNNRT_LAUNCH_CHECK(conv2d_backward_weights_blocked_kernel);
    else
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
