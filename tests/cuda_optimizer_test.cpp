// CUDA optimizer updates against the CPU reference (kernels/cpu/optimizer.cpp): SGD with and
// without momentum and weight decay, Nesterov, Adam, AdamW, over consecutive steps (state carried,
// the step's scalars read from a device table), counts beyond one grid pass.
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

OptimizerParams with_kind(OptimizerParams p, OptimizerKind kind) {
  p.kind = kind;
  return p;
}

const OptimizerParams kParams[] = {
    {0.1f, 0.0f, 0.0f},
    {0.01f, 0.9f, 5e-4f},
    {0.05f, 0.9f, 0.0f},
    {0.02f, 0.0f, 1e-2f},
    with_kind({0.01f, 0.9f, 5e-4f}, OptimizerKind::nesterov),
    with_kind({1e-3f, 0.0f, 0.0f}, OptimizerKind::adam),
    with_kind({1e-3f, 0.0f, 1e-2f}, OptimizerKind::adam),
    with_kind({1e-3f, 0.0f, 1e-2f}, OptimizerKind::adamw),
};

TEST(CudaOptimizer, MatchesCpuOverSteps) {
  CNNRT_REQUIRE_GPU();
  for (const std::size_t count :
       {std::size_t(1), std::size_t(7), std::size_t(1000), (std::size_t(1) << 21) + 1})
    for (const OptimizerParams& params : kParams) {
      SCOPED_TRACE("count " + std::to_string(count) + " " + to_string(params.kind) + " lr " +
                   std::to_string(params.lr) + " momentum " + std::to_string(params.momentum) +
                   " decay " + std::to_string(params.weight_decay));
      std::vector<float> param = random_vector<float>(count, count + 1);
      std::vector<float> first = random_vector<float>(count, count + 2, -0.1, 0.1);
      std::vector<float> second = random_vector<float>(count, count + 3, 0.0, 0.01);
      const std::vector<float> initial_param = param;
      auto param_dev = to_device(param);
      auto first_dev = to_device(first);
      auto second_dev = to_device(second);
      float* second_ptr = params.uses_second_moment() ? second_dev.data() : nullptr;
      // Steps 1..kSteps from one table indexed by a device counter, as a replayed graph reads it.
      std::vector<float> table;
      for (int step = 0; step < kSteps; ++step) {
        const StepScalars s = StepScalars::at(params, params.lr * float(step + 1), step + 1);
        table.insert(table.end(), {s.lr, s.step_size, s.bias_correction2_sqrt, s.decay_factor});
      }
      const auto table_dev = to_device(table);
      for (int step = 0; step < kSteps; ++step) {
        const std::vector<float> grad = random_vector<float>(count, count + 10 + step);
        const StepScalars s = StepScalars::at(params, params.lr * float(step + 1), step + 1);
        cpu::optimizer_update(params, s, count, param.data(), grad.data(), first.data(),
                              params.uses_second_moment() ? second.data() : nullptr);
        const auto grad_dev = to_device(grad);
        const auto index_dev = to_device(std::vector<std::int32_t>{step});
        cuda::optimizer_update(params, table_dev.data(), index_dev.data(), count, param_dev.data(),
                               grad_dev.data(), first_dev.data(), second_ptr, nullptr);
      }
      ASSERT_NE(param, initial_param);  // the update moved the parameters
      EXPECT_TRUE(all_close(param_dev.download(), param, kUpdate, "param"));
      EXPECT_TRUE(all_close(first_dev.download(), first, kUpdate, "first"));
      if (params.uses_second_moment()) {
        EXPECT_TRUE(all_close(second_dev.download(), second, kUpdate, "second"));
      }
    }
}

}  // namespace
}  // namespace cnnrt
