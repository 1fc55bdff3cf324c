// CPU reference softmax and softmax cross-entropy (docs/math.md sections 2 and 3): the lecture's
// test vectors, batching, ties, optional outputs and a finite-difference check of dlogits.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/loss.hpp"
#include "tests/gradient_check.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

// docs/math.md quotes 7 to 8 significant digits; float adds ~1e-7 of its own.
constexpr test::Tolerance kQuotedTol{1e-6, 1e-6};

// Logits whose softmax is exactly `probs` (when they sum to 1): z_i = log(p_i).
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

TEST(CpuSoftmax, LectureVector) {
  const std::vector<float> logits = {1, 2, 4};
  std::vector<float> probs = nan_vector<float>(3);
  cpu::softmax_forward<float>(1, 3, logits.data(), probs.data());
  EXPECT_TRUE(all_close(probs, std::vector<double>{0.04201007, 0.11419520, 0.84379473}, kQuotedTol,
                        "probs"));
}

TEST(CpuSoftmax, LargeLogitsDoNotOverflow) {
  // softmax is shift-invariant: (1001, 1002, 1004) gives the lecture's vector, and e^1004 would
  // overflow even in double without the max subtracted. Two rows check the row stride.
  const std::vector<double> logits = {1001, 1002, 1004, -1, 0, 2};
  std::vector<double> probs = nan_vector<double>(6);
  cpu::softmax_forward<double>(2, 3, logits.data(), probs.data());
  const std::vector<double> lecture = {0.04201007, 0.11419520, 0.84379473};
  EXPECT_TRUE(all_close(
      probs,
      std::vector<double>{lecture[0], lecture[1], lecture[2], lecture[0], lecture[1], lecture[2]},
      test::Tolerance{1e-8, 0}, "probs"));
}

TEST(CpuCrossEntropy, LectureLossValues) {
  struct Case {
    std::vector<double> probs;
    std::int32_t label;
    double loss;
  };
  const Case cases[] = {{{0.9503, 0.0473, 0.0024}, 0, 0.0509776},
                        {{0.9, 0.1}, 0, 0.1053605},
                        {{0.1, 0.8, 0.1}, 1, 0.2231436}};
  for (const Case& c : cases) {
    const int classes = static_cast<int>(c.probs.size());
    const std::vector<float> logits = logits_for(c.probs);
    float loss_sum = 1.0f;  // accumulates: the kernel adds to what is there
    std::int32_t correct = 5;
    cpu::softmax_cross_entropy<float>(1, classes, logits.data(), &c.label, nullptr, &loss_sum,
                                      &correct);
    EXPECT_NEAR(loss_sum, 1.0 + c.loss, 1e-6);
    EXPECT_EQ(correct, 6);  // the true class has the largest probability in every case
  }
}

TEST(CpuCrossEntropy, LectureGradient) {
  const std::vector<float> logits = logits_for({0.9503, 0.0473, 0.0024});
  const std::int32_t label = 0;
  std::vector<float> dlogits = nan_vector<float>(3);
  cpu::softmax_cross_entropy<float>(1, 3, logits.data(), &label, dlogits.data(), nullptr, nullptr);
  EXPECT_TRUE(all_close(dlogits, std::vector<double>{-0.0497, 0.0473, 0.0024}, kQuotedTol, "dz"));
}

TEST(CpuCrossEntropy, BatchSumsLossAndDividesGradientByN) {
  // Three samples: two right (losses -log 0.9503, -log 0.8), one wrong (-log 0.05 = log 20).
  std::vector<float> logits = logits_for({0.9503, 0.0473, 0.0024});
  for (double p : {0.1, 0.8, 0.1, 0.9, 0.05, 0.05}) logits.push_back(float(std::log(p)));
  const std::vector<std::int32_t> labels = {0, 1, 2};
  std::vector<float> dlogits = nan_vector<float>(9);
  float loss_sum = 0.0f;
  std::int32_t correct = 0;
  cpu::softmax_cross_entropy<float>(3, 3, logits.data(), labels.data(), dlogits.data(), &loss_sum,
                                    &correct);
  EXPECT_NEAR(loss_sum, 0.0509776 + 0.2231436 + 2.9957323, 3e-6);
  EXPECT_EQ(correct, 2);
  const std::vector<double> expected = {-0.0497 / 3, 0.0473 / 3, 0.0024 / 3,  //
                                        0.1 / 3,     -0.2 / 3,   0.1 / 3,     //
                                        0.9 / 3,     0.05 / 3,   -0.95 / 3};
  EXPECT_TRUE(all_close(dlogits, expected, kQuotedTol, "dz"));
}

TEST(CpuCrossEntropy, TiesCountTheFirstMaximumOnly) {
  const std::vector<float> logits = {2, 2, 1, 0, 3, 3};
  const std::vector<std::int32_t> first_wins = {0, 1};  // rows' first maxima are 0 and 1
  const std::vector<std::int32_t> second_max = {1, 2};
  std::int32_t correct = 0;
  cpu::softmax_cross_entropy<float>(2, 3, logits.data(), first_wins.data(), nullptr, nullptr,
                                    &correct);
  EXPECT_EQ(correct, 2);
  correct = 0;
  cpu::softmax_cross_entropy<float>(2, 3, logits.data(), second_max.data(), nullptr, nullptr,
                                    &correct);
  EXPECT_EQ(correct, 0);
}

