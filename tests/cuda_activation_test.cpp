// CUDA activations against the CPU reference (kernels/cpu/activation.cpp): every kind, forward and
// backward, including exact zeros (ReLU's gradient passes at z = 0), in-place use, and counts
// beyond one grid-stride pass.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/activation.hpp"
#include "kernels/cuda/activation.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Element-wise: the only difference is expf vs std::exp (an ulp or two) and FMA contraction.
constexpr test::Tolerance kElementwise{1e-7, 2e-6};
constexpr float kLeakySlope = 0.1f;

const Activation kKinds[] = {Activation::none, Activation::relu, Activation::leaky_relu,
                             Activation::sigmoid};

// Inputs in [-4, 4) with every seventh element exactly 0 (the ReLU kink).
std::vector<float> inputs_with_zeros(std::size_t count, std::uint64_t seed) {
  std::vector<float> z = random_vector<float>(count, seed, -4.0, 4.0);
  for (std::size_t i = 0; i < count; i += 7) z[i] = 0.0f;
  return z;
}

// 1 << 21 + 3 elements exceed the 4096 x 256 threads of one grid, so the grid-stride loop runs.
const std::size_t kCounts[] = {1, 2, 7, 33, 1000, 65537, (std::size_t(1) << 21) + 3};

TEST(CudaActivation, ForwardMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  for (const std::size_t count : kCounts)
    for (const Activation kind : kKinds) {
      SCOPED_TRACE("count " + std::to_string(count) + " kind " + std::to_string(int(kind)));
      const std::vector<float> z = inputs_with_zeros(count, count + 11);
      std::vector<float> expected(count);
      cpu::activation_forward(kind, kLeakySlope, count, z.data(), expected.data());
      const auto z_dev = to_device(z);
      auto a_dev = poisoned<float>(count);
      cuda::activation_forward(kind, kLeakySlope, count, z_dev.data(), a_dev.data(), nullptr);
      EXPECT_TRUE(all_close(a_dev.download(), expected, kElementwise, "forward"));
    }
}

TEST(CudaActivation, BackwardMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  for (const std::size_t count : kCounts)
    for (const Activation kind : kKinds) {
      SCOPED_TRACE("count " + std::to_string(count) + " kind " + std::to_string(int(kind)));
      const std::vector<float> z = inputs_with_zeros(count, count + 21);
      std::vector<float> a(count);
      cpu::activation_forward(kind, kLeakySlope, count, z.data(), a.data());
      const std::vector<float> da = random_vector<float>(count, count + 22);
      std::vector<float> expected(count);
      cpu::activation_backward(kind, kLeakySlope, count, z.data(), a.data(), da.data(),
                               expected.data());
      // z[0] == 0: ReLU and leaky ReLU pass the gradient there unchanged (the lecture's >= 0).
      if (kind == Activation::relu || kind == Activation::leaky_relu) {
        ASSERT_EQ(expected[0], da[0]);
      }
      ASSERT_TRUE(any_nonzero(expected));
      const auto z_dev = to_device(z);
      const auto a_dev = to_device(a);
      const auto da_dev = to_device(da);
      auto dz_dev = poisoned<float>(count);
      cuda::activation_backward(kind, kLeakySlope, count, z_dev.data(), a_dev.data(), da_dev.data(),
                                dz_dev.data(), nullptr);
      EXPECT_TRUE(all_close(dz_dev.download(), expected, kElementwise, "backward"));
    }
}

// The contract allows a == z (forward) and dz == da (backward).
TEST(CudaActivation, InPlace) {
  CNNRT_REQUIRE_GPU();
  const std::size_t count = 4099;
  for (const Activation kind : kKinds) {
    SCOPED_TRACE("kind " + std::to_string(int(kind)));
    const std::vector<float> z = inputs_with_zeros(count, 31);
    std::vector<float> a(count);
    cpu::activation_forward(kind, kLeakySlope, count, z.data(), a.data());
    auto buffer = to_device(z);
    cuda::activation_forward(kind, kLeakySlope, count, buffer.data(), buffer.data(), nullptr);
    EXPECT_TRUE(all_close(buffer.download(), a, kElementwise, "forward in place"));

    const std::vector<float> da = random_vector<float>(count, 32);
    std::vector<float> dz(count);
    cpu::activation_backward(kind, kLeakySlope, count, z.data(), a.data(), da.data(), dz.data());
    const auto z_dev = to_device(z);
    const auto a_dev = to_device(a);
    auto grad = to_device(da);
    cuda::activation_backward(kind, kLeakySlope, count, z_dev.data(), a_dev.data(), grad.data(),
                              grad.data(), nullptr);
    EXPECT_TRUE(all_close(grad.download(), dz, kElementwise, "backward in place"));
  }
}

// A zero-size launch is a no-op: the poisoned buffer keeps its bytes and nothing throws.
TEST(CudaActivation, ZeroCountIsNoOp) {
  CNNRT_REQUIRE_GPU();
  auto buffer = poisoned<float>(4);
  cuda::activation_forward(Activation::relu, kLeakySlope, 0, buffer.data(), buffer.data(), nullptr);
  for (const float v : buffer.download()) EXPECT_TRUE(v != v) << "overwritten by a 0-size launch";
}

}  // namespace
}  // namespace cnnrt
