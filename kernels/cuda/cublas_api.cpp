// The on-demand cuBLAS loader of kernels/cuda/cublas_api.hpp.
#include "kernels/cuda/cublas_api.hpp"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <string>

#include "cnnrt/error.hpp"

namespace cnnrt::cuda {

namespace {

const std::string kLibrary = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);

// The directory holding the libcudart this process runs with ("" when unknown).
std::string cudart_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaGetErrorString), &info) == 0 || info.dli_fname == nullptr)
    return "";
  const std::string path = info.dli_fname;
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

void* open_library() {
  if (void* handle = dlopen(kLibrary.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  const std::string first_error = dlerror();
  const std::string dir = cudart_directory();
  if (!dir.empty())
    if (void* handle = dlopen((dir + "/" + kLibrary).c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  throw Error(fmt::format("cannot load cuBLAS ({}): {}{}; it comes with the CUDA toolkit", kLibrary,
                          first_error, dir.empty() ? "" : fmt::format(" (nor from {})", dir)));
}

template <typename Function>
void resolve(void* library, const char* name, Function* out) {
  void* symbol = dlsym(library, name);
  if (symbol == nullptr)
    throw Error(fmt::format("cuBLAS ({}) has no {}: {}", kLibrary, name, dlerror()));
  *out = reinterpret_cast<Function>(symbol);
}

CublasApi load() {
  void* library = open_library();  // kept open for the life of the process
  CublasApi api;
  resolve(library, "cublasCreate_v2", &api.create);
  resolve(library, "cublasDestroy_v2", &api.destroy);
  resolve(library, "cublasSetStream_v2", &api.set_stream);
  resolve(library, "cublasSgemm_v2", &api.sgemm);
  resolve(library, "cublasGetStatusString", &api.status_string);
  resolve(library, "cublasGetStatusName", &api.status_name);
  return api;
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();
  return api;
}

}  // namespace cnnrt::cuda
