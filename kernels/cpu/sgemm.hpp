#pragma once
// The fast CPU path's matrix product: oneDNN's sgemm, which picks its AVX2 / AVX-512 kernels from
// the instruction sets the processor reports (not from its model, so a processor newer than the
// library still gets its widest vectors), and runs on the calling thread.
#include <string>

namespace cnnrt::cpu {

enum class Op { plain, transposed };

// c[m, n] = alpha * op_a(a)[m, k] op_b(b)[k, n] + beta * c[m, n], all row-major, a's, b's and c's
// stored rows lda, ldb and ldc floats apart (beta 0: c is not read). Throws cnnrt::Error when
// oneDNN reports a failure.
void sgemm(Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc);

// The instruction set oneDNN's kernels use here, e.g. "AVX-512".
std::string sgemm_isa();

}  // namespace cnnrt::cpu
