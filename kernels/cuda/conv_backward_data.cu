// CUDA convolution data gradient (docs/math.md section 1), NCHW: a gather, so every input element
// is summed by one thread; no atomics, deterministic.
#include <algorithm>
#include <cstddef>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/conv_common.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

// Floor division for a possibly negative numerator (b > 0).
__host__ __device__ inline int floor_div(int a, int b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
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

}  // namespace cnnrt::cuda
