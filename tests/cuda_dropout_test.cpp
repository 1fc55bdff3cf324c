// CUDA dropout against the CPU reference (kernels/cpu/dropout.cpp): the Philox mask must be
// identical bit for bit (the same philox_uniform on both sides), outputs scaled by 1/(1-p), the
// backward applying the same mask; seeds and offsets beyond 32 bits; counts not a multiple of 4.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/dropout.hpp"
#include "kernels/cuda/dropout.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Both sides multiply by the same float 1/(1-p): exact in practice; an ulp allowed for FMA-free
// rounding differences between compilers.
constexpr test::Tolerance kScaled{0.0, 1e-6};
constexpr test::Tolerance kExact{0.0, 0.0};

const std::size_t kCounts[] = {1, 3, 4, 5, 1001, (std::size_t(1) << 21) + 5};
const DropoutParams kParams[] = {
    {0.5f, 42, 0},
    {0.1f, 7, 3},
    {0.9f, 0xDEADBEEFCAFEF00Dull, (std::uint64_t(1) << 33) + 5},  // both 64-bit halves in use
    {0.0f, 1, 1},
};

TEST(CudaDropout, MaskAndOutputsMatchCpu) {
  CNNRT_REQUIRE_GPU();
  for (const std::size_t count : kCounts)
    for (const DropoutParams& params : kParams) {
      SCOPED_TRACE("count " + std::to_string(count) + " p " + std::to_string(params.p) +
                   " offset " + std::to_string(params.offset));
      const std::vector<float> in = random_vector<float>(count, count + 1);
      const std::vector<float> dout = random_vector<float>(count, count + 2);
      std::vector<float> out_expected(count), din_expected(count);
      std::vector<std::uint8_t> mask_expected(count);
      cpu::dropout_forward(params, count, in.data(), out_expected.data(), mask_expected.data());
      cpu::dropout_backward(params, count, dout.data(), mask_expected.data(), din_expected.data());

      const auto in_dev = to_device(in);
      auto out_dev = poisoned<float>(count);
      auto mask_dev = poisoned<std::uint8_t>(count);
      cuda::dropout_forward(params, count, in_dev.data(), out_dev.data(), mask_dev.data(), nullptr);
      EXPECT_TRUE(all_close(mask_dev.download(), mask_expected, kExact, "mask"));
      EXPECT_TRUE(all_close(out_dev.download(), out_expected, kScaled, "forward"));

      const auto dout_dev = to_device(dout);
      const auto mask_in = to_device(mask_expected);
      auto din_dev = poisoned<float>(count);
      cuda::dropout_backward(params, count, dout_dev.data(), mask_in.data(), din_dev.data(),
                             nullptr);
      std::size_t kept = 0;
      for (const std::uint8_t m : mask_expected) kept += m;
      if (kept > 0) {  // a tiny count at p = 0.9 may legitimately drop everything
        ASSERT_TRUE(any_nonzero(din_expected));
      }
      EXPECT_TRUE(all_close(din_dev.download(), din_expected, kScaled, "backward"));

      if (count > 1000 && params.p > 0.0f) {  // the mask really drops and keeps
        EXPECT_GT(kept, 0u);
        EXPECT_LT(kept, count);
      }
    }
}

// Another offset gives another mask (the caller advances it once per step).
TEST(CudaDropout, OffsetChangesTheMask) {
  CNNRT_REQUIRE_GPU();
  const std::size_t count = 4096;
  const auto in_dev = to_device(random_vector<float>(count, 5));
  auto out_dev = poisoned<float>(count);
  auto mask_a = poisoned<std::uint8_t>(count);
  auto mask_b = poisoned<std::uint8_t>(count);
  cuda::dropout_forward({0.5f, 9, 0}, count, in_dev.data(), out_dev.data(), mask_a.data(), nullptr);
  cuda::dropout_forward({0.5f, 9, 1}, count, in_dev.data(), out_dev.data(), mask_b.data(), nullptr);
  EXPECT_NE(mask_a.download(), mask_b.download());
}

// p outside [0, 1) is rejected on the host before anything touches the device (no GPU needed).
TEST(CudaDropout, RejectsProbabilityOutsideRange) {
  for (const float p : {1.0f, -0.1f, 1.5f}) {
    EXPECT_THROW(cuda::dropout_forward({p, 1, 0}, 0, nullptr, nullptr, nullptr, nullptr), Error);
    EXPECT_THROW(cuda::dropout_backward({p, 1, 0}, 0, nullptr, nullptr, nullptr, nullptr), Error);
  }
}

}  // namespace
}  // namespace cnnrt
