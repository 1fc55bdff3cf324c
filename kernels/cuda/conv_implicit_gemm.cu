// Convolution forward as implicit GEMM on tensor cores (docs/math.md, implicit GEMM), TF32
// operands and FP32 sums; the index arithmetic is kernels/implicit_gemm.hpp's, which
// tests/implicit_gemm_test.cpp checks on the CPU. Deterministic: each output is summed by one
// warp in a fixed order. Reached only when TF32 is asked for (conv2d_forward_tf32 in conv.cuh).
#include <fmt/format.h>
#include <mma.h>

#include <cstdint>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/wmma_tf32.cuh"
#include "kernels/implicit_gemm.hpp"

namespace cnnrt::cuda {
namespace {

constexpr int kTileM = igemm::kTf32ConvTileM;  // output pixels per block
constexpr int kTileN = igemm::kTf32ConvTileN;  // filters per block
constexpr int kTileR = igemm::kTf32ConvTileR;  // taps per step
constexpr int kThreads = 128;                  // 4 warps: warp (wm, wn) owns a 16 x 16 piece
constexpr int kPad = 4;  // rows stay 16-byte multiples (WMMA's ldm) and start on other banks
static_assert(kTileM == 32 && kTileN == 32 && kTileR == 16 && kThreads == 128,
              "the loaders' thread mapping and the 2 x 2 warp layout assume this tile");
// Each thread stages one A row (kTileR / kAPasses of its taps) and one B tap row.
constexpr int kAPasses = kThreads / kTileM;  // 4 threads per A row
constexpr int kBPasses = kThreads / kTileR;  // 8 threads per B row

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out (z), fused.activated
// (act(z), when not nullptr): [n, k, out_h, out_w]
// GEMM: M = n*out_h*out_w output pixels, N = k filters, R = c*kh*kw taps; A[m][r] is the input
// under tap r of pixel m (zero in the padding), B[r][n] = weight[n][r].
// grid: (ceil(M / 32), ceil(N / 32)), block: 128 threads. Per 16-tap step the block stages A
// (32 x 16, threads along the pixels: coalesced for stride 1) and B (16 x 16 taps x 32 filters,
// threads along the taps: contiguous in the weight) in shared memory; each warp runs two m16n16k8
// TF32 WMMA steps, operands rounded by wmma::__float_to_tf32 (to nearest, ties away: tf32_round
// of kernels/precision.hpp). The result goes through shared memory to coalesced stores.
__global__ void __launch_bounds__(kThreads)
    conv2d_forward_tf32_kernel(Conv2dGeometry g, const float* __restrict__ in,
                               const float* __restrict__ weight, const float* __restrict__ bias,
                               float* __restrict__ out, FusedActivation<float> fused) {
  using namespace nvcuda;
  __shared__ __align__(32) float a_s[kTileM][kTileR + kPad];  // [pixel][tap]
  __shared__ __align__(32) float b_s[kTileR][kTileN + kPad];  // [tap][filter]
  __shared__ __align__(32) float c_s[kTileM][kTileN + kPad];  // [pixel][filter]
  const igemm::GemmShape s = igemm::forward_gemm(g);
  const int t = threadIdx.x, warp = t / 32;
  const int wm = warp / 2, wn = warp % 2;
  const int m0 = igemm::tile_begin(blockIdx.x, kTileM);
  const int n0 = igemm::tile_begin(blockIdx.y, kTileN);

  // This thread's A row is the same in every step: its pixel is decomposed once.
  const int a_row = t % kTileM, a_col0 = t / kTileM;
  const bool a_row_in = m0 + a_row < s.m;
  const igemm::OutPixel pixel = igemm::out_pixel(g, a_row_in ? m0 + a_row : 0);
  const int b_row = t % kTileR, b_col0 = t / kTileR;

  detail::Tf32Accumulator acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int r0 = 0; r0 < s.r; r0 += kTileR) {
#pragma unroll
    for (int i = 0; i < kTileR / kAPasses; ++i) {
      const int col = a_col0 + kAPasses * i, r = r0 + col;
      float v = 0.0f;
      if (a_row_in && r < s.r) {
        const std::int64_t at = igemm::forward_a(g, pixel, igemm::filter_tap(g, r));
        if (at >= 0) v = in[at];
      }
      a_s[a_row][col] = v;
    }
#pragma unroll
    for (int i = 0; i < kTileN / kBPasses; ++i) {
      const int col = b_col0 + kBPasses * i, n = n0 + col, r = r0 + b_row;
      b_s[b_row][col] = n < s.n && r < s.r ? weight[igemm::forward_b(g, r, n)] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileR; kk += 8) {
      detail::mma_tf32_16x16x8(acc, &a_s[wm * 16][kk], kTileR + kPad, &b_s[kk][wn * 16],
                               kTileN + kPad);
    }
    __syncthreads();  // the next step overwrites the tiles
  }
  wmma::store_matrix_sync(&c_s[wm * 16][wn * 16], acc, kTileN + kPad, wmma::mem_row_major);
  __syncthreads();
  for (int e = t; e < kTileM * kTileN; e += kThreads) {
    const int row = e % kTileM, col = e / kTileM;  // neighbouring threads: neighbouring pixels
    const int m = m0 + row, n = n0 + col;
    if (m >= s.m || n >= s.n) continue;
    const std::int64_t at = igemm::forward_c(g, igemm::out_pixel(g, m), n);
    const float z = c_s[row][col] + (bias != nullptr ? bias[n] : 0.0f);
    out[at] = z;
    if (fused.activated != nullptr)
      fused.activated[at] = detail::activate(fused.kind, fused.leaky_slope, z);
  }
}

}  // namespace

// in: [n, c, h, w], weight: [k, c, kh, kw], bias: [k] or nullptr -> out, fused.activated:
// [n, k, out_h, out_w]
void conv2d_forward_tf32(const Conv2dGeometry& g, const float* in, const float* weight,
                         const float* bias, float* out, const FusedActivation<float>& fused,
                         cudaStream_t stream) {
  if (!igemm::gemm_fits_int(g))
    throw Error(fmt::format(
        "convolution of {}x{}x{}x{} with {} filters {}x{}: too large for the TF32 implicit-GEMM "
        "kernel (a GEMM dimension passes 2^31); use FP32",
        g.n, g.c, g.h, g.w, g.k, g.kh, g.kw));
  const igemm::GemmShape s = igemm::forward_gemm(g);
  const igemm::TileCounts tiles = igemm::tile_counts(s, {kTileM, kTileN, kTileR});
  constexpr int kMaxGridY = 65535;
  if (tiles.n > kMaxGridY)
    throw Error(fmt::format("convolution with {} filters: more than the TF32 kernel's {} filters",
                            g.k, kMaxGridY * kTileN));
  const dim3 grid{unsigned(tiles.m), unsigned(tiles.n)};
  conv2d_forward_tf32_kernel<<<grid, kThreads, 0, stream>>>(g, in, weight, bias, out, fused);
  CNNRT_LAUNCH_CHECK(conv2d_forward_tf32_kernel);
}

}  // namespace cnnrt::cuda
