// `cnnrt predict`: the logits file's shapes, dtypes and labels, and its argmax accuracy against the
// accuracy `cnnrt eval` reports for the same weights (a different path: resident data, normalised
// when gathered, counted by the loss kernel).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/safetensors.hpp"
#include "tests/image_files.hpp"
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

// predict IMAGE...: a one-dense-layer model trained on a generated folder, so each printed
// probability can be recomputed here: x = (byte / 255 - mean) / std with the checkpoint's values,
// z = W x + b from its tensors, softmax.
class PredictFiles : public ::testing::Test {
 protected:
  static constexpr int kSide = 4, kPixels = kSide * kSide, kClasses = 3;
  // Printed with four decimals.
  static constexpr double kPrinted = 0.5e-4 + 1e-7;

  void SetUp() override {
    test::write_class_tree(dir_.path() / "data" / "train", {"circle", "square", "star"}, 4, kSide,
                           kSide, 1, ".png");
    test::write_class_tree(dir_.path() / "data" / "test", {"circle", "square", "star"}, 1, kSide,
                           kSide, 1, ".png");
    test::write_text(dir_.file("model.json"),
                     R"({"name": "tiny", "input": [1, 4, 4], "classes": 3, "layers": [)"
                     R"({"type": "dense", "name": "fc1", "units": 3}]})");
    const test::ToolRun run = test::run_tool(
        "train --device cpu --epochs 3 --batch 4 --model '" + dir_.file("model.json") +
        "' --data '" + dir_.file("data") + "' --checkpoint '" + weights() + "'");
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }

  std::string weights() const { return dir_.file("w.safetensors"); }
  std::string image(const std::string& cls, int i) const {
    return dir_.file("data/train/" + cls + "/" + std::to_string(i) + ".png");
  }

  // Softmax probabilities of the picture the tree wrote as (label, index), by hand.
  std::vector<double> expected(int label, int index) const {
    const SafeTensors file = SafeTensors::load(weights());
    const std::vector<float> w = file.get("fc1.weight").as_floats();  // [3, 16]
    const std::vector<float> b = file.get("fc1.bias").as_floats();
    const double mean = std::stod(file.metadata.at("normalization_mean"));
    const double sd = std::stod(file.metadata.at("normalization_std"));
    const std::vector<std::uint8_t> bytes = test::test_picture(kSide, kSide, 1, label, index);
    std::vector<double> z(kClasses);
    for (int c = 0; c < kClasses; ++c) {
      z[c] = b[c];
      for (int p = 0; p < kPixels; ++p)
        z[c] += w[c * kPixels + p] * ((bytes[p] / 255.0 - mean) / sd);
    }
    const double peak = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (double& v : z) sum += v = std::exp(v - peak);
    for (double& v : z) v /= sum;
    return z;
  }

  test::ScratchDir dir_{"predict_files"};
};

TEST_F(PredictFiles, OneLinePerImageWithTheCheckpointsNamesAndProbabilities) {
  const char* names[] = {"circle", "square", "star"};
  const test::ToolRun run = test::run_tool("predict --device cpu --weights '" + weights() + "' '" +
                                           image("circle", 1) + "' '" + image("star", 3) + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::istringstream lines(run.output);
  for (const auto& [label, index] : {std::pair{0, 1}, std::pair{2, 3}}) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line)) << run.output;
    const std::string path = image(names[label], index);
    ASSERT_EQ(line.rfind(path + ": ", 0), 0u) << line;
    const std::vector<double> p = expected(label, index);
    std::vector<int> order = {0, 1, 2};
    std::sort(order.begin(), order.end(), [&](int x, int y) { return p[x] > p[y]; });
    std::string rest = line.substr(path.size() + 2);
    for (int k = 0; k < 3; ++k) {
      const std::string name = names[order[k]];
      ASSERT_EQ(rest.rfind(name + " (", 0), 0u) << line;
      const double printed = std::stod(rest.substr(name.size() + 2));
      EXPECT_NEAR(printed, p[order[k]], kPrinted) << line;
      const std::size_t next = rest.find(", ");
      rest = next == std::string::npos ? "" : rest.substr(next + 2);
    }
  }
  std::string extra;
  EXPECT_FALSE(std::getline(lines, extra)) << extra;
}

TEST_F(PredictFiles, TopAndJson) {
  const test::ToolRun run = test::run_tool("predict --device cpu --top 2 --json --weights '" +
                                           weights() + "' '" + image("square", 0) + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json out = nlohmann::json::parse(run.output);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["path"], image("square", 0));
  ASSERT_EQ(out[0]["top"].size(), 2u);
  const std::vector<double> p = expected(1, 0);
  for (const auto& entry : out[0]["top"]) {
    const int c = entry["index"];
    EXPECT_NEAR(double(entry["probability"]), p[c], 1e-6);
    EXPECT_EQ(entry["class"], (std::vector<std::string>{"circle", "square", "star"})[c]);
  }
  EXPECT_GE(double(out[0]["top"][0]["probability"]), double(out[0]["top"][1]["probability"]));
  const test::ToolRun one = test::run_tool("predict --device cpu --top 1 --weights '" + weights() +
                                           "' '" + image("square", 0) + "'");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(one.output.find(", "), std::string::npos) << one.output;
}

TEST_F(PredictFiles, BadImagesAndUsage) {
  test::write_text(dir_.file("fake.png"), "not an image");
  const test::ToolRun bad = test::run_tool("predict --device cpu --weights '" + weights() + "' '" +
                                           image("star", 0) + "' '" + dir_.file("fake.png") + "'");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_EQ(bad.output.rfind("cnnrt: error: " + dir_.file("fake.png") + ": ", 0), 0u) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
  const test::ToolRun nothing =
      test::run_tool("predict --device cpu --weights '" + weights() + "'");
  EXPECT_EQ(nothing.exit_code, 2) << nothing.output;
}

// --out with image files: their logits [n, classes] in the order given, no labels; their softmax
// is the hand-computed one.
TEST_F(PredictFiles, LogitsOfImageFiles) {
  const std::string out = dir_.file("images.safetensors");
  const test::ToolRun run =
      test::run_tool("predict --device cpu --weights '" + weights() + "' --out '" + out + "' '" +
                     image("star", 2) + "' '" + image("circle", 0) + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const SafeTensors file = SafeTensors::load(out);
  EXPECT_FALSE(file.contains("labels"));
  const TensorData& logits = file.get("logits");
  ASSERT_EQ(logits.shape, (std::vector<std::int64_t>{2, kClasses}));
  const std::vector<float> z = logits.as_floats();
  for (const auto& [row, label, index] : {std::tuple{0, 2, 2}, std::tuple{1, 0, 0}}) {
    const std::vector<double> p = expected(label, index);
    const float* zr = z.data() + row * kClasses;
    const double peak = *std::max_element(zr, zr + kClasses);
    double sum = 0;
    for (int c = 0; c < kClasses; ++c) sum += std::exp(zr[c] - peak);
    for (int c = 0; c < kClasses; ++c)
      EXPECT_NEAR(std::exp(zr[c] - peak) / sum, p[std::size_t(c)], 1e-6) << row << " " << c;
  }
}

}  // namespace
}  // namespace cnnrt
