// `cnnrt predict`: the classes of image files under saved weights (one line per image, or JSON),
// or the logits of the test set as a safetensors file, so other frameworks
// (tools/bench/torch_interop.py) can compare their outputs with cnnrt's.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/image_folder.hpp"
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
  std::vector<std::string> images;
  int batch = 256;
  int test_limit = 0;
  int top = 3;
  bool json = false;
};

// The image files, each decoded and fitted to the input, as one data set (labels 0). Every file
// is read before anything is printed: a bad one is the error line alone.
Dataset load_image_files(const Model& model, const std::vector<std::string>& paths) {
  const SampleShape in = model.network().input();
  Dataset images;
  images.channels = in.c, images.height = in.h, images.width = in.w;
  images.classes = model.network().classes();
  for (const std::string& path : paths) {
    const std::vector<std::uint8_t> sample = load_image_sample(path, in.c, in.h, in.w);
    images.images.insert(images.images.end(), sample.begin(), sample.end());
  }
  images.count = int(paths.size());
  images.labels.assign(paths.size(), 0);
  return images;
}

// The logits [count, classes] of every sample, in batches, normalised as training did: with the
// checkpoint's values.
std::vector<float> all_logits(Model& model, const Dataset& data) {
  std::vector<float> logits;
  logits.reserve(std::size_t(data.count) * std::size_t(model.network().classes()));
  for (int first = 0; first < data.count; first += model.options().batch_size) {
    const int n = std::min(model.options().batch_size, data.count - first);
    const std::vector<float> batch = normalized_samples(data, first, n, model.normalization());
    const std::vector<float> scores = model.logits(batch.data(), n);
    logits.insert(logits.end(), scores.begin(), scores.end());
  }
  return logits;
}

// predict IMAGE...: each file classified; the top K classes by softmax probability.
void predict_files(Model& model, const PredictArgs& a) {
  const int classes = model.network().classes();
  const int top = std::min(a.top, classes);
  const std::vector<std::string>& names = model.class_names();
  auto name = [&](int c) { return names.empty() ? std::to_string(c) : names[std::size_t(c)]; };
  const std::vector<float> logits = all_logits(model, load_image_files(model, a.images));
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < a.images.size(); ++i) {
    const float* z = logits.data() + i * std::size_t(classes);
    const double peak = *std::max_element(z, z + classes);
    std::vector<double> p(static_cast<std::size_t>(classes));
    double sum = 0;
    for (int c = 0; c < classes; ++c) sum += p[std::size_t(c)] = std::exp(double(z[c]) - peak);
    std::vector<int> order(static_cast<std::size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int x, int y) { return p[std::size_t(x)] > p[std::size_t(y)]; });
    const std::string& path = a.images[i];
    std::string line = path + ":";
    nlohmann::json ranked = nlohmann::json::array();
    for (int k = 0; k < top; ++k) {
      const int c = order[std::size_t(k)];
      const double probability = p[std::size_t(c)] / sum;
      line += fmt::format("{} {} ({:.4f})", k == 0 ? "" : ",", name(c), probability);
      ranked.push_back({{"class", name(c)}, {"index", c}, {"probability", probability}});
    }
    if (a.json)
      out.push_back({{"path", path}, {"top", ranked}});
    else
      fmt::print("{}\n", line);
  }
  if (a.json) fmt::print("{}\n", out.dump(2));
}

}  // namespace

void add_predict_command(CLI::App& app) {
  auto args = std::make_shared<PredictArgs>();
  PredictArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "predict",
      "Classify image files (one line per image: path: class (probability), next best, ...), or "
      "with --out write the test set's logits ([N, classes] F32) and labels ([N] I64) as "
      "safetensors (with image files: their logits, in the order given)");
  add_weights_option(cmd, a.weights);
  cmd->add_option("images", a.images,
                  "Image files (PNG, JPEG, BMP), fitted to the model's input as training fits "
                  "folder images");
  cmd->add_option("--out", a.out,
                  "Write the logits of the test set (or of the image files given) here "
                  "(safetensors)");
  cmd->add_option("--top", a.top, "Image files: how many classes to show per image")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_flag("--json", a.json,
                "Image files: print a JSON list of {path, top: [{class, index, probability}]}");
  add_model_option(cmd, a.model,
                   "Preset name or JSON file (default: the model the checkpoint describes, else "
                   "lenet5)");
  add_data_option(cmd, a.data);
  add_device_option(cmd, a.device);
  cmd->add_option("--batch", a.batch, "Batch size")
      ->check(positive_number())
      ->capture_default_str();
  add_test_limit_option(cmd, a.test_limit);
  cmd->callback([args, cmd] {
    const PredictArgs& a = *args;
    if (a.images.empty() && a.out.empty())
      throw ExitCode(
          "predict needs image files to classify, or --out FILE for the test set's logits", 2);
    const Network network = network_for_weights(*cmd, a.model, a.weights);
    CompileOptions options;
    options.device = resolve_device(a.device);
    options.batch_size = a.images.empty() ? a.batch : std::min<int>(a.batch, int(a.images.size()));
    Model model(network, options);
    load_checkpoint(a.weights, model, false);
    if (!a.images.empty() && a.out.empty()) return predict_files(model, a);
    const Dataset data = a.images.empty() ? load_split(a.data, false, a.test_limit, network)
                                          : load_image_files(model, a.images);
    const std::vector<float> logits = all_logits(model, data);
    const int classes = network.classes();
    SafeTensors file;
    file.add_f32("logits", {data.count, classes}, logits.data());
    if (a.images.empty()) {
      const std::vector<std::int64_t> labels(data.labels.begin(), data.labels.end());
      file.add_i64("labels", {data.count}, labels.data());
    } else {
      file.metadata["images"] = nlohmann::json(a.images).dump();
    }
    file.metadata["model"] = network.name();
    file.metadata["weights"] = a.weights;
    file.metadata["device"] = to_string(options.device);
    file.metadata["normalization"] =
        fmt::format("(x / 255 - [{}]) / [{}]", model.normalization().mean_text(),
                    model.normalization().std_text());
    file.save(a.out);
    fmt::print("wrote logits of {} {} ({} classes) to {}\n", data.count,
               a.images.empty() ? "test images" : "image files", classes, a.out);
  });
}

}  // namespace cnnrt::cli
