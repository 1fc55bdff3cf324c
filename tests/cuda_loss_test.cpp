// CUDA softmax and fused softmax cross-entropy against the CPU reference (kernels/cpu/loss.cpp)
// and docs/math.md's test vector: probabilities, dlogits = (O - onehot) / n, the accumulated loss
// sum and correct count (+= onto existing values), batches larger than one block's thread count,
// and bitwise determinism.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/loss.hpp"
#include "kernels/cuda/loss.cuh"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// expf vs std::exp and a multiply by 1/sum (1/n) where the CPU divides: a few ulps.
constexpr test::Tolerance kProbability{1e-7, 1e-5};
// Per-sample -log(O_t) differs by a few ulps; the batch sum then follows summed_tolerance.
constexpr double kLossRtol = 1e-5;

std::vector<std::int32_t> random_labels(int n, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> dist(0, classes - 1);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (auto& label : labels) label = dist(rng);
  return labels;
}

TEST(CudaLoss, SoftmaxSpecVector) {
  CNNRT_REQUIRE_GPU();
  const auto logits = to_device(std::vector<float>{1.0f, 2.0f, 4.0f});
  auto probs = poisoned<float>(3);
  cuda::softmax_forward(1, 3, logits.data(), probs.data(), nullptr);
  EXPECT_TRUE(all_close(probs.download(), std::vector<double>{0.04201007, 0.11419520, 0.84379473},
                        test::Tolerance{1e-7, 1e-6}, "softmax(1, 2, 4)"));
}

struct LossCase {
  int n, classes;
};

const std::vector<LossCase> kCases{{1, 2},    {7, 10},    {64, 10}, {256, 10},
                                   {300, 10}, {33, 1000}, {513, 3}, {1, 1}};

TEST(CudaLoss, SoftmaxMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 600;
  for (const LossCase& lc : kCases) {
    SCOPED_TRACE("n" + std::to_string(lc.n) + " classes" + std::to_string(lc.classes));
    const std::size_t count = std::size_t(lc.n) * lc.classes;
    // Large logits: without the max subtraction expf would overflow.
    const std::vector<float> logits = random_vector<float>(count, seed += 10, -60.0, 90.0);
    std::vector<float> expected(count);
    cpu::softmax_forward(lc.n, lc.classes, logits.data(), expected.data());
    const auto logits_dev = to_device(logits);
    auto probs_dev = poisoned<float>(count);
    cuda::softmax_forward(lc.n, lc.classes, logits_dev.data(), probs_dev.data(), nullptr);
    ASSERT_TRUE(any_nonzero(expected));
    EXPECT_TRUE(all_close(probs_dev.download(), expected, kProbability, "softmax"));
  }
}

// The device scalars start at non-zero values: the kernel must add, not overwrite.
constexpr float kInitialLoss = 1.25f;
constexpr std::int32_t kInitialCorrect = 3;

TEST(CudaLoss, CrossEntropyMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 700;
  for (const float smoothing : {0.0f, 0.1f})  // label smoothing off and on
    for (const LossCase& lc : kCases) {
      SCOPED_TRACE("n" + std::to_string(lc.n) + " classes" + std::to_string(lc.classes) +
                   " smoothing " + std::to_string(smoothing));
      const std::size_t count = std::size_t(lc.n) * lc.classes;
      std::vector<float> logits = random_vector<float>(count, seed += 10, -3.0, 3.0);
      // Every third row is quantised, so its maximum is tied: "correct" must take the first one.
      for (int row = 0; row < lc.n; row += 3)
        for (int i = 0; i < lc.classes; ++i) {
          float& v = logits[std::size_t(row) * lc.classes + i];
          v = float(int(v > 0.0f));
        }
      const std::vector<std::int32_t> labels = random_labels(lc.n, lc.classes, seed + 1);

      std::vector<float> dlogits_expected(count);
      float loss_expected = kInitialLoss;
      std::int32_t correct_expected = kInitialCorrect;
      cpu::softmax_cross_entropy(lc.n, lc.classes, logits.data(), labels.data(),
                                 dlogits_expected.data(), &loss_expected, &correct_expected,
                                 smoothing);

      const auto logits_dev = to_device(logits);
      const auto labels_dev = to_device(labels);
      auto dlogits_dev = poisoned<float>(count);
      auto loss_dev = to_device(std::vector<float>{kInitialLoss});
      auto correct_dev = to_device(std::vector<std::int32_t>{kInitialCorrect});
      cuda::softmax_cross_entropy(lc.n, lc.classes, logits_dev.data(), labels_dev.data(),
                                  dlogits_dev.data(), loss_dev.data(), correct_dev.data(), nullptr,
                                  smoothing);
      if (lc.classes > 1) {
        ASSERT_TRUE(any_nonzero(dlogits_expected));
        ASSERT_NE(loss_expected, kInitialLoss);
      }
      EXPECT_TRUE(all_close(dlogits_dev.download(), dlogits_expected, kProbability, "dlogits"));
      test::Tolerance loss_tol = summed_tolerance(std::size_t(lc.n));
      loss_tol.rtol = kLossRtol;
      EXPECT_TRUE(
          all_close(loss_dev.download(), std::vector<float>{loss_expected}, loss_tol, "loss sum"));
      EXPECT_EQ(correct_dev.download().at(0), correct_expected);
    }
}

