#pragma once
// The TF32 tensor-core step the WMMA kernels share (dense.cu, conv_implicit_gemm.cu).
#include <mma.h>

namespace cnnrt::cuda::detail {

using Tf32Accumulator = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;

// acc += A * B for A 16 x 8 at `a` and B 8 x 16 at `b`, both row-major in shared memory with
// leading dimensions lda and ldb (multiples of 4), each element rounded to TF32 first
// (wmma::__float_to_tf32: to nearest, ties away from zero; tf32_round of kernels/precision.hpp).
__device__ __forceinline__ void mma_tf32_16x16x8(Tf32Accumulator& acc, const float* a, unsigned lda,
                                                 const float* b, unsigned ldb) {
  using namespace nvcuda;
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
  wmma::load_matrix_sync(fa, a, lda);
  wmma::load_matrix_sync(fb, b, ldb);
#pragma unroll
  for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
#pragma unroll
  for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
  wmma::mma_sync(acc, fa, fb, acc);
}

}  // namespace cnnrt::cuda::detail
