// CUDA dense layer (docs/math.md section 4, weight stored [out, in] as PyTorch does). Two GEMM
// paths: a hand-written shared-memory tiled kernel and cuBLAS (an empty reduction, e.g. a batch of
// 0, zero-fills instead: cuBLAS rejects a leading dimension of 0). The tiled GEMM adds the bias and
// runs fused activations in its epilogue; after cuBLAS the same epilogue runs as a kernel. The
// tiled weight gradient sums the bias gradient as an extra column; with cuBLAS a kernel of our own
// does. Every output element is summed by one thread in a fixed order (the bias gradient: by one
// block in a fixed tree; cuBLAS: deterministic for a fixed configuration): no atomics.
#include <fmt/format.h>
#include <mma.h>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/cublas_api.hpp"
#include "kernels/cuda/dense.cuh"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/wmma_tf32.cuh"

namespace cnnrt::cuda {
namespace {

constexpr int kGemmTile = 16;
// k-depth of the tiled GEMM's shared tiles: four 16-deep slices per stage, so each thread issues
// four loads of each operand at once and a K=400 product waits on 7 rounds of global loads, not 25.
constexpr int kGemmDepth = 4 * kGemmTile;

// What the tiled GEMM does with each result c[row, col] before storing it, so a dense layer's
// bias and a fused activation cost no kernel of their own.
struct GemmEpilogue {
  const float* bias = nullptr;          // [n]: c = acc + bias[col] (forward)
  FusedActivation<float> forward;       // activated[row, col] = act(c) (forward)
  FusedActivationGrad<float> backward;  // c = act'(z, a, acc) (backward-data)
  // When set, op(b) has an extra column n of ones, and column n of the result, the row sums of
  // op(a), goes here ([m]) instead of into c: a dense layer's bias gradient, summed in the same
  // pass and the same order (row by row) as its weight gradient (backward-weights).
  float* ones_column = nullptr;
};

// Element (row, col) of op(a) ([m, k]; a stored [m, k], or [k, m] when Trans), zero outside.
template <bool Trans>
__device__ __forceinline__ float op_a(const float* __restrict__ a, int m, int k, int row, int col) {
  if (row >= m || col >= k) return 0.0f;
  return Trans ? a[std::size_t(col) * m + row] : a[std::size_t(row) * k + col];
}

// Element (row, col) of op(b) ([k, columns]; b stored [k, n], or [n, k] when Trans), where column
// n, when columns > n, is GemmEpilogue::ones_column's column of ones; zero outside.
template <bool Trans>
__device__ __forceinline__ float op_b(const float* __restrict__ b, int k, int n, int columns,
                                      int row, int col) {
  if (row >= k || col >= columns) return 0.0f;
  if (col == n) return 1.0f;
  return Trans ? b[std::size_t(col) * k + row] : b[std::size_t(row) * n + col];
}

// Stores result (row, col) of an m x columns product through the epilogue; c is [m, n].
__device__ __forceinline__ void store_result(const GemmEpilogue& epilogue, float* __restrict__ c,
                                             int m, int n, int columns, int row, int col,
                                             float acc) {
  if (row >= m || col >= columns) return;
  if (col == n) {  // the ones column (only there when epilogue.ones_column is set)
    epilogue.ones_column[row] = acc;
    return;
  }
  const std::size_t at = std::size_t(row) * n + col;
  float value = acc;
  if (epilogue.bias != nullptr) value += epilogue.bias[col];
  value = detail::fused_grad(epilogue.backward, at, value);
  c[at] = value;
  if (epilogue.forward.activated != nullptr)
    epilogue.forward.activated[at] =
        detail::activate(epilogue.forward.kind, epilogue.forward.leaky_slope, value);
}

// c: [m, n] = op(a) * op(b), all row-major, then `epilogue`. a is stored [m, k] (or [k, m] when
// TransA), b is stored [k, n] (or [n, k] when TransB). grid: (ceil(columns / 16), ceil(m / 16)),
// block: (16, 16); thread (ty, tx) computes c[m0 + ty, n0 + tx], summing k in order. Tiles
// (16 x kGemmDepth of op(a), kGemmDepth x 16 of op(b)) are loaded so that
// consecutive threads read consecutive addresses whichever way a matrix is stored; padded rows
// avoid bank conflicts on the transposed stores.
template <bool TransA, bool TransB>
__global__ void gemm_tiled_kernel(int m, int n, int k, const float* __restrict__ a,
                                  const float* __restrict__ b, float* __restrict__ c,
                                  GemmEpilogue epilogue) {
  // Row pitch 81 = 17 (mod 32), as b_tile's 17: the transposed stores of a warp hit 32 banks.
  __shared__ float a_tile[kGemmTile][kGemmDepth + 17];  // [m][k]
  __shared__ float b_tile[kGemmDepth][kGemmTile + 1];   // [k][n]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int m0 = blockIdx.y * kGemmTile, n0 = blockIdx.x * kGemmTile;
  const int columns = n + (epilogue.ones_column != nullptr ? 1 : 0);  // of op(b) and the result
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kGemmDepth) {
#pragma unroll
    for (int q = 0; q < kGemmDepth; q += kGemmTile) {
      if (TransA)
        a_tile[tx][q + ty] = op_a<true>(a, m, k, m0 + tx, k0 + q + ty);
      else
        a_tile[ty][q + tx] = op_a<false>(a, m, k, m0 + ty, k0 + q + tx);
      if (TransB)
        b_tile[q + tx][ty] = op_b<true>(b, k, n, columns, k0 + q + tx, n0 + ty);
      else
        b_tile[q + ty][tx] = op_b<false>(b, k, n, columns, k0 + q + ty, n0 + tx);
    }
    __syncthreads();
    // The sums run over k rounded up to a multiple of 16 (zeros past k), whatever the depth.
    const int depth = min(kGemmDepth, (k - k0 + kGemmTile - 1) / kGemmTile * kGemmTile);
    if (depth == kGemmDepth) {
#pragma unroll
      for (int kk = 0; kk < kGemmDepth; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
    } else {
      for (int kk = 0; kk < depth; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
    }
    __syncthreads();
  }
  store_result(epilogue, c, m, n, columns, m0 + ty, n0 + tx, acc);
}

// The same product on tensor cores in TF32 (GemmImpl::tf32): each operand element is rounded to
// TF32 (10 mantissa bits, round to nearest, ties away from zero), products are exact and summed
// in float. grid: (ceil(columns / 32), ceil(m / 32)), block: kTf32Threads = 4 warps, warp (wm, wn)
// owning the 16 x 16 piece (wm, wn) of the block's 32 x 32 output. Per 16-deep slice of k the
// block stages op(a) and op(b) in shared memory (coalesced: the fastest-varying thread index runs
// along the stored rows), each warp runs two m16n16k8 WMMA steps; the result goes through shared
// memory to store_result, so the epilogue is the tiled kernel's.
constexpr int kTf32Block = 32, kTf32Depth = 16, kTf32Threads = 128;
constexpr int kTf32Pad = 4;  // rows stay 16-byte multiples (WMMA's ldm) and start on other banks

template <bool TransA, bool TransB>
__global__ void __launch_bounds__(kTf32Threads)
    gemm_tf32_kernel(int m, int n, int k, const float* __restrict__ a, const float* __restrict__ b,
                     float* __restrict__ c, GemmEpilogue epilogue) {
  using namespace nvcuda;
  __shared__ __align__(32) float a_s[kTf32Block][kTf32Depth + kTf32Pad];  // [m][k]
  __shared__ __align__(32) float b_s[kTf32Depth][kTf32Block + kTf32Pad];  // [k][n]
  __shared__ __align__(32) float c_s[kTf32Block][kTf32Block + kTf32Pad];
  const int t = threadIdx.x, warp = t / 32;
  const int wm = warp / 2, wn = warp % 2;
  const int m0 = blockIdx.y * kTf32Block, n0 = blockIdx.x * kTf32Block;
  const int columns = n + (epilogue.ones_column != nullptr ? 1 : 0);
  detail::Tf32Accumulator acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int k0 = 0; k0 < k; k0 += kTf32Depth) {
    for (int e = t; e < kTf32Block * kTf32Depth; e += kTf32Threads) {
      const int row = TransA ? e % kTf32Block : e / kTf32Depth;
      const int col = TransA ? e / kTf32Block : e % kTf32Depth;
      a_s[row][col] = op_a<TransA>(a, m, k, m0 + row, k0 + col);
    }
    for (int e = t; e < kTf32Depth * kTf32Block; e += kTf32Threads) {
      const int row = TransB ? e % kTf32Depth : e / kTf32Block;
      const int col = TransB ? e / kTf32Depth : e % kTf32Block;
      b_s[row][col] = op_b<TransB>(b, k, n, columns, k0 + row, n0 + col);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTf32Depth; kk += 8) {
      detail::mma_tf32_16x16x8(acc, &a_s[wm * 16][kk], kTf32Depth + kTf32Pad, &b_s[kk][wn * 16],
                               kTf32Block + kTf32Pad);
    }
    __syncthreads();  // the next slice overwrites the tiles
  }
  wmma::store_matrix_sync(&c_s[wm * 16][wn * 16], acc, kTf32Block + kTf32Pad, wmma::mem_row_major);
  __syncthreads();
  for (int e = t; e < kTf32Block * kTf32Block; e += kTf32Threads) {
    const int row = e / kTf32Block, col = e % kTf32Block;
    store_result(epilogue, c, m, n, columns, m0 + row, n0 + col, c_s[row][col]);
  }
}

// c [m, n] = op(a) * op(b) through `epilogue` with a hand-written kernel: the tiled one, or the
// tensor-core one for GemmImpl::tf32.
template <bool TransA, bool TransB>
void launch_gemm(GemmImpl impl, int m, int n, int k, const float* a, const float* b, float* c,
                 cudaStream_t stream, const GemmEpilogue& epilogue = {}) {
  const int columns = n + (epilogue.ones_column != nullptr ? 1 : 0);
  if (impl == GemmImpl::tf32) {
    const dim3 grid{unsigned((columns + kTf32Block - 1) / kTf32Block),
                    unsigned((m + kTf32Block - 1) / kTf32Block)};
    gemm_tf32_kernel<TransA, TransB><<<grid, kTf32Threads, 0, stream>>>(m, n, k, a, b, c, epilogue);
    CNNRT_LAUNCH_CHECK(gemm_tf32_kernel);
    return;
  }
  const dim3 grid{unsigned((columns + kGemmTile - 1) / kGemmTile),
                  unsigned((m + kGemmTile - 1) / kGemmTile)};
  const dim3 block{kGemmTile, kGemmTile};
  gemm_tiled_kernel<TransA, TransB><<<grid, block, 0, stream>>>(m, n, k, a, b, c, epilogue);
  CNNRT_LAUNCH_CHECK(gemm_tiled_kernel);
}

// c: [m, n] holds a product computed elsewhere (cuBLAS, an empty reduction); each element goes
// through the same epilogue as in the hand-written kernels (no ones column here). Grid-stride.
__global__ void epilogue_kernel(int m, int n, float* c, GemmEpilogue epilogue) {
  const std::size_t count = std::size_t(m) * n;
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    store_result(epilogue, c, m, n, n, int(i / n), int(i % n), c[i]);
}

void launch_epilogue(int m, int n, float* c, const GemmEpilogue& epilogue, cudaStream_t stream) {
  const std::size_t count = std::size_t(m) * n;
  epilogue_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0, stream>>>(
      m, n, c, epilogue);
  CNNRT_LAUNCH_CHECK(epilogue_kernel);
}

constexpr int kBiasGradThreads = 256;  // a power of two (tree reduction)

// dout: [n, features] -> dbias: [features]. grid: features, block: kBiasGradThreads. Thread t of
// block f sums dout[t, f], dout[t + 256, f], ... in order, then the block adds the partial sums
// in a fixed tree: deterministic, and no thread walks the whole batch (one thread per feature
// summing every row one after another is a long serial chain of dependent loads and adds).
__global__ void bias_grad_kernel(int n, int features, const float* __restrict__ dout,
                                 float* __restrict__ dbias) {
  __shared__ float partial[kBiasGradThreads];
  const int feature = blockIdx.x;
  float sum = 0.0f;
  for (int row = threadIdx.x; row < n; row += kBiasGradThreads)
    sum += dout[std::size_t(row) * features + feature];
  partial[threadIdx.x] = sum;
  detail::block_tree_sum<kBiasGradThreads>(partial);
  if (threadIdx.x == 0) dbias[feature] = partial[0];
}

void require_cublas(cublasHandle_t cublas, const char* where) {
  if (cublas == nullptr)
    throw Error(fmt::format("{}: GemmImpl::cublas needs a cuBLAS handle, got nullptr", where));
}

}  // namespace

void dense_forward(const DenseGeometry& g, const float* in, const float* weight, const float* bias,
                   float* out, const FusedActivation<float>& fused, GemmImpl impl,
                   cublasHandle_t cublas, cudaStream_t stream) {
  if (g.out_size() == 0) return;
  // The bias and the fused activation: inside the hand-written kernel, else after the product.
  GemmEpilogue epilogue;
  epilogue.bias = bias;
  epilogue.forward = fused;
  if (g.in_features > 0 && impl != GemmImpl::cublas) {
    // out [n, out] = in [n, in] * weight^T (weight stored [out, in])
    launch_gemm<false, true>(impl, g.n, g.out_features, g.in_features, in, weight, out, stream,
                             epilogue);
    return;
  }
  if (g.in_features == 0) {
    CNNRT_CUDA_CHECK(cudaMemsetAsync(out, 0, g.out_size() * sizeof(float), stream));
  } else {
    require_cublas(cublas, "cuda::dense_forward");
    // Row-major out [n, out] is column-major [out, n] = weight^T-as-stored (column-major
    // [in, out], transposed) times in (column-major [in, n]).
    const float one = 1.0f, zero = 0.0f;
    CNNRT_CUBLAS_CHECK(cuda::cublas().sgemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, g.out_features, g.n,
                                            g.in_features, &one, weight, g.in_features, in,
                                            g.in_features, &zero, out, g.out_features));
  }
  if (bias != nullptr || fused.activated != nullptr)
    launch_epilogue(g.n, g.out_features, out, epilogue, stream);
}

