// Training recipes (include/cnnrt/recipe.hpp): parsing, checks, override precedence, applying to
// TrainOptions, and the shipped lenet5-classic recipe.
#include "cnnrt/recipe.hpp"

#include <gtest/gtest.h>

#include <string>

#include "cnnrt/error.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

std::string model_with(const std::string& recipe) {
  return R"({"name": "m", "input": [1, 28, 28], "classes": 10,
             "layers": [{"type": "dense", "units": 10}], "recipe": )" +
         recipe + "}";
}

TEST(Recipe, ParsesEveryKey) {
  const TrainRecipe r = recipe_from_json(
      model_with(R"({"optimizer": "adamw", "lr": 0.002, "momentum": 0.8, "weight_decay": 0.05,
                     "betas": [0.85, 0.98], "eps": 1e-6, "no_decay_norm_bias": true,
                     "schedule": "onecycle:0.25", "warmup": 1.5, "label_smoothing": 0.1,
                     "epochs": 12, "batch": 128, "augment": "flip,crop:2"})"),
      "m.json");
  EXPECT_EQ(r.optimizer.value(), "adamw");
  EXPECT_EQ(r.lr.value(), 0.002f);
  EXPECT_EQ(r.momentum.value(), 0.8f);
  EXPECT_EQ(r.weight_decay.value(), 0.05f);
  EXPECT_EQ(r.beta1.value(), 0.85f);
  EXPECT_EQ(r.beta2.value(), 0.98f);
  EXPECT_EQ(r.eps.value(), 1e-6f);
  EXPECT_TRUE(r.no_decay_norm_bias.value());
  EXPECT_EQ(r.schedule.value(), "onecycle:0.25");
  EXPECT_EQ(r.warmup.value(), 1.5f);
  EXPECT_EQ(r.label_smoothing.value(), 0.1f);
  EXPECT_EQ(r.epochs.value(), 12);
  EXPECT_EQ(r.batch.value(), 128);
  EXPECT_EQ(r.augment.value(), "flip,crop:2");

  TrainOptions o;
  r.apply(o);
  EXPECT_EQ(o.optimizer.kind, OptimizerKind::adamw);
  EXPECT_EQ(o.optimizer.lr, 0.002f);
  EXPECT_FALSE(o.optimizer.decay_norm_bias);
  EXPECT_EQ(o.schedule.kind, LrSchedule::Kind::onecycle);
  EXPECT_EQ(o.schedule.pct_start, 0.25f);
  EXPECT_EQ(o.schedule.warmup_epochs, 1.5f);
  EXPECT_EQ(o.label_smoothing, 0.1f);
  EXPECT_EQ(o.epochs, 12);
  EXPECT_EQ(o.augment, "flip,crop:2");
}

TEST(Recipe, NoRecipeIsEmptyAndChangesNothing) {
  const TrainRecipe r = recipe_from_json(
      R"({"name": "m", "input": [1, 28, 28], "classes": 10, "layers": []})", "m.json");
  EXPECT_FALSE(r.optimizer || r.lr || r.epochs || r.batch || r.augment);
  TrainOptions o;
  r.apply(o);
  EXPECT_EQ(o.optimizer.lr, TrainOptions{}.optimizer.lr);
  EXPECT_EQ(o.schedule.kind, LrSchedule::Kind::cosine);
  EXPECT_EQ(o.epochs, 10);
}

TEST(Recipe, FlagsOverrideOnlyWhatTheySet) {
  const TrainRecipe preset = recipe_from_json(
      model_with(R"({"optimizer": "adam", "lr": 0.002, "epochs": 12, "warmup": 1})"), "m.json");
  TrainRecipe flags;
  flags.lr = 0.01f;
  flags.batch = 32;
  const TrainRecipe merged = preset.overridden_by(flags);
  EXPECT_EQ(merged.optimizer.value(), "adam");  // the preset's
  EXPECT_EQ(merged.epochs.value(), 12);
  EXPECT_EQ(merged.warmup.value(), 1.0f);
  EXPECT_EQ(merged.lr.value(), 0.01f);  // the flag's
  EXPECT_EQ(merged.batch.value(), 32);
  // A schedule given over a preset's warm-up keeps the warm-up.
  TrainRecipe schedule;
  schedule.schedule = "linear";
  TrainOptions o;
  preset.overridden_by(schedule).apply(o);
  EXPECT_EQ(o.schedule.kind, LrSchedule::Kind::linear);
  EXPECT_EQ(o.schedule.warmup_epochs, 1.0f);
}

TEST(Recipe, BadValuesNameTheKey) {
  const struct {
    const char* recipe;
    const char* named;
  } cases[] = {
      {R"({"optimizer": "lion"})", "unknown optimizer 'lion'"},
      {R"({"schedule": "cosin"})", "recipe 'schedule'"},
      {R"({"lr": -1})", "recipe 'lr' must be positive"},
      {R"({"lr": "fast"})", "recipe 'lr' must be a number"},
      {R"({"eps": 0})", "recipe 'eps' must be positive"},
      {R"({"betas": [0.9, 1.0]})", "recipe 'betas'"},
      {R"({"betas": 0.9})", "recipe 'betas'"},
      {R"({"momentum": 2})", "recipe 'momentum'"},
      {R"({"label_smoothing": 1})", "recipe 'label_smoothing'"},
      {R"({"epochs": 2.5})", "recipe 'epochs'"},
      {R"({"batch": 0})", "recipe 'batch'"},
      {R"({"no_decay_norm_bias": 1})", "recipe 'no_decay_norm_bias'"},
      {R"({"augmentation": "flip"})", "unknown recipe key 'augmentation'"},
      {R"([1])", "'recipe' must be an object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.recipe);
    test::expect_error([&] { recipe_from_json(model_with(c.recipe), "m.json"); },
                       {"m.json", c.named});
  }
}

TEST(Recipe, Lenet5ClassicCarriesItsRecipe) {
  const TrainRecipe r = load_recipe("lenet5-classic");
  ASSERT_TRUE(r.optimizer && r.lr && r.epochs);
  EXPECT_EQ(r.epochs.value(), 10);
  const TrainRecipe plain = load_recipe("lenet5");
  EXPECT_FALSE(plain.optimizer || plain.lr || plain.epochs);
}

}  // namespace
}  // namespace cnnrt