// Evaluation passes dlogits = nullptr; training may pass no scalars.
TEST(CudaLoss, OptionalOutputs) {
  CNNRT_REQUIRE_GPU();
  const int n = 37, classes = 10;
  const std::size_t count = std::size_t(n) * classes;
  const std::vector<float> logits = random_vector<float>(count, 801, -3.0, 3.0);
  const std::vector<std::int32_t> labels = random_labels(n, classes, 802);
  std::vector<float> dlogits_expected(count);
  float loss_expected = 0.0f;
  std::int32_t correct_expected = 0;
  cpu::softmax_cross_entropy(n, classes, logits.data(), labels.data(), dlogits_expected.data(),
                             &loss_expected, &correct_expected);
  const auto logits_dev = to_device(logits);
  const auto labels_dev = to_device(labels);

  auto loss_dev = to_device(std::vector<float>{0.0f});
  auto correct_dev = to_device(std::vector<std::int32_t>{0});
  cuda::softmax_cross_entropy(n, classes, logits_dev.data(), labels_dev.data(), nullptr,
                              loss_dev.data(), correct_dev.data(), nullptr);
  ASSERT_GT(loss_expected, 0.0f);
  EXPECT_TRUE(all_close(loss_dev.download(), std::vector<float>{loss_expected},
                        summed_tolerance(std::size_t(n)), "loss without dlogits"));
  EXPECT_EQ(correct_dev.download().at(0), correct_expected);

  auto dlogits_dev = poisoned<float>(count);
  cuda::softmax_cross_entropy(n, classes, logits_dev.data(), labels_dev.data(), dlogits_dev.data(),
                              nullptr, nullptr, nullptr);
  ASSERT_TRUE(any_nonzero(dlogits_expected));
  EXPECT_TRUE(
      all_close(dlogits_dev.download(), dlogits_expected, kProbability, "dlogits without scalars"));
}

TEST(CudaLoss, CrossEntropyIsDeterministic) {
  CNNRT_REQUIRE_GPU();
  const int n = 300, classes = 10;
  const std::size_t count = std::size_t(n) * classes;
  const auto logits_dev = to_device(random_vector<float>(count, 901, -3.0, 3.0));
  const auto labels_dev = to_device(random_labels(n, classes, 902));
  std::vector<float> first_loss, first_dlogits;
  for (int run = 0; run < 2; ++run) {
    auto dlogits_dev = poisoned<float>(count);
    auto loss_dev = to_device(std::vector<float>{kInitialLoss});
    auto correct_dev = to_device(std::vector<std::int32_t>{0});
    cuda::softmax_cross_entropy(n, classes, logits_dev.data(), labels_dev.data(),
                                dlogits_dev.data(), loss_dev.data(), correct_dev.data(), nullptr);
    const std::vector<float> loss = loss_dev.download(), dlogits = dlogits_dev.download();
    ASSERT_NE(loss.at(0), kInitialLoss);
    ASSERT_TRUE(any_nonzero(dlogits));
    expect_same_bits_every_run(run, loss, first_loss, "loss");
    expect_same_bits_every_run(run, dlogits, first_dlogits, "dlogits");
  }
}

}  // namespace
}  // namespace cnnrt
