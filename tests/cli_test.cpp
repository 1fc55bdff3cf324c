// The `cnnrt` tool run as a process: exit codes (0 success, 1 error, 2 usage), error lines, the
// summary table against parameter counts worked out by hand, a short training run's metrics CSV
// and checkpoint evaluated again by `cnnrt eval`, and `cnnrt gradcheck` with its dump file, whose
// loss and last-layer bias gradient are recomputed here from the dumped batch and weights.

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The one line that starts with `prefix`, or "" (with a failure) when there is none.
std::string line_starting(const std::string& text, const std::string& prefix) {
  for (const std::string& line : lines_of(text))
    if (line.rfind(prefix, 0) == 0) return line;
  ADD_FAILURE() << "no line starts with '" << prefix << "' in:\n" << text;
  return "";
}

class CliTest : public test::ScratchDirTest {
 protected:
  CliTest() : ScratchDirTest("cli_test") {}
};

TEST_F(CliTest, InfoReportsTheDevices) {
  const test::ToolRun r = test::run_tool("info");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "cnnrt "));
  const std::string expected = cuda_available() ? "device 0: " : "no CUDA device";
  EXPECT_TRUE(test::contains(r.output, expected));
}

TEST_F(CliTest, UsageErrorsExitWith2) {
  const test::ToolRun none = test::run_tool("");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  const test::ToolRun unknown = test::run_tool("train --no-such-option");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_TRUE(test::contains(unknown.output, "--no-such-option"));
  const test::ToolRun bad_value = test::run_tool("train --device tpu");
  EXPECT_EQ(bad_value.exit_code, 2) << bad_value.output;
  const test::ToolRun bad_command = test::run_tool("fly");
  EXPECT_EQ(bad_command.exit_code, 2) << bad_command.output;
}

// Usage errors: one line "cnnrt: error: <message>" naming the option, then where to find help, and
// exit status 2; nothing is loaded or trained.
TEST_F(CliTest, UsageErrorsAreOneLineAndExitWith2) {
  const struct {
    std::string arguments, named;
  } cases[] = {
      {"train --no-such-option", "--no-such-option"},
      {"train --device cpu --batch 0", "--batch"},
      {"train --device cpu --lr -0.1", "--lr"},
      {"train --device cpu --schedule linear:3", "unknown learning-rate schedule 'linear:3'"},
      {"train --device cpu --schedule onecycle:1", "onecycle:1"},
      {"train --device cpu --optimizer rmsprop", "unknown optimizer 'rmsprop'"},
      {"train --device cpu --eps 0", "--eps"},
      {"train --device cpu --betas 1,0.9", "betas must be B1,B2"},
      {"train --device cpu --betas 0.9", "--betas"},
      {"train --device cpu --momentum 1.5", "--momentum"},
      {"train --device cpu --label-smoothing 1", "--label-smoothing"},
      {"train --device cpu --warmup -1", "--warmup"},
      {"train --device cpu --schedule step:0:0.5", "step:0:0.5"},
      {"train --device cpu --init glorot", "unknown initialisation 'glorot'"},
      {"train --device cpu --epochs 0", "--epochs"},
      {"train --device cpu --profile-steps 5:2",
       "--profile-steps: profile steps '5:2': the first step 5 comes after the last 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.arguments);
    const test::ToolRun r = test::run_tool(c.arguments + " --data /nonexistent");
    EXPECT_EQ(r.exit_code, 2) << r.output;
    const std::vector<std::string> lines = lines_of(r.output);
    ASSERT_EQ(lines.size(), 2u) << r.output;
    EXPECT_EQ(lines[0].rfind("cnnrt: error: ", 0), 0u) << lines[0];
    EXPECT_TRUE(test::contains(lines[0], c.named));
    EXPECT_EQ(lines[1], "run 'cnnrt train --help' for usage");
  }
  const test::ToolRun unknown_command = test::run_tool("fly");
  EXPECT_EQ(unknown_command.exit_code, 2);
  const std::vector<std::string> lines = lines_of(unknown_command.output);
  ASSERT_EQ(lines.size(), 2u) << unknown_command.output;
  EXPECT_TRUE(test::contains(lines[0], "fly"));
  EXPECT_EQ(lines[1], "run 'cnnrt --help' for usage");
}

// A layer's hyperparameter out of its range in a model file is a usage error too (exit 2, one
// line naming the file, the layer and the value); a field of the wrong type is a damaged file
// (exit 1).
TEST_F(CliTest, ModelFileValuesOutOfRangeExitWith2) {
  const struct {
    std::string fields, named;
    int exit_code;
  } cases[] = {
      {R"("momentum": 1.5)", "'momentum' must be a number from 0 to 1, got 1.5", 2},
      {R"("momentum": -0.1)", "'momentum' must be a number from 0 to 1", 2},
      {R"("eps": 0)", "'eps' must be greater than 0, got 0", 2},
      {R"("eps": -1e-5)", "'eps' must be greater than 0", 2},
      {R"("momentum": "fast")", "'momentum' must be a number", 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fields);
    const std::string model = (dir() / "bn.json").string();
    test::write_text(model, R"({"input": [1, 8, 8], "classes": 3, "layers": [
      {"type": "conv2d", "filters": 2, "kernel": 3}, {"type": "batch_norm", "name": "bn1", )" +
                                c.fields + R"(}, {"type": "dense", "units": 3}]})");
    const test::ToolRun r = test::run_tool("train --device cpu --model '" + model + "' --data '" +
                                           dir().string() + "'");
    EXPECT_EQ(r.exit_code, c.exit_code) << r.output;
    const std::vector<std::string> lines = lines_of(r.output);
    ASSERT_EQ(lines.size(), 1u) << r.output;
    EXPECT_EQ(lines[0].rfind("cnnrt: error: " + model + ": layer 2 (batch_norm)", 0), 0u)
        << lines[0];
    EXPECT_TRUE(test::contains(lines[0], c.named)) << lines[0];
  }
}

// Errors found while running (not while parsing) exit with 1 and print exactly one line.
// The GPU machine hides its devices from the child (an empty CUDA_VISIBLE_DEVICES), so the test
// runs there too instead of skipping.
TEST_F(CliTest, DeviceCudaWithoutGpuIsOneLine) {
  const test::ToolRun r =
      test::run_tool("train --device cuda --data /nonexistent", "CUDA_VISIBLE_DEVICES=");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::vector<std::string> lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 1u) << r.output;
  EXPECT_EQ(lines[0].rfind("cnnrt: error: --device cuda: no CUDA device", 0), 0u) << lines[0];
}

