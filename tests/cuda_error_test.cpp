// CUDA error handling: a failing runtime or cuBLAS call becomes a cnnrt::Error naming the call, a
// failed launch one naming the kernel, and DeviceBuffer is move-only (checked at compile time, so
// it runs without a GPU too).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "cnnrt/error.hpp"
#include "host/device_buffer.hpp"
#include "kernels/cuda/check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

static_assert(!std::is_copy_constructible_v<DeviceBuffer<float>>, "DeviceBuffer must not copy");
static_assert(!std::is_copy_assignable_v<DeviceBuffer<float>>, "DeviceBuffer must not copy");
static_assert(std::is_nothrow_move_constructible_v<DeviceBuffer<float>>,
              "DeviceBuffer must move without throwing");
static_assert(std::is_nothrow_move_assignable_v<DeviceBuffer<float>>,
              "DeviceBuffer must move without throwing");

TEST(CudaError, InvalidCopyNamesTheCall) {
  CNNRT_REQUIRE_GPU();
  float host[4] = {1, 2, 3, 4};
  // A host-to-device copy into a null device pointer: cudaErrorInvalidValue, rejected before any
  // transfer (not a sticky error, so the context stays usable for the other tests).
  const std::string message = test::error_message(
      [&] { CNNRT_CUDA_CHECK(cudaMemcpy(nullptr, host, sizeof(host), cudaMemcpyHostToDevice)); });
  EXPECT_NE(message.find("cudaMemcpy"), std::string::npos) << message;
  EXPECT_NE(message.find("cuda_error_test.cpp"), std::string::npos) << message;
  // The runtime still works afterwards.
  DeviceBuffer<float> buffer(4);
  buffer.upload(host, 4);
  EXPECT_EQ(buffer.download().at(3), 4.0f);
}

TEST(CudaError, ImpossibleAllocationNamesCudaMalloc) {
  CNNRT_REQUIRE_GPU();
  const std::string message =
      test::error_message([] { DeviceBuffer<float> huge(std::size_t(1) << 50); });  // 4 PiB
  EXPECT_NE(message.find("cudaMalloc"), std::string::npos) << message;
}

TEST(CudaError, CublasFailureNamesTheCall) {
  CNNRT_REQUIRE_GPU();
  cublasHandle_t handle = nullptr;
  CNNRT_CUBLAS_CHECK(cublasCreate(&handle));
  const float one = 1.0f;
  // m = -1 is rejected with CUBLAS_STATUS_INVALID_VALUE before any memory is touched.
  const std::string message = test::error_message([&] {
    CNNRT_CUBLAS_CHECK(cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, -1, 1, 1, &one, nullptr, 1,
                                   nullptr, 1, &one, nullptr, 1));
  });
  (void)cublasDestroy(handle);
  EXPECT_NE(message.find("cublasSgemm"), std::string::npos) << message;
}

// The launch check's message names the kernel; making it needs no GPU.
TEST(CudaError, LaunchErrorNamesTheKernel) {
  const std::string message = test::error_message([] {
    detail::throw_launch_error(cudaErrorInvalidConfiguration, "conv2d_forward_kernel",
                               "conv_forward.cu", 42);
  });
  EXPECT_TRUE(
      test::contains(message, "conv_forward.cu:42: launch of conv2d_forward_kernel failed"));
  EXPECT_TRUE(test::contains(message, "(cudaErrorInvalidConfiguration)"));
}

// CNNRT_LAUNCH_CHECK reads the runtime's last error, which a failed call sets as a failed launch
// does.
TEST(CudaError, LaunchCheckNamesItsKernel) {
  CNNRT_REQUIRE_GPU();
  float host[1] = {0};
  ASSERT_EQ(cudaMemcpy(nullptr, host, sizeof(host), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  const std::string message = test::error_message([] { CNNRT_LAUNCH_CHECK(example_kernel); });
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);  // read and cleared for the tests after
  EXPECT_TRUE(test::contains(message, "launch of example_kernel failed")) << message;
  EXPECT_TRUE(test::contains(message, "cuda_error_test.cpp")) << message;
}

// Moving never touches the device, so this runs without a GPU.
TEST(CudaError, DeviceBufferMoveLeavesTheSourceEmpty) {
  DeviceBuffer<float> empty;
  DeviceBuffer<float> moved(std::move(empty));
  EXPECT_EQ(moved.data(), nullptr);
  EXPECT_EQ(moved.size(), 0u);
  EXPECT_EQ(empty.size(), 0u);  // NOLINT(bugprone-use-after-move): checking the moved-from state
}

}  // namespace
}  // namespace cnnrt