void dense_backward_data(const DenseGeometry& g, const float* dout, const float* weight, float* din,
                         const FusedActivationGrad<float>& fused, GemmImpl impl,
                         cublasHandle_t cublas, cudaStream_t stream) {
  if (g.in_size() == 0) return;
  // The fused activation's backward pass: inside the hand-written kernel, else after the product.
  GemmEpilogue epilogue;
  epilogue.backward = fused;
  if (g.out_features > 0 && impl != GemmImpl::cublas) {
    // din [n, in] = dout [n, out] * weight [out, in]
    launch_gemm<false, false>(impl, g.n, g.in_features, g.out_features, dout, weight, din, stream,
                              epilogue);
    return;
  }
  if (g.out_features == 0) {
    CNNRT_CUDA_CHECK(cudaMemsetAsync(din, 0, g.in_size() * sizeof(float), stream));
  } else {
    require_cublas(cublas, "cuda::dense_backward_data");
    // Column-major din [in, n] = weight (column-major [in, out]) times dout (column-major
    // [out, n]).
    const float one = 1.0f, zero = 0.0f;
    CNNRT_CUBLAS_CHECK(cuda::cublas().sgemm(cublas, CUBLAS_OP_N, CUBLAS_OP_N, g.in_features, g.n,
                                            g.out_features, &one, weight, g.in_features, dout,
                                            g.out_features, &zero, din, g.in_features));
  }
  if (fused.z != nullptr) launch_epilogue(g.n, g.in_features, din, epilogue, stream);
}