// `train` reads the data while it compiles the model (start-up overlaps); errors still come one
// at a time and in order: a bad data set before a model that cannot be compiled.
TEST_F(CliTest, DataErrorsComeBeforeCompileErrors) {
  const std::string too_large = "train --device cpu --threads 1 --epochs 1 --batch 100000000 ";
  const test::ToolRun no_data = test::run_tool(too_large + "--data '" + dir().string() + "'");
  EXPECT_EQ(no_data.exit_code, 1) << no_data.output;
  ASSERT_EQ(lines_of(no_data.output).size(), 1u) << no_data.output;
  EXPECT_TRUE(test::contains(no_data.output, "cnnrt: error: no training split in"))
      << no_data.output;

  test::write_synthetic_mnist_dir(dir().string(), 40, 20);
  const test::ToolRun no_memory = test::run_tool(too_large + "--data '" + dir().string() + "'");
  EXPECT_EQ(no_memory.exit_code, 1) << no_memory.output;
  ASSERT_EQ(lines_of(no_memory.output).size(), 1u) << no_memory.output;
  EXPECT_TRUE(test::contains(no_memory.output,
                             "cnnrt: error: lenet5 at batch 100000000: out of host memory"))
      << no_memory.output;
}

// --train-limit and --test-limit past the data set take all of it, with a notice.
TEST_F(CliTest, LimitsPastTheDataSetAreClamped) {
  test::write_synthetic_mnist_dir(dir().string(), 96, 40);
  const test::ToolRun r = test::run_tool(
      "train --device cpu --threads 1 --epochs 1 --batch 32 --train-limit 99999 --test-limit "
      "1000 --checkpoint '" +
      path("c.safetensors") + "' --data '" + dir().string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(
      test::contains(r.output, "--train-limit 99999 is more than the 96 images; using all"));
  EXPECT_TRUE(test::contains(r.output, "--test-limit 1000 is more than the 40 images; using all"));
  EXPECT_TRUE(test::contains(r.output, "(96 train / 40 test images)"));

  const test::ToolRun eval =
      test::run_tool("eval --device cpu --threads 1 --test-limit 50 --weights '" +
                     path("c.safetensors") + "' --data '" + dir().string() + "'");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(test::contains(eval.output, "--test-limit 50 is more than the 40 images; using all"));
  EXPECT_TRUE(test::contains(lines_of(eval.output).back(), "images 40"));
}

// A model file's recipe trains with no flags; a flag given overrides its field alone.
TEST_F(CliTest, RecipeFlagsOverrideThePresetRecipe) {
  test::write_synthetic_mnist_dir(dir().string(), 64, 32);
  const std::string model = path("tiny.json");
  std::ofstream(model) << R"({"name": "tiny", "input": [1, 28, 28], "classes": 10,
    "layers": [{"type": "dense", "name": "fc", "units": 10}],
    "recipe": {"optimizer": "adam", "lr": 0.003, "betas": [0.8, 0.99], "epochs": 2,
               "batch": 16, "schedule": "linear", "warmup": 0.5, "label_smoothing": 0.1}})";
  const std::string common =
      "train --device cpu --threads 1 --model '" + model + "' --data '" + dir().string() + "'";
  const test::ToolRun recipe = test::run_tool(common);
  ASSERT_EQ(recipe.exit_code, 0) << recipe.output;
  EXPECT_TRUE(test::contains(recipe.output,
                             "batch 16, 2 epochs, adam lr 0.003 (linear, warm-up 0.5), betas "
                             "0.8,0.99"))
      << recipe.output;
  EXPECT_TRUE(test::contains(recipe.output, "after 2 epochs")) << recipe.output;
  const test::ToolRun flags =
      test::run_tool(common + " --epochs 1 --lr 0.001 --optimizer nesterov --schedule constant");
  ASSERT_EQ(flags.exit_code, 0) << flags.output;
  EXPECT_TRUE(test::contains(flags.output,
                             "batch 16, 1 epochs, nesterov lr 0.001 (constant, warm-up 0.5), "
                             "momentum 0.9"))
      << flags.output;

  std::ofstream(model) << R"({"name": "tiny", "input": [1, 28, 28], "classes": 10,
    "layers": [{"type": "dense", "name": "fc", "units": 10}], "recipe": {"lr_max": 1}})";
  const test::ToolRun bad = test::run_tool(common);
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(test::contains(bad.output, "unknown recipe key 'lr_max'")) << bad.output;
}

