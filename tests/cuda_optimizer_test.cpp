// CUDA SGD update against the CPU reference (kernels/cpu/optimizer.cpp): plain SGD, momentum and
// weight decay, over several consecutive steps (velocity carried), counts beyond one grid pass.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/optimizer.hpp"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Element-wise; nvcc may contract momentum * v + g into an FMA where g++ rounds twice. The terms
// are O(1) and may cancel to ~1e-3, so the difference is a few ulps of 1 per step, not of the
// result: an absolute tolerance of 1e-6 over kSteps steps.
constexpr test::Tolerance kUpdate{1e-6, 1e-5};
constexpr int kSteps = 3;

const SgdParams kParams[] = {
    {0.1f, 0.0f, 0.0f},
    {0.01f, 0.9f, 5e-4f},
    {0.05f, 0.9f, 0.0f},
    {0.02f, 0.0f, 1e-2f},
};

TEST(CudaOptimizer, SgdMatchesCpuOverSteps) {
  CNNRT_REQUIRE_GPU();
  for (const std::size_t count :
       {std::size_t(1), std::size_t(7), std::size_t(1000), (std::size_t(1) << 21) + 1})
    for (const SgdParams& params : kParams) {
      SCOPED_TRACE("count " + std::to_string(count) + " lr " + std::to_string(params.lr) +
                   " momentum " + std::to_string(params.momentum) + " decay " +
                   std::to_string(params.weight_decay));
      std::vector<float> param = random_vector<float>(count, count + 1);
      std::vector<float> velocity = random_vector<float>(count, count + 2, -0.1, 0.1);
      const std::vector<float> initial_param = param;
      auto param_dev = to_device(param);
      auto velocity_dev = to_device(velocity);
      for (int step = 0; step < kSteps; ++step) {
        const std::vector<float> grad = random_vector<float>(count, count + 10 + step);
        cpu::sgd_update(params, count, param.data(), grad.data(), velocity.data());
        const auto grad_dev = to_device(grad);
        cuda::sgd_update(params, count, param_dev.data(), grad_dev.data(), velocity_dev.data(),
                         nullptr);
      }
      ASSERT_NE(param, initial_param);  // the update moved the parameters
      EXPECT_TRUE(all_close(param_dev.download(), param, kUpdate, "param"));
      EXPECT_TRUE(all_close(velocity_dev.download(), velocity, kUpdate, "velocity"));
    }
}

}  // namespace
}  // namespace cnnrt
