// CUDA pooling (docs/math.md section 5), no padding. Forward: one thread per output. Backward: one
// thread per input element gathering over the windows that cover it, so overlapping windows
// (AlexNet's 3x3 stride 2) need no atomics and the sums have a fixed order; max pooling whose
// windows tile the input (LeNet's) runs one thread per window instead.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/pool.cuh"

namespace cnnrt::cuda {
namespace {

// The output rows (or columns) whose window covers input row y: oy * stride <= y < oy * stride
// + window, clipped to [0, out).
struct CoveringRange {
  int first, last;  // inclusive; empty when first > last
};

__device__ __forceinline__ CoveringRange covering_windows(int y, int window, int stride, int out) {
  const int first = y - window < 0 ? 0 : (y - window) / stride + 1;
  const int last = min(y / stride, out - 1);
  return CoveringRange{first, last};
}

// Every kernel below indexes with Index: 32-bit when both tensors have fewer than 2^31 elements
// (the usual case; 64-bit division is many times slower on the GPU), else 64-bit. Below 2^31 an
// index plus the grid's stride cannot wrap around 32 bits.

// in: [n, c, h, w] -> out, argmax: [n, c, out_h, out_w]; grid-stride over outputs.
// argmax = y * w + x of the first maximum in row-major order (strict > keeps the first).
template <typename Index>
__global__ void max_pool_forward_kernel(Pool2dGeometry g, Index count, const float* __restrict__ in,
                                        float* __restrict__ out,
                                        std::int32_t* __restrict__ argmax) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index index = Index(blockIdx.x) * blockDim.x + threadIdx.x; index < count; index += stride) {
    const int ox = int(index % g.out_w);
    const int oy = int((index / g.out_w) % g.out_h);
    const Index plane = index / (Index(g.out_w) * g.out_h);  // n * c + channel
    const float* in_plane = in + plane * g.h * g.w;
    const int y0 = oy * g.stride_h, x0 = ox * g.stride_w;
    int best_at = y0 * g.w + x0;
    float best = in_plane[best_at];
    for (int i = 0; i < g.win_h; ++i)
      for (int j = 0; j < g.win_w; ++j) {
        const int at = (y0 + i) * g.w + x0 + j;
        const float value = in_plane[at];
        if (value > best) {
          best = value;
          best_at = at;
        }
      }
    out[index] = best;
    argmax[index] = best_at;
  }
}

// Whether the windows tile the input exactly (stride = window, out * stride = in: LeNet's 2x2
// stride 2 on even sizes): each input element then lies in exactly one window.
bool windows_tile_input(const Pool2dGeometry& g) {
  return g.stride_h == g.win_h && g.stride_w == g.win_w && g.out_h * g.stride_h == g.h &&
         g.out_w * g.stride_w == g.w;
}

// dout, argmax: [n, c, out_h, out_w] -> din: [n, c, h, w] (through a fused activation's backward
// pass when fused.z is set). Generic: grid-stride over the `count` inputs, each summing dout over
// the windows that cover it and pick it. WindowsTile (only when windows_tile_input(g)): grid-stride
// over the `count` windows, one thread per window (a quarter of the threads for 2x2, no search
// for covering windows) writing its window's inputs: dout at the argmax, 0 elsewhere, as the same
// 0 + dout sum, so both give the same bits.
template <typename Index, bool WindowsTile>
__global__ void max_pool_backward_kernel(Pool2dGeometry g, Index count,
                                         const float* __restrict__ dout,
                                         const std::int32_t* __restrict__ argmax,
                                         float* __restrict__ din,
                                         FusedActivationGrad<float> fused) {
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index index = Index(blockIdx.x) * blockDim.x + threadIdx.x; index < count; index += stride) {
    if constexpr (WindowsTile) {
      const int ox = int(index % g.out_w);
      const int oy = int((index / g.out_w) % g.out_h);
      const Index plane_begin = index / (Index(g.out_w) * g.out_h) * (Index(g.h) * g.w);
      const int winner = argmax[index];
      const float gradient = dout[index];
      for (int i = 0; i < g.win_h; ++i)
        for (int j = 0; j < g.win_w; ++j) {
          const int here = (oy * g.stride_h + i) * g.w + ox * g.stride_w + j;
          float sum = 0.0f;
          if (here == winner) sum += gradient;
          const Index at = plane_begin + here;
          din[at] = detail::fused_grad(fused, at, sum);
        }
    } else {
      const int x = int(index % g.w);
      const int y = int((index / g.w) % g.h);
      const Index plane = index / (Index(g.w) * g.h);
      const Index out_plane = plane * g.out_h * g.out_w;
      const int here = y * g.w + x;
      const CoveringRange rows = covering_windows(y, g.win_h, g.stride_h, g.out_h);
      const CoveringRange cols = covering_windows(x, g.win_w, g.stride_w, g.out_w);
      float sum = 0.0f;
      for (int oy = rows.first; oy <= rows.last; ++oy)
        for (int ox = cols.first; ox <= cols.last; ++ox) {
          const Index at = out_plane + Index(oy) * g.out_w + ox;
          if (argmax[at] == here) sum += dout[at];
        }
      din[index] = detail::fused_grad(fused, index, sum);
    }
  }
}

