// `cnnrt predict`: the logits file's shapes, dtypes and labels, and its argmax accuracy against the
// accuracy `cnnrt eval` reports for the same weights (a different path: resident data, normalised
// when gathered, counted by the loss kernel).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/safetensors.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

constexpr int kTestImages = 300;
constexpr int kClasses = 10;
// eval prints the accuracy with four decimals.
constexpr double kPrintedAccuracyTolerance = 0.5e-4 + 1e-9;

TEST(PredictTool, WritesLogitsAndLabelsThatAgreeWithEval) {
  const std::string data = test::fashion_mnist_dir();
  if (!std::filesystem::exists(data)) GTEST_SKIP() << "no Fashion-MNIST at " << data;
  test::ScratchDir dir("predict_tool");
  const std::string weights = dir.file("weights.safetensors");
  const std::string logits_file = dir.file("logits.safetensors");
  const std::string limit = " --test-limit " + std::to_string(kTestImages);

  test::ToolRun run = test::run_tool(
      "train --device cpu --epochs 1 --train-limit 1024 --batch 64 "
      "--data '" +
      data + "'" + limit + " --checkpoint '" + weights + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = test::run_tool("predict --device cpu --batch 128 --data '" + data + "'" + limit +
                       " --weights '" + weights + "' --out '" + logits_file + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;

  const SafeTensors file = SafeTensors::load(logits_file);
  const TensorData& logits = file.get("logits");
  const TensorData& labels = file.get("labels");
  ASSERT_EQ(logits.dtype, "F32");
  ASSERT_EQ(labels.dtype, "I64");
  ASSERT_EQ(logits.shape, (std::vector<std::int64_t>{kTestImages, kClasses}));
  ASSERT_EQ(labels.shape, (std::vector<std::int64_t>{kTestImages}));

  const Dataset test_set = load_mnist_split(data, false);
  const std::vector<std::int64_t> label_values = labels.as_int64s();
  for (int i = 0; i < kTestImages; ++i) ASSERT_EQ(label_values[i], test_set.labels[i]) << i;

  const std::vector<float> scores = logits.as_floats();
  ASSERT_TRUE(test::any_nonzero(scores));
  int correct = 0;
  for (int i = 0; i < kTestImages; ++i) {
    int best = 0;
    for (int c = 0; c < kClasses; ++c) {
      ASSERT_TRUE(std::isfinite(scores[i * kClasses + c])) << i << "," << c;
      if (scores[i * kClasses + c] > scores[i * kClasses + best]) best = c;
    }
    correct += best == label_values[i] ? 1 : 0;
  }

  run = test::run_tool("eval --device cpu --data '" + data + "'" + limit + " --weights '" +
                       weights + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  double eval_accuracy = -1;
  const std::size_t at = run.output.find("accuracy ");
  ASSERT_NE(at, std::string::npos) << run.output;
  ASSERT_EQ(std::sscanf(run.output.c_str() + at, "accuracy %lf", &eval_accuracy), 1);
  EXPECT_NEAR(double(correct) / kTestImages, eval_accuracy, kPrintedAccuracyTolerance);
}

TEST(PredictTool, MissingWeightsExitOne) {
  test::ScratchDir dir("predict_missing");
  const test::ToolRun run =
      test::run_tool("predict --device cpu --weights '" + dir.file("none.safetensors") +
                     "' --out '" + dir.file("out.safetensors") + "'");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("none.safetensors"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace cnnrt
