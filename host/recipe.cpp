// Training recipes in model files (include/cnnrt/recipe.hpp).
#include "cnnrt/recipe.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cnnrt/error.hpp"
#include "host/layer.hpp"

namespace cnnrt {

namespace {

using json = nlohmann::json;

template <typename T>
void take(std::optional<T>& field, const std::optional<T>& over) {
  if (over) field = over;
}

float number(const json& value, const std::string& where, const char* key) {
  if (!value.is_number())
    throw Error(fmt::format("{}: recipe '{}' must be a number, got {}", where, key, value.dump()));
  return value.get<float>();
}

// Throws naming the recipe key when `ok` is false.
void require(bool ok, const std::string& where, const char* key, const std::string& what,
             const json& value) {
  if (!ok)
    throw Error(fmt::format("{}: recipe '{}' must be {}, got {}", where, key, what, value.dump()));
}

}  // namespace

TrainRecipe TrainRecipe::overridden_by(const TrainRecipe& over) const {
  TrainRecipe r = *this;
  take(r.optimizer, over.optimizer);
  take(r.schedule, over.schedule);
  take(r.augment, over.augment);
  take(r.lr, over.lr);
  take(r.momentum, over.momentum);
  take(r.weight_decay, over.weight_decay);
  take(r.beta1, over.beta1);
  take(r.beta2, over.beta2);
  take(r.eps, over.eps);
  take(r.warmup, over.warmup);
  take(r.label_smoothing, over.label_smoothing);
  take(r.epochs, over.epochs);
  take(r.batch, over.batch);
  take(r.no_decay_norm_bias, over.no_decay_norm_bias);
  return r;
}

void TrainRecipe::apply(TrainOptions& options) const {
  OptimizerParams& o = options.optimizer;
  if (optimizer) o.kind = parse_optimizer(*optimizer);
  if (lr) o.lr = *lr;
  if (momentum) o.momentum = *momentum;
  if (weight_decay) o.weight_decay = *weight_decay;
  if (beta1) o.beta1 = *beta1;
  if (beta2) o.beta2 = *beta2;
  if (eps) o.eps = *eps;
  if (no_decay_norm_bias) o.decay_norm_bias = !*no_decay_norm_bias;
  o.check();
  if (schedule) {
    const float warm = options.schedule.warmup_epochs;
    options.schedule = LrSchedule::parse(*schedule);
    options.schedule.warmup_epochs = warm;
  }
  if (warmup) {
    if (!(*warmup >= 0.0f))
      throw Error(fmt::format("warm-up epochs must not be negative, got {}", *warmup));
    options.schedule.warmup_epochs = *warmup;
  }
  if (label_smoothing) {
    if (!(*label_smoothing >= 0.0f && *label_smoothing < 1.0f))
      throw Error(fmt::format("label smoothing must be in [0, 1), got {}", *label_smoothing));
    options.label_smoothing = *label_smoothing;
  }
  if (epochs) {
    if (*epochs <= 0) throw Error(fmt::format("epochs must be positive, got {}", *epochs));
    options.epochs = *epochs;
  }
  if (augment) options.augment = *augment;
}

TrainRecipe recipe_from_json(const std::string& json_text, const std::string& origin) {
  json doc;
  try {
    // The model file's own parse: the same nesting limit and the same message as load_network.
    doc = parse_model_json(json_text,
                           fmt::format("{}: the model file nests JSON deeper than", origin));
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  TrainRecipe r;
  if (!doc.is_object() || !doc.contains("recipe")) return r;
  const json& recipe = doc["recipe"];
  if (!recipe.is_object())
    throw Error(fmt::format("{}: 'recipe' must be an object, got {}", origin, recipe.dump()));
  for (auto it = recipe.begin(); it != recipe.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    const char* k = key.c_str();
    if (key == "optimizer" || key == "schedule" || key == "augment") {
      require(v.is_string(), origin, k, "a string", v);
      const std::string text = v.get<std::string>();
      try {
        if (key == "optimizer") parse_optimizer(text);
        if (key == "schedule") LrSchedule::parse(text);
      } catch (const Error& e) {
        throw Error(fmt::format("{}: recipe '{}': {}", origin, key, e.what()));
      }
      (key == "optimizer" ? r.optimizer : key == "schedule" ? r.schedule : r.augment) = text;
    } else if (key == "epochs" || key == "batch") {
      require(v.is_number_integer() && v.get<long long>() > 0 && v.get<long long>() <= 1 << 30,
              origin, k, "a positive whole number", v);
      (key == "epochs" ? r.epochs : r.batch) = v.get<int>();
    } else if (key == "lr") {
      const float x = number(v, origin, k);
      require(x > 0, origin, k, "positive", v);
      r.lr = x;
    } else if (key == "momentum") {
      const float x = number(v, origin, k);
      require(x >= 0 && x <= 1, origin, k, "in [0, 1]", v);
      r.momentum = x;
    } else if (key == "weight_decay" || key == "warmup") {
      const float x = number(v, origin, k);
      require(x >= 0, origin, k, "zero or more", v);
      (key == "weight_decay" ? r.weight_decay : r.warmup) = x;
    } else if (key == "label_smoothing") {
      const float x = number(v, origin, k);
      require(x >= 0 && x < 1, origin, k, "in [0, 1)", v);
      r.label_smoothing = x;
    } else if (key == "eps") {
      const float x = number(v, origin, k);
      require(x > 0, origin, k, "positive", v);
      r.eps = x;
    } else if (key == "betas") {
      require(v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number(), origin, k,
              "[B1, B2]", v);
      const float b1 = v[0].get<float>(), b2 = v[1].get<float>();
      require(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1, origin, k, "two numbers in [0, 1)", v);
      r.beta1 = b1;
      r.beta2 = b2;
    } else if (key == "no_decay_norm_bias") {
      require(v.is_boolean(), origin, k, "true or false", v);
      r.no_decay_norm_bias = v.get<bool>();
    } else {
      throw Error(fmt::format(
          "{}: unknown recipe key '{}' (optimizer, lr, momentum, weight_decay, betas, eps, "
          "no_decay_norm_bias, schedule, warmup, label_smoothing, epochs, batch, augment)",
          origin, key));
    }
  }
  return r;
}

}  // namespace cnnrt