// in: [n, c, h, w] -> out: [n, c, out_h, out_w], the window mean; grid-stride over outputs.
template <typename Index>
__global__ void avg_pool_forward_kernel(Pool2dGeometry g, Index count, const float* __restrict__ in,
                                        float* __restrict__ out) {
  const float inv_window = 1.0f / float(g.win_h * g.win_w);
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index index = Index(blockIdx.x) * blockDim.x + threadIdx.x; index < count; index += stride) {
    const int ox = int(index % g.out_w);
    const int oy = int((index / g.out_w) % g.out_h);
    const Index plane = index / (Index(g.out_w) * g.out_h);
    const float* window =
        in + plane * g.h * g.w + Index(oy) * g.stride_h * g.w + Index(ox) * g.stride_w;
    float sum = 0.0f;
    for (int i = 0; i < g.win_h; ++i)
      for (int j = 0; j < g.win_w; ++j) sum += window[i * g.w + j];
    out[index] = sum * inv_window;
  }
}

// dout: [n, c, out_h, out_w] -> din: [n, c, h, w]: sum of dout / (win_h * win_w) over the
// covering windows (through a fused activation's backward pass when fused.z is set); grid-stride
// over inputs.
template <typename Index>
__global__ void avg_pool_backward_kernel(Pool2dGeometry g, Index count,
                                         const float* __restrict__ dout, float* __restrict__ din,
                                         FusedActivationGrad<float> fused) {
  const float inv_window = 1.0f / float(g.win_h * g.win_w);
  const Index stride = Index(gridDim.x) * blockDim.x;
  for (Index index = Index(blockIdx.x) * blockDim.x + threadIdx.x; index < count; index += stride) {
    const int x = int(index % g.w);
    const int y = int((index / g.w) % g.h);
    const Index plane = index / (Index(g.w) * g.h);
    const float* dout_plane = dout + plane * g.out_h * g.out_w;
    const CoveringRange rows = covering_windows(y, g.win_h, g.stride_h, g.out_h);
    const CoveringRange cols = covering_windows(x, g.win_w, g.stride_w, g.out_w);
    float sum = 0.0f;
    for (int oy = rows.first; oy <= rows.last; ++oy)
      for (int ox = cols.first; ox <= cols.last; ++ox) sum += dout_plane[oy * g.out_w + ox];
    din[index] = detail::fused_grad(fused, index, sum * inv_window);
  }
}

// Calls launch(count) with count as std::uint32_t or std::size_t (see above): the kernel's Index.
template <typename Launch>
void launch_indexed(const Pool2dGeometry& g, std::size_t count, Launch&& launch) {
  const std::size_t largest = std::max(g.in_size(), g.out_size());
  if (largest <= std::size_t(std::numeric_limits<std::int32_t>::max()))
    launch(std::uint32_t(count));
  else
    launch(count);
}

}  // namespace

void max_pool_forward(const Pool2dGeometry& g, const float* in, float* out, std::int32_t* argmax,
                      cudaStream_t stream) {
  const std::size_t count = g.out_size();
  if (count == 0) return;
  launch_indexed(g, count, [&](auto n) {
    max_pool_forward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                              stream>>>(g, n, in, out, argmax);
  });
  CNNRT_LAUNCH_CHECK(max_pool_forward_kernel);
}

void max_pool_backward(const Pool2dGeometry& g, const float* dout, const std::int32_t* argmax,
                       float* din, const FusedActivationGrad<float>& fused, cudaStream_t stream) {
  const std::size_t count = g.in_size();
  if (count == 0) return;
  // Tiling windows: one thread per window, else one per input.
  const bool windows_tile = windows_tile_input(g);
  const std::size_t threads = windows_tile ? g.out_size() : count;
  launch_indexed(g, threads, [&](auto n) {
    const unsigned blocks = detail::elementwise_blocks(threads);
    if (windows_tile)
      max_pool_backward_kernel<decltype(n), true>
          <<<blocks, detail::kElementwiseThreads, 0, stream>>>(g, n, dout, argmax, din, fused);
    else
      max_pool_backward_kernel<decltype(n), false>
          <<<blocks, detail::kElementwiseThreads, 0, stream>>>(g, n, dout, argmax, din, fused);
  });
  CNNRT_LAUNCH_CHECK(max_pool_backward_kernel);
}

void avg_pool_forward(const Pool2dGeometry& g, const float* in, float* out, cudaStream_t stream) {
  const std::size_t count = g.out_size();
  if (count == 0) return;
  launch_indexed(g, count, [&](auto n) {
    avg_pool_forward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                              stream>>>(g, n, in, out);
  });
  CNNRT_LAUNCH_CHECK(avg_pool_forward_kernel);
}

void avg_pool_backward(const Pool2dGeometry& g, const float* dout, float* din,
                       const FusedActivationGrad<float>& fused, cudaStream_t stream) {
  const std::size_t count = g.in_size();
  if (count == 0) return;
  launch_indexed(g, count, [&](auto n) {
    avg_pool_backward_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                               stream>>>(g, n, dout, din, fused);
  });
  CNNRT_LAUNCH_CHECK(avg_pool_backward_kernel);
}

}  // namespace cnnrt::cuda