TEST_F(CliTest, HelpExitsWith0) {
  const test::ToolRun r = test::run_tool("train --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(test::contains(r.output, "--epochs"));
}

// --device cuda trains on a GPU when there is one and is an error (naming why) when there is not.
TEST_F(CliTest, DeviceCudaTrainsOrNamesTheMissingDevice) {
  const test::ToolRun r = test::run_tool(
      "train --device cuda --epochs 1 --train-limit 512 --test-limit 256 --batch 64");
  if (cuda_available()) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(test::contains(r.output, "on cuda, batch 64")) << r.output;
    EXPECT_TRUE(test::contains(r.output, "epoch 1/1")) << r.output;
    return;
  }
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = line_starting(r.output, "cnnrt: error:");
  EXPECT_TRUE(test::contains(line, "no CUDA device"));
}

TEST_F(CliTest, UnknownModelIsAnError) {
  const test::ToolRun r = test::run_tool("train --device cpu --model nosuch");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = line_starting(r.output, "cnnrt: error:");
  EXPECT_TRUE(test::contains(line, "unknown model 'nosuch'"));
}

TEST_F(CliTest, MissingDataDirectoryIsNamed) {
  const test::ToolRun r =
      test::run_tool("train --device cpu --epochs 1 --data /nonexistent/fmnist");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string line = line_starting(r.output, "cnnrt: error:");
  EXPECT_TRUE(test::contains(line, "/nonexistent/fmnist"));
  EXPECT_TRUE(test::contains(line, "does not exist"));
}

// The numbers in a row of the summary table, in order.
std::vector<std::string> row_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::istringstream in(line);
  for (std::string f; in >> f;) fields.push_back(f);
  return fields;
}

TEST_F(CliTest, SummaryOfLeNet5) {
  const test::ToolRun r = test::run_tool("summary");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 156 + 2416 + 48120 + 10164 + 850
  EXPECT_TRUE(test::contains(line_starting(r.output, "total:"), "total: 61706 parameters"));
  EXPECT_TRUE(test::contains(r.output, "as dense: params"));
  // conv1: 6*1*25+6 parameters; as dense: 784 inputs to 6*28*28 = 4704 outputs, plus biases.
  const std::vector<std::string> conv1 = row_fields(line_starting(r.output, "conv1 "));
  ASSERT_GE(conv1.size(), 3u);
  EXPECT_EQ(conv1[conv1.size() - 4], "6x28x28");
  EXPECT_EQ(conv1[conv1.size() - 3], "156");
  EXPECT_EQ(conv1.back(), std::to_string(784 * 4704 + 4704));
  // conv2: 16*6*25+16; as dense: 6*14*14 = 1176 inputs to 16*10*10 = 1600 outputs.
  const std::vector<std::string> conv2 = row_fields(line_starting(r.output, "conv2 "));
  EXPECT_EQ(conv2[conv2.size() - 3], "2416");
  EXPECT_EQ(conv2.back(), std::to_string(1176 * 1600 + 1600));
  // fc1: 400*120+120, no dense-equivalent column.
  const std::vector<std::string> fc1 = row_fields(line_starting(r.output, "fc1 "));
  EXPECT_EQ(fc1[fc1.size() - 2], "48120");
}