TEST(CpuCrossEntropy, ExtremeLogitsGiveAFiniteLoss) {
  // O_0 = e^-1000 underflows to 0, yet -log(O_0) = 1000 exactly.
  const std::vector<float> logits = {0, 1000};
  const std::int32_t label = 0;
  float loss_sum = 0.0f;
  std::vector<float> dlogits = nan_vector<float>(2);
  cpu::softmax_cross_entropy<float>(1, 2, logits.data(), &label, dlogits.data(), &loss_sum,
                                    nullptr);
  EXPECT_NEAR(loss_sum, 1000.0f, 1e-3);
  EXPECT_TRUE(all_close(dlogits, std::vector<double>{-1, 1}, kQuotedTol, "dz"));
}

TEST(CpuCrossEntropy, LabelOutOfRangeThrows) {
  const std::vector<float> logits = {0, 1, 2};
  for (std::int32_t bad : {-1, 3}) {
    float loss_sum = 0.0f;
    EXPECT_THROW(
        cpu::softmax_cross_entropy<float>(1, 3, logits.data(), &bad, nullptr, &loss_sum, nullptr),
        Error);
  }
}

TEST(CpuCrossEntropyGradient, MatchesFiniteDifferencesOfTheMeanLoss) {
  struct Shape {
    int n, classes;
  };
  std::uint64_t seed = 700;
  for (const Shape s : {Shape{1, 2}, Shape{3, 10}, Shape{5, 7}, Shape{8, 3}}) {
    SCOPED_TRACE(::testing::Message() << s.n << "x" << s.classes);
    const std::size_t count = std::size_t(s.n) * s.classes;
    const auto logits = random_vector<double>(count, ++seed, -3.0, 3.0);
    std::vector<std::int32_t> labels(std::size_t(s.n));
    for (int i = 0; i < s.n; ++i) labels[i] = (i * 7 + 3) % s.classes;
    std::vector<double> dlogits = nan_vector<double>(count);
    cpu::softmax_cross_entropy<double>(s.n, s.classes, logits.data(), labels.data(), dlogits.data(),
                                       nullptr, nullptr);
    // dlogits carries the 1/n: it is the gradient of the mean loss, loss_sum / n.
    EXPECT_TRUE(test::check_gradient("dlogits", logits, dlogits, [&](const std::vector<double>& x) {
      double loss_sum = 0.0;
      cpu::softmax_cross_entropy<double>(s.n, s.classes, x.data(), labels.data(), nullptr,
                                         &loss_sum, nullptr);
      return loss_sum / s.n;
    }));
  }
}

// Label smoothing e: the target q = (1 - e) one-hot + e / K, worked out plainly in the test from
// the softmax in double: loss -sum_i q_i log(p_i), gradient (p - q) / n.
TEST(CpuCrossEntropySmoothing, MatchesPlainComputation) {
  constexpr int n = 4, classes = 5;
  constexpr double e = 0.1;
  constexpr test::Tolerance kTol{1e-6, 1e-5};
  const auto logits = random_vector<double>(std::size_t(n) * classes, 811, -4.0, 4.0);
  const std::vector<std::int32_t> labels = {0, 3, 4, 3};
  double expected_loss = 0;
  std::vector<double> expected_grad;
  for (int s = 0; s < n; ++s) {
    double sum = 0;
    for (int i = 0; i < classes; ++i) sum += std::exp(logits[std::size_t(s) * classes + i]);
    for (int i = 0; i < classes; ++i) {
      const double p = std::exp(logits[std::size_t(s) * classes + i]) / sum;
      const double q = (i == labels[s] ? 1 - e : 0) + e / classes;
      expected_loss -= q * std::log(p);
      expected_grad.push_back((p - q) / n);
    }
  }
  const std::vector<float> logits_f(logits.begin(), logits.end());
  std::vector<float> grad = nan_vector<float>(logits.size());
  float loss = 0;
  cpu::softmax_cross_entropy<float>(n, classes, logits_f.data(), labels.data(), grad.data(), &loss,
                                    nullptr, float(e));
  EXPECT_TRUE(all_close(grad, expected_grad, kTol, "dlogits"));
  EXPECT_TRUE(
      all_close(std::vector<float>{loss}, std::vector<double>{expected_loss}, kTol, "loss"));
  // The smoothed loss is larger than the plain one of the same logits (more mass off the label).
  float plain = 0;
  cpu::softmax_cross_entropy<float>(n, classes, logits_f.data(), labels.data(), nullptr, &plain,
                                    nullptr);
  EXPECT_NE(plain, loss);
}

TEST(CpuCrossEntropySmoothing, GradientMatchesFiniteDifferences) {
  std::uint64_t seed = 900;
  for (const double e : {0.1, 0.5, 0.9}) {
    SCOPED_TRACE(::testing::Message() << "e " << e);
    constexpr int n = 3, classes = 10;
    const auto logits = random_vector<double>(std::size_t(n) * classes, ++seed, -3.0, 3.0);
    const std::vector<std::int32_t> labels = {2, 9, 0};
    std::vector<double> dlogits = nan_vector<double>(logits.size());
    cpu::softmax_cross_entropy<double>(n, classes, logits.data(), labels.data(), dlogits.data(),
                                       nullptr, nullptr, e);
    EXPECT_TRUE(test::check_gradient("dlogits", logits, dlogits, [&](const std::vector<double>& x) {
      double loss_sum = 0.0;
      cpu::softmax_cross_entropy<double>(n, classes, x.data(), labels.data(), nullptr, &loss_sum,
                                         nullptr, e);
      return loss_sum / n;
    }));
  }
}

}  // namespace
}  // namespace cnnrt
