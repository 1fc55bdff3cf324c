// CUDA dense layer (SPEC.md section 4, weight stored [out, in] as PyTorch does). Two GEMM paths:
// a hand-written shared-memory tiled kernel and cuBLAS (an empty reduction, e.g. a batch of 0,
// zero-fills instead: cuBLAS rejects a leading dimension of 0). The tiled GEMM adds the bias and
// runs fused activations in its epilogue; after cuBLAS a small kernel does. The tiled weight
// gradient sums the bias gradient as an extra column; with cuBLAS a kernel of our own does. Every
// output element is summed by one thread in a fixed order (the bias gradient: by one block in a
// fixed tree; cuBLAS: deterministic for a fixed configuration): no atomics.
#include <fmt/format.h>

#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/dense.cuh"
#include "kernels/cuda/launch.cuh"

namespace cnnrt::cuda {
namespace {

constexpr int kGemmTile = 16;

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

// c: [m, n] = op(a) * op(b), all row-major, then `epilogue`. a is stored [m, k] (or [k, m] when
// TransA), b is stored [k, n] (or [n, k] when TransB). grid: (ceil(n / 16), ceil(m / 16)), block:
// (16, 16); thread (ty, tx) computes c[m0 + ty, n0 + tx]. Tiles are loaded so that consecutive
// threads read consecutive addresses whichever way a matrix is stored; +1 padding avoids bank
// conflicts on the transposed stores.
template <bool TransA, bool TransB>
__global__ void gemm_tiled_kernel(int m, int n, int k, const float* __restrict__ a,
                                  const float* __restrict__ b, float* __restrict__ c,
                                  GemmEpilogue epilogue) {
  __shared__ float a_tile[kGemmTile][kGemmTile + 1];  // [m][k]
  __shared__ float b_tile[kGemmTile][kGemmTile + 1];  // [k][n]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int m0 = blockIdx.y * kGemmTile, n0 = blockIdx.x * kGemmTile;
  const int columns = n + (epilogue.ones_column != nullptr ? 1 : 0);  // of op(b) and the result
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kGemmTile) {
    if (TransA) {  // element (row, col) of op(a) is a[col * m + row]
      const int row = m0 + tx, col = k0 + ty;
      a_tile[tx][ty] = (row < m && col < k) ? a[std::size_t(col) * m + row] : 0.0f;
    } else {
      const int row = m0 + ty, col = k0 + tx;
      a_tile[ty][tx] = (row < m && col < k) ? a[std::size_t(row) * k + col] : 0.0f;
    }
    if (TransB) {  // element (row, col) of op(b) is b[col * k + row]
      const int row = k0 + tx, col = n0 + ty;
      b_tile[tx][ty] = row >= k  ? 0.0f
                       : col < n ? b[std::size_t(col) * k + row]
                                 : (col < columns ? 1.0f : 0.0f);
    } else {
      const int row = k0 + ty, col = n0 + tx;
      b_tile[ty][tx] = row >= k  ? 0.0f
                       : col < n ? b[std::size_t(row) * n + col]
                                 : (col < columns ? 1.0f : 0.0f);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kGemmTile; ++kk) acc += a_tile[ty][kk] * b_tile[kk][tx];
    __syncthreads();
  }
  const int row = m0 + ty, col = n0 + tx;
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

template <bool TransA, bool TransB>
void launch_gemm_tiled(int m, int n, int k, const float* a, const float* b, float* c,
                       cudaStream_t stream, const GemmEpilogue& epilogue = {}) {
  const int columns = n + (epilogue.ones_column != nullptr ? 1 : 0);
  const dim3 grid{unsigned((columns + kGemmTile - 1) / kGemmTile),
                  unsigned((m + kGemmTile - 1) / kGemmTile)};
  const dim3 block{kGemmTile, kGemmTile};
  gemm_tiled_kernel<TransA, TransB><<<grid, block, 0, stream>>>(m, n, k, a, b, c, epilogue);
  CNNRT_LAUNCH_CHECK(gemm_tiled_kernel);
}

// out: [n, features] += bias: [features] (or nullptr), then fused.activated = act(out) when
// set; grid-stride. The epilogue of the paths whose product comes from elsewhere (cuBLAS, an
// empty reduction).
__global__ void bias_activation_kernel(std::size_t count, int features,
                                       const float* __restrict__ bias, float* __restrict__ out,
                                       FusedActivation<float> fused) {
  const std::size_t stride = std::size_t(gridDim.x) * blockDim.x;
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float z = bias != nullptr ? out[i] + bias[i % features] : out[i];
    out[i] = z;
    if (fused.activated != nullptr)
      fused.activated[i] = detail::activate(fused.kind, fused.leaky_slope, z);
  }
}

constexpr int kBiasGradThreads = 256;  // a power of two (tree reduction)

// dout: [n, features] -> dbias: [features]. grid: features, block: kBiasGradThreads. Thread t of
// block f sums dout[t, f], dout[t + 256, f], ... in order, then the block adds the partial sums
// in a fixed tree: deterministic, and no thread walks the whole batch (one thread per feature
// summing 256 rows one after another took ~11 us for LeNet's layers).
__global__ void bias_grad_kernel(int n, int features, const float* __restrict__ dout,
                                 float* __restrict__ dbias) {
  __shared__ float partial[kBiasGradThreads];
  const int feature = blockIdx.x;
  float sum = 0.0f;
  for (int row = threadIdx.x; row < n; row += kBiasGradThreads)
    sum += dout[std::size_t(row) * features + feature];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kBiasGradThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
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
  const std::size_t count = g.out_size();
  if (count == 0) return;
  if (g.in_features > 0 && impl == GemmImpl::tiled) {
    // out [n, out] = in [n, in] * weight^T (weight stored [out, in]), bias and activation in
    // the same kernel.
    GemmEpilogue epilogue;
    epilogue.bias = bias;
    epilogue.forward = fused;
    launch_gemm_tiled<false, true>(g.n, g.out_features, g.in_features, in, weight, out, stream,
                                   epilogue);
    return;
  }
  if (g.in_features == 0) {
    CNNRT_CUDA_CHECK(cudaMemsetAsync(out, 0, count * sizeof(float), stream));
  } else {
    require_cublas(cublas, "cuda::dense_forward");
    // Row-major out [n, out] is column-major [out, n] = weight^T-as-stored (column-major
    // [in, out], transposed) times in (column-major [in, n]).
    const float one = 1.0f, zero = 0.0f;
    CNNRT_CUBLAS_CHECK(cublasSgemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, g.out_features, g.n,
                                   g.in_features, &one, weight, g.in_features, in, g.in_features,
                                   &zero, out, g.out_features));
  }
  if (bias != nullptr || fused.activated != nullptr) {
    bias_activation_kernel<<<detail::elementwise_blocks(count), detail::kElementwiseThreads, 0,
                             stream>>>(count, g.out_features, bias, out, fused);
    CNNRT_LAUNCH_CHECK(bias_activation_kernel);
  }
}

