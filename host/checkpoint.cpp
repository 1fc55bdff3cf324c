#include "cnnrt/checkpoint.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/safetensors.hpp"

namespace cnnrt {

namespace {
constexpr const char* kFormat = "cnnrt-checkpoint-1";
constexpr const char* kWeightsFormat = "cnnrt-weights-1";
constexpr const char* kStepsDone = "epoch_steps_done";
constexpr const char* kLossSum = "epoch_loss_sum";
constexpr const char* kCorrect = "epoch_correct";
constexpr const char* kSamples = "epoch_samples";
constexpr const char* kOptimizer = "optimizer";
constexpr const char* kOptimizerSteps = "optimizer_steps";
constexpr const char* kMean = "normalization_mean";
constexpr const char* kStd = "normalization_std";
constexpr const char* kClassNames = "class_names";
constexpr const char* kInputSize = "input_size";

// The names of a parameter's optimizer state: SGD's momentum buffer, Adam's two moments
// (PyTorch's state names).
std::vector<std::string> state_names(const std::string& name, OptimizerKind kind) {
  if (kind == OptimizerKind::adam || kind == OptimizerKind::adamw)
    return {name + ".exp_avg", name + ".exp_avg_sq"};
  return {name + ".momentum"};
}

// The optimizer whose state the file holds: its metadata, or SGD for a file written before the
// metadata that holds momentum; none for a weights-only file.
std::optional<OptimizerKind> file_optimizer(const SafeTensors& file, const std::string& path,
                                            const Model& model) {
  const auto it = file.metadata.find(kOptimizer);
  if (it != file.metadata.end()) {
    try {
      return parse_optimizer(it->second);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: metadata '{}': {}", path, kOptimizer, e.what()));
    }
  }
  for (const ParameterInfo& p : model.parameters())
    if (file.contains(state_names(p.name, OptimizerKind::sgd)[0])) return OptimizerKind::sgd;
  return std::nullopt;
}

// Metadata `key` as a decimal number in [0, max]; 0 when absent.
std::uint64_t metadata_number(const SafeTensors& file, const std::string& path, const char* key,
                              std::uint64_t max) {
  const auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return 0;
  const std::string& text = it->second;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value > max)
    throw Error(fmt::format("{}: metadata '{}' is '{}', expected a whole number from 0 to {}", path,
                            key, text, max));
  return value;
}

// The normalisation and class names the file records, checked against the model; the IDX
// default and no names for a file written before they were recorded.
void read_data_metadata(const SafeTensors& file, const std::string& path, const Model& model,
                        Normalization* norm, std::vector<std::string>* names) {
  const SampleShape in = model.network().input();
  const auto meta = [&](const char* key) -> const std::string* {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? nullptr : &it->second;
  };
  if (const std::string* size = meta(kInputSize)) {
    const std::string expected = fmt::format("{}x{}x{}", in.c, in.h, in.w);
    if (*size != expected)
      throw Error(fmt::format("{}: metadata '{}' is '{}', but {} takes {} input", path, kInputSize,
                              *size, model.network().name(), expected));
  }
  *norm = Normalization{};
  const std::string* mean = meta(kMean);
  const std::string* std_dev = meta(kStd);
  if ((mean == nullptr) != (std_dev == nullptr))
    throw Error(fmt::format("{}: metadata has '{}' without '{}'", path, mean ? kMean : kStd,
                            mean ? kStd : kMean));
  try {
    if (mean != nullptr) {
      norm->mean = parse_float_list(*mean, kMean);
      norm->std = parse_float_list(*std_dev, kStd);
    }
    norm->check(in.c);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: metadata: {}", path, e.what()));
  }
  names->clear();
  if (const std::string* text = meta(kClassNames)) {
    const nlohmann::json list = nlohmann::json::parse(*text, nullptr, false);
    bool ok = list.is_array() && int(list.size()) == model.network().classes();
    for (std::size_t i = 0; ok && i < list.size(); ++i) ok = list[i].is_string();
    if (!ok)
      throw Error(fmt::format("{}: metadata '{}' is not a JSON list of {} names", path, kClassNames,
                              model.network().classes()));
    for (const nlohmann::json& name : list) names->push_back(name.get<std::string>());
  }
}

// What checkpoints and weights files record about the model and its data.
void add_model_metadata(SafeTensors& file, const Model& model) {
  file.metadata["model"] = network_to_json(model.network());
  const SampleShape in = model.network().input();
  file.metadata[kInputSize] = fmt::format("{}x{}x{}", in.c, in.h, in.w);
  file.metadata[kMean] = model.normalization().mean_text();
  file.metadata[kStd] = model.normalization().std_text();
  if (!model.class_names().empty())
    file.metadata[kClassNames] = nlohmann::json(model.class_names()).dump();
}

// PyTorch's batch norm counts batches in an int64; cnnrt keeps the count as a float.
bool is_batch_counter(const std::string& name) {
  const std::string suffix = ".num_batches_tracked";
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A state tensor's values: F32, or a weights file's I64 batch counter.
std::vector<float> state_values(const TensorData& t) {
  if (t.dtype != "I64") return t.as_floats();
  const std::vector<std::int64_t> counts = t.as_int64s();
  return std::vector<float>(counts.begin(), counts.end());
}

}  // namespace

void save_weights(const std::string& path, const Model& model) {
  SafeTensors file;
  for (const ParameterInfo& p : model.parameters()) {
    const std::vector<float> values = model.parameter(p.name);
    file.add_f32(p.name, p.shape, values.data());
  }
  for (const ParameterInfo& p : model.state_tensors()) {
    const std::vector<float> values = model.state(p.name);
    if (is_batch_counter(p.name)) {
      const std::vector<std::int64_t> counts(values.begin(), values.end());
      file.add_i64(p.name, p.shape, counts.data());
    } else {
      file.add_f32(p.name, p.shape, values.data());
    }
  }
  file.metadata["format"] = kWeightsFormat;
  add_model_metadata(file, model);
  file.save(path);
}

void save_checkpoint(const std::string& path, const Model& model, int epochs_done,
                     const EpochPosition& within_epoch) {
  SafeTensors file;
  const OptimizerKind kind = model.optimizer().kind;
  for (const ParameterInfo& p : model.parameters()) {
    const std::vector<float> values = model.parameter(p.name);
    file.add_f32(p.name, p.shape, values.data());
    const std::vector<std::string> names = state_names(p.name, kind);
    const std::vector<float> first = model.momentum(p.name);
    file.add_f32(names[0], p.shape, first.data());
    if (names.size() > 1) {
      const std::vector<float> second = model.second_moment(p.name);
      file.add_f32(names[1], p.shape, second.data());
    }
  }
  for (const ParameterInfo& p : model.state_tensors()) {
    const std::vector<float> values = model.state(p.name);
    file.add_f32(p.name, p.shape, values.data());
  }
  file.metadata["format"] = kFormat;
  add_model_metadata(file, model);
  file.metadata["epochs_done"] = std::to_string(epochs_done);
  file.metadata["step_counter"] = std::to_string(model.step_counter());
  file.metadata[kOptimizer] = to_string(kind);
  file.metadata[kOptimizerSteps] = std::to_string(model.optimizer_steps());
  if (within_epoch.steps_done > 0) {
    const BatchStats& s = within_epoch.stats;
    file.metadata[kStepsDone] = std::to_string(within_epoch.steps_done);
    // The shortest text that reads back as the same double: the resumed sum continues bit for bit.
    file.metadata[kLossSum] = fmt::format("{}", s.loss_sum);
    file.metadata[kCorrect] = std::to_string(s.correct);
    file.metadata[kSamples] = std::to_string(s.samples);
  }
  file.save(path);
}

CheckpointState load_checkpoint(const std::string& path, Model& model, bool with_optimizer_state) {
  const SafeTensors file = SafeTensors::load(path);
  CheckpointState state;
  const std::optional<OptimizerKind> kind = file_optimizer(file, path, model);
  // Partial state would resume as something no uninterrupted run computed: all or nothing.
  bool has_state = false;
  std::set<std::string> known;
  for (const ParameterInfo& p : model.parameters())
    if (kind)
      for (const std::string& name : state_names(p.name, *kind)) {
        known.insert(name);
        has_state = has_state || file.contains(name);
      }
  if (has_state) state.optimizer = to_string(*kind);
  if (has_state && with_optimizer_state && *kind != model.optimizer().kind)
    throw Error(fmt::format(
        "{} holds the state of the {} optimizer, but this run uses {}: continue it with {}, or "
        "train {} from the start",
        path, to_string(*kind), to_string(model.optimizer().kind), to_string(*kind),
        to_string(model.optimizer().kind)));
  for (const ParameterInfo& p : model.parameters()) {
    known.insert(p.name);
    if (!file.contains(p.name))
      throw Error(fmt::format("{}: no tensor '{}' (is it a checkpoint of {}?)", path, p.name,
                              model.network().name()));
    const TensorData& t = file.get(p.name);
    if (t.shape != p.shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], the model needs [{}]", path, p.name,
                              fmt::join(t.shape, ", "), fmt::join(p.shape, ", ")));
    if (t.dtype != "F32")
      throw Error(fmt::format("{}: tensor '{}' is {}, expected F32", path, p.name, t.dtype));
  }
  // The optimizer's state is checked here too, so that a bad file loads nothing rather than half.
  if (has_state)
    for (const ParameterInfo& p : model.parameters())
      for (const std::string& m : state_names(p.name, *kind)) {
        if (!file.contains(m))
          throw Error(fmt::format("{}: no tensor '{}' (the {} state of {} is incomplete)", path, m,
                                  to_string(*kind), p.name));
        const TensorData& v = file.get(m);
        if (v.shape != p.shape || v.dtype != "F32")
          throw Error(fmt::format("{}: tensor '{}' is {} [{}], the model needs F32 [{}]", path, m,
                                  v.dtype, fmt::join(v.shape, ", "), fmt::join(p.shape, ", ")));
      }
  for (const ParameterInfo& p : model.state_tensors()) {
    known.insert(p.name);
    if (!file.contains(p.name))
      throw Error(fmt::format("{}: no tensor '{}' (is it a checkpoint of {}?)", path, p.name,
                              model.network().name()));
    const TensorData& t = file.get(p.name);
    const bool counter = is_batch_counter(p.name) && t.dtype == "I64";  // a weights file's
    if (t.shape != p.shape || (t.dtype != "F32" && !counter))
      throw Error(fmt::format("{}: tensor '{}' is {} [{}], the model needs F32 [{}]", path, p.name,
                              t.dtype, fmt::join(t.shape, ", "), fmt::join(p.shape, ", ")));
    try {
      model.check_state(p.name, state_values(t));  // a negative running variance, say
    } catch (const Error& e) {
      throw Error(fmt::format("{}: tensor {}", path, e.what()));
    }
  }
  // Anything else in the file belongs to another model (or was added by hand): refusing it keeps
  // a checkpoint of a different network from loading as if it fitted.
  std::vector<std::string> unknown;
  for (const std::string& name : file.names())
    if (known.count(name) == 0) unknown.push_back(name);
  if (!unknown.empty())
    throw Error(fmt::format("{}: {} tensor{} not in {}: {} (is it a checkpoint of another model?)",
                            path, unknown.size(), unknown.size() == 1 ? " is" : "s are",
                            model.network().name(), fmt::join(unknown, ", ")));
  state.epochs_done =
      static_cast<int>(metadata_number(file, path, "epochs_done", std::numeric_limits<int>::max()));
  state.step_counter =
      metadata_number(file, path, "step_counter", std::numeric_limits<std::uint64_t>::max());
  // Files written before the metadata took one update per step counted.
  state.optimizer_steps =
      file.metadata.count(kOptimizerSteps) != 0
          ? metadata_number(file, path, kOptimizerSteps, std::numeric_limits<std::uint64_t>::max())
          : state.step_counter;
  EpochPosition& position = state.within_epoch;
  position.steps_done =
      static_cast<int>(metadata_number(file, path, kStepsDone, std::numeric_limits<int>::max()));
  if (position.steps_done > 0) {
    const auto it = file.metadata.find(kLossSum);
    const std::string text = it == file.metadata.end() ? std::string() : it->second;
    char* end = nullptr;
    position.stats.loss_sum = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(position.stats.loss_sum))
      throw Error(
          fmt::format("{}: metadata '{}' is not a finite number: '{}'", path, kLossSum, text));
    constexpr auto kMaxCount = std::uint64_t(std::numeric_limits<std::int64_t>::max());
    position.stats.correct =
        static_cast<std::int64_t>(metadata_number(file, path, kCorrect, kMaxCount));
    position.stats.samples =
        static_cast<std::int64_t>(metadata_number(file, path, kSamples, kMaxCount));
  }
  Normalization norm;
  std::vector<std::string> names;
  read_data_metadata(file, path, model, &norm, &names);
  for (const ParameterInfo& p : model.parameters()) {
    model.set_parameter(p.name, file.get(p.name).as_floats());
    if (!has_state || !with_optimizer_state) continue;
    const std::vector<std::string> names = state_names(p.name, *kind);
    model.set_momentum(p.name, file.get(names[0]).as_floats());
    if (names.size() > 1) model.set_second_moment(p.name, file.get(names[1]).as_floats());
  }
  state.has_momentum = has_state && with_optimizer_state;
  if (state.has_momentum) model.set_optimizer_steps(state.optimizer_steps);
  for (const ParameterInfo& p : model.state_tensors())
    model.set_state(p.name, state_values(file.get(p.name)));
  model.set_step_counter(state.step_counter);
  model.set_normalization(norm);
  model.set_class_names(names);
  return state;
}

}  // namespace cnnrt
