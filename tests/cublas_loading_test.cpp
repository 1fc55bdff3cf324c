// cuBLAS is loaded when first asked for, not linked (kernels/cuda/cublas_api.hpp): a process that
// never uses --gemm cublas does not map its libraries, and the first call resolves every entry
// point cnnrt uses. Needs no GPU: loading the library does not touch the device.
#include <fstream>
#include <sstream>
#include <string>

#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "kernels/cuda/cublas_api.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

bool libcublas_mapped() {
  std::ifstream maps("/proc/self/maps");
  std::stringstream text;
  text << maps.rdbuf();
  return text.str().find("/libcublas.so") != std::string::npos;
}

TEST(CublasLoading, OnlyWhenFirstAskedFor) {
  // A CPU model compiles and trains a step without cuBLAS in the process.
  Model model(load_network("lenet5"), test::cpu_options(2, 1, 1));
  const std::vector<float> images(2 * 784, 0.5f);
  const std::vector<std::int32_t> labels{3, 7};
  model.train_step(images.data(), labels.data(), 2);
  EXPECT_FALSE(libcublas_mapped()) << "libcublas is mapped before anything asked for it";

  const cuda::CublasApi& api = cuda::cublas();
  EXPECT_TRUE(libcublas_mapped());
  EXPECT_NE(api.create, nullptr);
  EXPECT_NE(api.destroy, nullptr);
  EXPECT_NE(api.set_stream, nullptr);
  EXPECT_NE(api.sgemm, nullptr);
  ASSERT_NE(api.status_string, nullptr);
  ASSERT_NE(api.status_name, nullptr);
  // The resolved functions are cuBLAS's: its own name for a status.
  EXPECT_EQ(std::string(api.status_name(CUBLAS_STATUS_INVALID_VALUE)),
            "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_EQ(&cuda::cublas(), &api);  // loaded once
}

}  // namespace
}  // namespace cnnrt