void dense_backward_weights(const DenseGeometry& g, const float* in, const float* dout,
                            float* dweight, float* dbias, GemmImpl impl, cublasHandle_t cublas,
                            cudaStream_t stream) {
  bool bias_done = false;
  if (g.weight_size() > 0) {
    if (g.n == 0) {
      CNNRT_CUDA_CHECK(cudaMemsetAsync(dweight, 0, g.weight_size() * sizeof(float), stream));
    } else if (impl == GemmImpl::cublas) {
      require_cublas(cublas, "cuda::dense_backward_weights");
      // Column-major dweight [in, out] = in (column-major [in, n]) times dout^T (dout is
      // column-major [out, n]).
      const float one = 1.0f, zero = 0.0f;
      CNNRT_CUBLAS_CHECK(cuda::cublas().sgemm(cublas, CUBLAS_OP_N, CUBLAS_OP_T, g.in_features,
                                              g.out_features, g.n, &one, in, g.in_features, dout,
                                              g.out_features, &zero, dweight, g.in_features));
    } else {
      // dweight [out, in] = dout^T (dout stored [n, out]) * in [n, in], and dbias [out] =
      // dout^T * ones [n] in the same kernel.
      GemmEpilogue epilogue;
      epilogue.ones_column = dbias;
      launch_gemm<true, false>(impl, g.out_features, g.in_features, g.n, dout, in, dweight, stream,
                               epilogue);
      bias_done = true;
    }
  }
  if (dbias != nullptr && g.out_features > 0 && !bias_done) {
    bias_grad_kernel<<<unsigned(g.out_features), kBiasGradThreads, 0, stream>>>(g.n, g.out_features,
                                                                                dout, dbias);
    CNNRT_LAUNCH_CHECK(bias_grad_kernel);
  }
}

}  // namespace cnnrt::cuda
