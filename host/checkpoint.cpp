#include "cnnrt/checkpoint.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "cnnrt/error.hpp"
#include "cnnrt/safetensors.hpp"

namespace cnnrt {

namespace {
constexpr const char* kFormat = "cnnrt-checkpoint-1";
constexpr const char* kStepsDone = "epoch_steps_done";
constexpr const char* kLossSum = "epoch_loss_sum";
constexpr const char* kCorrect = "epoch_correct";
constexpr const char* kSamples = "epoch_samples";
std::string momentum_name(const std::string& name) {
  return name + ".momentum";
}
}  // namespace

void save_checkpoint(const std::string& path, const Model& model, int epochs_done,
                     const EpochPosition& within_epoch) {
  SafeTensors file;
  for (const ParameterInfo& p : model.parameters()) {
    const std::vector<float> values = model.parameter(p.name);
    file.add_f32(p.name, p.shape, values.data());
    const std::vector<float> momentum = model.momentum(p.name);
    file.add_f32(momentum_name(p.name), p.shape, momentum.data());
  }
  file.metadata["format"] = kFormat;
  file.metadata["model"] = network_to_json(model.network());
  file.metadata["epochs_done"] = std::to_string(epochs_done);
  file.metadata["step_counter"] = std::to_string(model.step_counter());
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

CheckpointState load_checkpoint(const std::string& path, Model& model) {
  const SafeTensors file = SafeTensors::load(path);
  CheckpointState state;
  for (const ParameterInfo& p : model.parameters()) {
    if (!file.contains(p.name))
      throw Error(fmt::format("{}: no tensor '{}' (is it a checkpoint of {}?)", path, p.name,
                              model.network().name()));
    const TensorData& t = file.get(p.name);
    if (t.shape != p.shape)
      throw Error(fmt::format("{}: tensor '{}' has shape [{}], the model needs [{}]", path, p.name,
                              fmt::join(t.shape, ", "), fmt::join(p.shape, ", ")));
    if (t.dtype != "F32")
      throw Error(fmt::format("{}: tensor '{}' is {}, expected F32", path, p.name, t.dtype));
    // Momentum is checked here too, so that a bad file loads nothing rather than half.
    const std::string m = momentum_name(p.name);
    if (file.contains(m)) {
      const TensorData& v = file.get(m);
      if (v.shape != p.shape || v.dtype != "F32")
        throw Error(fmt::format("{}: tensor '{}' is {} [{}], the model needs F32 [{}]", path, m,
                                v.dtype, fmt::join(v.shape, ", "), fmt::join(p.shape, ", ")));
    }
  }
  auto number = [&](const char* key) -> std::uint64_t {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end()) return 0;
    try {
      return std::stoull(it->second);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: metadata '{}' is not a number: '{}'", path, key, it->second));
    }
  };
  state.epochs_done = static_cast<int>(number("epochs_done"));
  state.step_counter = number("step_counter");
  EpochPosition& position = state.within_epoch;
  position.steps_done = static_cast<int>(number(kStepsDone));
  if (position.steps_done > 0) {
    const auto it = file.metadata.find(kLossSum);
    const std::string text = it == file.metadata.end() ? std::string() : it->second;
    char* end = nullptr;
    position.stats.loss_sum = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(position.stats.loss_sum))
      throw Error(
          fmt::format("{}: metadata '{}' is not a finite number: '{}'", path, kLossSum, text));
    position.stats.correct = static_cast<std::int64_t>(number(kCorrect));
    position.stats.samples = static_cast<std::int64_t>(number(kSamples));
  }
  for (const ParameterInfo& p : model.parameters()) {
    model.set_parameter(p.name, file.get(p.name).as_floats());
    const std::string m = momentum_name(p.name);
    if (file.contains(m)) {
      model.set_momentum(p.name, file.get(m).as_floats());
      state.has_momentum = true;
    }
  }
  model.set_step_counter(state.step_counter);
  return state;
}

}  // namespace cnnrt
