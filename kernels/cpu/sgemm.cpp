// The fast CPU path's sgemm (kernels/cpu/sgemm.hpp) on oneDNN.
#include "kernels/cpu/sgemm.hpp"

#include <fmt/format.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "cnnrt/error.hpp"

namespace cnnrt::cpu {

namespace {

char op_char(Op op) {
  return op == Op::plain ? 'N' : 'T';
}

// oneDNN's OpenMP threads for the length of one call: none. The batch is already split across
// cnnrt's own threads, each multiplying its slice; the caller's setting is restored after.
class SingleOpenMpThread {
 public:
  SingleOpenMpThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleOpenMpThread() { omp_set_num_threads(saved_); }
  SingleOpenMpThread(const SingleOpenMpThread&) = delete;
  SingleOpenMpThread& operator=(const SingleOpenMpThread&) = delete;

 private:
  int saved_;
};

}  // namespace

void sgemm(Op op_a, Op op_b, int m, int n, int k, float alpha, const float* a, int lda,
           const float* b, int ldb, float beta, float* c, int ldc) {
  const SingleOpenMpThread single;
  const dnnl_status_t status =
      dnnl_sgemm(op_char(op_a), op_char(op_b), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success)
    throw Error(fmt::format("oneDNN's sgemm failed (status {}) on [{}, {}] x [{}, {}]", int(status),
                            m, k, k, n));
}

std::string sgemm_isa() {
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
  // The enumerators are bit sets: each instruction set's bits include those it extends.
  const auto has = [isa](dnnl_cpu_isa_t set) {
    return (unsigned(isa) & unsigned(set)) == unsigned(set);
  };
  if (has(dnnl_cpu_isa_avx512_core)) return "AVX-512";
  if (has(dnnl_cpu_isa_avx2)) return "AVX2";
  if (has(dnnl_cpu_isa_avx)) return "AVX";
  if (has(dnnl_cpu_isa_sse41)) return "SSE4.1";
  return "no vector extensions";
}

}  // namespace cnnrt::cpu
