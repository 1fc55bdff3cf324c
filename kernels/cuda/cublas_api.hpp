#pragma once
// cuBLAS, loaded when first asked for (dlopen) rather than linked: only `--gemm cublas` and the
// benchmarks use it, and loading its libraries (libcublasLt alone is over 500 MB) would slow every
// process's start-up. The entry points cnnrt calls, resolved once.
#include <cublas_v2.h>

namespace cnnrt::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
};

// Loads libcublas.so.<major of the headers> on the first call (thread-safe) from the loader's
// search path, else from the directory libcudart was loaded from. Throws cnnrt::Error naming the
// library and the loader's message when it, or one of the entry points, cannot be found.
const CublasApi& cublas();

}  // namespace cnnrt::cuda
