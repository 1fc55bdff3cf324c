// `cnnrt predict`: the logits of the test set under saved weights, as a safetensors file, so other
// frameworks (tools/bench/torch_interop.py) can compare their outputs with cnnrt's.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/safetensors.hpp"
#include "cnnrt/trainer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct PredictArgs {
  std::string model = "lenet5";
  std::string data = default_data_dir();
  std::string device = "auto";
  std::string weights;
  std::string out;
  int batch = 256;
  int test_limit = 0;
};

}  // namespace

void add_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  PredictArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Write the test set's logits ([N, classes] F32) and labels ([N] I64) as safetensors");
  add_weights_option(cmd, a.weights);
  cmd->add_option("--out", a.out, "Output file (safetensors)")->required();
  add_model_option(cmd, a.model);
  add_data_option(cmd, a.data);
  add_device_option(cmd, a.device);
  cmd->add_option("--batch", a.batch, "Batch size")
      ->check(positive_number())
      ->capture_default_str();
  add_test_limit_option(cmd, a.test_limit);
  cmd->callback([args] {
    const PredictArgs& a = *args;
    const Network network = load_network(a.model);
    CompileOptions options;
    options.device = resolve_device(a.device);
    options.batch_size = a.batch;
    Model model(network, options);
    load_checkpoint(a.weights, model, false);
    const Dataset test = load_split(a.data, false, a.test_limit, network);

    const int classes = network.classes();
    std::vector<float> logits;
    logits.reserve(std::size_t(test.count) * classes);
    for (int first = 0; first < test.count; first += a.batch) {
      const int n = std::min(a.batch, test.count - first);
      // As training did: the checkpoint's normalisation.
      const std::vector<float> batch = normalized_samples(test, first, n, model.normalization());
      const std::vector<float> scores = model.logits(batch.data(), n);
      logits.insert(logits.end(), scores.begin(), scores.end());
    }
    const std::vector<std::int64_t> labels(test.labels.begin(), test.labels.end());

    SafeTensors file;
    file.add_f32("logits", {test.count, classes}, logits.data());
    file.add_i64("labels", {test.count}, labels.data());
    file.metadata["model"] = network.name();
    file.metadata["weights"] = a.weights;
    file.metadata["device"] = to_string(options.device);
    file.metadata["normalization"] =
        fmt::format("(x / 255 - [{}]) / [{}]", model.normalization().mean_text(),
                    model.normalization().std_text());
    file.save(a.out);
    fmt::print("wrote logits of {} test images ({} classes) to {}\n", test.count, classes, a.out);
  });
}

}  // namespace cnnrt::cli
