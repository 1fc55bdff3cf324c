#pragma once
// A training recipe: the settings a preset or model file names in its "recipe" object, so that it
// trains well with no other flags. Every field is optional; a field the recipe leaves out keeps
// the default (or whatever is applied under it).
//
//   "recipe": {"optimizer": "adam", "lr": 0.002, "momentum": 0.9, "weight_decay": 0,
//              "betas": [0.9, 0.999], "eps": 1e-8, "no_decay_norm_bias": true,
//              "schedule": "cosine", "warmup": 1, "label_smoothing": 0.1,
//              "epochs": 10, "batch": 64, "augment": "flip"}
//
// "augment" is passed through as written (TrainOptions::augment).
#include <optional>
#include <string>

#include "cnnrt/export.hpp"
#include "cnnrt/trainer.hpp"

namespace cnnrt {

struct CNNRT_API TrainRecipe {
  std::optional<std::string> optimizer, schedule, augment;
  std::optional<float> lr, momentum, weight_decay, beta1, beta2, eps, warmup, label_smoothing;
  std::optional<int> epochs, batch;
  std::optional<bool> no_decay_norm_bias;

  // This recipe with every field that `over` sets taken from `over` (command-line flags over a
  // preset's recipe).
  TrainRecipe overridden_by(const TrainRecipe& over) const;
  // Sets the fields of `options` this recipe names (all but batch, which belongs to
  // CompileOptions). Throws cnnrt::Error when the result is out of range.
  void apply(TrainOptions& options) const;
};

// The "recipe" object of a model file's JSON text (empty when it has none); `origin` names the
// file in errors. Unknown keys, wrong types and values out of range are errors.
CNNRT_API TrainRecipe recipe_from_json(const std::string& json_text, const std::string& origin);
// The recipe of a preset (by name) or a model file (a path), found as load_network finds it.
CNNRT_API TrainRecipe load_recipe(const std::string& name_or_path);

}  // namespace cnnrt