TEST_F(CliTest, SummaryOfAlexNet) {
  const test::ToolRun r = test::run_tool("summary --model alexnet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // conv1 34944, conv2 614656, conv3 885120, conv4 1327488, conv5 884992, fc1 9216*4096+4096,
  // fc2 4096*4096+4096, fc3 4096*1000+1000.
  const long long total = 34944LL + 614656 + 885120 + 1327488 + 884992 + (9216LL * 4096 + 4096) +
                          (4096LL * 4096 + 4096) + (4096LL * 1000 + 1000);
  EXPECT_TRUE(test::contains(line_starting(r.output, "total:"),
                             "total: " + std::to_string(total) + " parameters"));
}

TEST_F(CliTest, TrainWritesMetricsAndCheckpointThatEvalReads) {
  if (!test::have_fashion_mnist())
    GTEST_SKIP() << "Fashion-MNIST not found in " << test::fashion_mnist_dir();
  const std::string data = " --data '" + test::fashion_mnist_dir() + "'";
  const test::ToolRun train = test::run_tool(
      "train --device cpu --threads 2 --epochs 1 --train-limit 512 "
      "--test-limit 256 --batch 64 --metrics '" +
      path("m.csv") + "' --checkpoint '" + path("c.safetensors") + "'" + data);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(test::contains(train.output, "final test accuracy"));

  std::ifstream csv(path("m.csv"));
  std::string header, row, extra;
  ASSERT_TRUE(std::getline(csv, header));
  EXPECT_EQ(header,
            "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s");
  ASSERT_TRUE(std::getline(csv, row));
  EXPECT_FALSE(std::getline(csv, extra)) << "more than one row: " << extra;
  std::vector<double> values;
  {
    std::istringstream fields(row);
    for (std::string f; std::getline(fields, f, ',');) values.push_back(std::stod(f));
  }
  ASSERT_EQ(values.size(), 8u) << row;
  EXPECT_EQ(values[0], 1.0);
  for (int i : {1, 3}) EXPECT_TRUE(values[i] > 0 && std::isfinite(values[i])) << row;
  for (int i : {2, 4}) EXPECT_TRUE(values[i] >= 0 && values[i] <= 1) << row;
  EXPECT_GT(values[5], 0.0);
  EXPECT_GT(values[6], 0.0);
  EXPECT_GE(values[7], values[5]);  // the process ran at least as long as the epoch

  const test::ToolRun eval =
      test::run_tool("eval --device cpu --threads 2 --test-limit 256 --weights '" +
                     path("c.safetensors") + "'" + data);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const std::vector<std::string> lines = lines_of(eval.output);
  ASSERT_FALSE(lines.empty());
  double accuracy = 0, loss = 0;
  int images = 0, consumed = 0;
  ASSERT_EQ(std::sscanf(lines.back().c_str(), "accuracy %lf loss %lf images %d%n", &accuracy, &loss,
                        &images, &consumed),
            3)
      << lines.back();
  EXPECT_EQ(std::size_t(consumed), lines.back().size()) << lines.back();
  EXPECT_EQ(images, 256);
  // The same weights on the same 256 images: the training run's test columns (the CSV has 6
  // decimals, eval prints 4).
  constexpr double kPrintedDigits = 1e-4;
  EXPECT_NEAR(accuracy, values[4], kPrintedDigits);
  EXPECT_NEAR(loss, values[3], kPrintedDigits);
}

std::string gradcheck_data_option() {
  return test::have_fashion_mnist() ? " --data '" + test::fashion_mnist_dir() + "'" : " --data ''";
}

TEST_F(CliTest, GradcheckFiniteDifferencesPasses) {
  for (const char* model : {"lenet5", "lenet5-classic"}) {
    SCOPED_TRACE(model);
    const test::ToolRun r =
        test::run_tool(std::string("gradcheck --reference fd --batch 2 --model ") + model +
                       gradcheck_data_option());
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(test::contains(r.output, "gradcheck passed"));
    EXPECT_TRUE(test::contains(r.output, "cpu (double) vs finite differences"));
  }
}

TEST_F(CliTest, GradcheckFailureExitsWith1) {
  // A model file and weights whose first ReLU passes nothing: fc1's gradients are all zero.
  {
    std::ofstream model_file(path("dead.json"));
    model_file << R"({"name": "dead", "input": [1, 3, 3], "classes": 3, "layers": [
        {"type": "dense", "units": 6}, {"type": "relu"}, {"type": "dense", "units": 3}]})";
  }
  CompileOptions o;
  o.batch_size = 2;
  Model model(load_network(path("dead.json")), o);
  model.set_parameter("fc1.bias", std::vector<float>(6, -1000.0f));
  save_checkpoint(path("dead.safetensors"), model, 0);
  const test::ToolRun r =
      test::run_tool("gradcheck --reference fd --batch 2 --data '' --model '" + path("dead.json") +
                     "' --weights '" + path("dead.safetensors") + "'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(test::contains(line_starting(r.output, "fc1.weight "), "FAIL (all zero)"));
  EXPECT_TRUE(test::contains(line_starting(r.output, "fc2.bias "), "ok"));
  EXPECT_TRUE(test::contains(line_starting(r.output, "cnnrt: error:"), "gradcheck failed"));
}