void dense_backward_data(const DenseGeometry& g, const float* dout, const float* weight, float* din,
                         const FusedActivationGrad<float>& fused, GemmImpl impl,
                         cublasHandle_t cublas, cudaStream_t stream) {
  const std::size_t count = g.in_size();
  if (count == 0) return;
  if (g.out_features > 0 && impl == GemmImpl::tiled) {
    // din [n, in] = dout [n, out] * weight [out, in], through the fused activation's backward
    // pass in the same kernel.
    GemmEpilogue epilogue;
    epilogue.backward = fused;
    launch_gemm_tiled<false, false>(g.n, g.in_features, g.out_features, dout, weight, din, stream,
                                    epilogue);
    return;
  }
  if (g.out_features == 0) {
    CNNRT_CUDA_CHECK(cudaMemsetAsync(din, 0, count * sizeof(float), stream));
  } else {
    require_cublas(cublas, "cuda::dense_backward_data");
    // Column-major din [in, n] = weight (column-major [in, out]) times dout (column-major
    // [out, n]).
    const float one = 1.0f, zero = 0.0f;
    CNNRT_CUBLAS_CHECK(cublasSgemm(cublas, CUBLAS_OP_N, CUBLAS_OP_N, g.in_features, g.n,
                                   g.out_features, &one, weight, g.in_features, dout,
                                   g.out_features, &zero, din, g.in_features));
  }
  if (fused.z != nullptr)
    activation_backward(fused.kind, fused.leaky_slope, count, fused.z, fused.a, din, din, stream);
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
      CNNRT_CUBLAS_CHECK(cublasSgemm(cublas, CUBLAS_OP_N, CUBLAS_OP_T, g.in_features,
                                     g.out_features, g.n, &one, in, g.in_features, dout,
                                     g.out_features, &zero, dweight, g.in_features));
    } else {
      // dweight [out, in] = dout^T (dout stored [n, out]) * in [n, in], and dbias [out] =
      // dout^T * ones [n] in the same kernel.
      GemmEpilogue epilogue;
      epilogue.ones_column = dbias;
      launch_gemm_tiled<true, false>(g.out_features, g.in_features, g.n, dout, in, dweight, stream,
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