TEST_F(CliTest, GradcheckDumpHoldsBatchParametersGradientsAndLoss) {
  const std::string dump = path("dump.safetensors");
  const test::ToolRun r = test::run_tool("gradcheck --reference fd --batch 2 --dump '" + dump +
                                         "'" + gradcheck_data_option());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const SafeTensors file = SafeTensors::load(dump);

  const TensorData& input = file.get("input");
  EXPECT_EQ(input.dtype, "F32");
  EXPECT_EQ(input.shape, (std::vector<std::int64_t>{2, 1, 28, 28}));
  const TensorData& labels = file.get("labels");
  EXPECT_EQ(labels.dtype, "I64");
  EXPECT_EQ(labels.shape, (std::vector<std::int64_t>{2}));
  const std::vector<std::int64_t> label_values = labels.as_int64s();
  for (std::int64_t l : label_values) EXPECT_TRUE(l >= 0 && l < 10) << l;
  const TensorData& loss = file.get("loss");
  EXPECT_EQ(loss.shape, std::vector<std::int64_t>{});
  ASSERT_EQ(loss.element_count(), 1);

  CompileOptions o;
  o.batch_size = 2;
  o.cpu_threads = 1;
  Model model(load_network("lenet5"), o);
  std::size_t expected_tensors = 3;
  for (const ParameterInfo& p : model.parameters()) {
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(file.contains(p.name));
    ASSERT_TRUE(file.contains(p.name + ".grad"));
    EXPECT_EQ(file.get(p.name).shape, p.shape);
    EXPECT_EQ(file.get(p.name + ".grad").shape, p.shape);
    EXPECT_TRUE(test::any_nonzero(file.get(p.name + ".grad").as_floats()));
    model.set_parameter(p.name, file.get(p.name).as_floats());
    expected_tensors += 2;
  }
  EXPECT_EQ(file.size(), expected_tensors);

  // Recompute the loss and fc3.bias's gradient, mean over the batch of softmax - onehot, from the
  // dumped batch and weights.
  const std::vector<float> images = input.as_floats();
  const std::vector<std::int32_t> batch_labels(label_values.begin(), label_values.end());
  const std::vector<float> logits = model.logits(images.data(), 2);
  double loss_sum = 0;
  std::vector<double> bias_grad(10, 0.0);
  for (int n = 0; n < 2; ++n) {
    const float* z = logits.data() + n * 10;
    double top = z[0], sum = 0;
    for (int k = 1; k < 10; ++k) top = std::max(top, double(z[k]));
    for (int k = 0; k < 10; ++k) sum += std::exp(z[k] - top);
    loss_sum += -(z[batch_labels[n]] - top - std::log(sum));
    for (int k = 0; k < 10; ++k)
      bias_grad[k] += (std::exp(z[k] - top) / sum - (k == batch_labels[n] ? 1.0 : 0.0)) / 2.0;
  }
  constexpr test::Tolerance kFloatVsDouble{1e-6, 1e-4};
  EXPECT_TRUE(
      test::all_close(loss.as_floats(), std::vector<double>{loss_sum / 2}, kFloatVsDouble, "loss"));
  EXPECT_TRUE(test::all_close(file.get("fc3.bias.grad").as_floats(), bias_grad, kFloatVsDouble,
                              "fc3.bias"));
}

}  // namespace
}  // namespace cnnrt
