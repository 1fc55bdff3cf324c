// Checkpoints: save and load round trips (weights, momentum, step counter, epochs), the file read
// back as plain safetensors with PyTorch's names and shapes, refusals of other architectures and
// of broken files that leave the model untouched, the write-then-rename save, and resuming a
// CPU training run from a checkpoint, bit-identical to the uninterrupted run.
#include "cnnrt/checkpoint.hpp"

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "cnnrt/trainer.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public test::ScratchDirTest {
 protected:
  CheckpointTest() : ScratchDirTest("ckpt_test") {}
};

struct Snapshot {
  std::vector<std::vector<float>> params, momentum;
  std::uint64_t steps = 0;
};

Snapshot snapshot(const Model& model) {
  Snapshot s;
  for (const ParameterInfo& p : model.parameters()) {
    s.params.push_back(model.parameter(p.name));
    s.momentum.push_back(model.momentum(p.name));
  }
  s.steps = model.step_counter();
  return s;
}

void expect_identical(const Snapshot& a, const Snapshot& b, const Model& model) {
  ASSERT_EQ(a.params.size(), b.params.size());
  for (std::size_t t = 0; t < a.params.size(); ++t) {
    const std::string& name = model.parameters()[t].name;
    EXPECT_EQ(a.params[t], b.params[t]) << name;  // bit-identical
    EXPECT_EQ(a.momentum[t], b.momentum[t]) << name << ".momentum";
  }
  EXPECT_EQ(a.steps, b.steps);
}

TEST_F(CheckpointTest, RoundTripRestoresWeightsMomentumAndProgress) {
  const Network network = load_network("lenet5");
  Model trained(network, test::cpu_options(4, 1));
  test::train_a_little(trained, 3);
  const Snapshot before = snapshot(trained);
  ASSERT_EQ(before.steps, 3u);
  ASSERT_TRUE(test::any_nonzero(before.momentum[0]));
  save_checkpoint(path("a.safetensors"), trained, 7);

  // Other seed and batch: nothing shared but the file.
  Model fresh(network, test::cpu_options(8, 2));
  ASSERT_NE(fresh.parameter("conv1.weight"), before.params[0]);
  const CheckpointState state = load_checkpoint(path("a.safetensors"), fresh);
  EXPECT_EQ(state.epochs_done, 7);
  EXPECT_EQ(state.step_counter, 3u);
  EXPECT_TRUE(state.has_momentum);
  expect_identical(before, snapshot(fresh), fresh);
  EXPECT_FALSE(fs::exists(path("a.safetensors.tmp")));
}

// Adam's two moments and its step count, under PyTorch's state names, with the optimizer named in
// the metadata.
TEST_F(CheckpointTest, RoundTripRestoresAdamState) {
  const Network network = load_network("lenet5");
  OptimizerParams adam{1e-3f, 0.0f, 1e-4f};
  adam.kind = OptimizerKind::adam;
  Model trained(network, test::cpu_options(4, 1));
  trained.set_optimizer(adam);
  const int n = 4;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> images = test::random_vector<float>(std::size_t(n) * 784, 300 + step);
    const std::vector<std::int32_t> labels = {0, 3, 5, 9};
    trained.train_step(images.data(), labels.data(), n);
  }
  ASSERT_EQ(trained.optimizer_steps(), 3u);
  ASSERT_TRUE(test::any_nonzero(trained.second_moment("fc3.weight")));
  save_checkpoint(path("adam.safetensors"), trained, 1);

  const SafeTensors file = SafeTensors::load(path("adam.safetensors"));
  EXPECT_EQ(file.metadata.at("optimizer"), "adam");
  EXPECT_EQ(file.metadata.at("optimizer_steps"), "3");
  EXPECT_TRUE(file.contains("fc3.weight.exp_avg"));
  EXPECT_TRUE(file.contains("fc3.weight.exp_avg_sq"));
  EXPECT_FALSE(file.contains("fc3.weight.momentum"));
  EXPECT_EQ(file.get("conv1.bias.exp_avg_sq").as_floats(), trained.second_moment("conv1.bias"));

  Model fresh(network, test::cpu_options(8, 2));
  fresh.set_optimizer(adam);
  const CheckpointState state = load_checkpoint(path("adam.safetensors"), fresh);
  EXPECT_EQ(state.optimizer, "adam");
  EXPECT_TRUE(state.has_momentum);
  EXPECT_EQ(fresh.optimizer_steps(), 3u);
  for (const ParameterInfo& p : trained.parameters()) {
    EXPECT_EQ(fresh.parameter(p.name), trained.parameter(p.name)) << p.name;
    EXPECT_EQ(fresh.momentum(p.name), trained.momentum(p.name)) << p.name;
    EXPECT_EQ(fresh.second_moment(p.name), trained.second_moment(p.name)) << p.name;
  }
  // Into an SGD model: an error naming both optimizers; weights alone load.
  Model sgd(network, test::cpu_options(8, 2));
  test::expect_error([&] { load_checkpoint(path("adam.safetensors"), sgd); },
                     {"state of the adam optimizer", "this run uses sgd"});
  EXPECT_FALSE(load_checkpoint(path("adam.safetensors"), sgd, false).has_momentum);
  EXPECT_EQ(sgd.parameter("fc3.weight"), trained.parameter("fc3.weight"));
}

TEST_F(CheckpointTest, FileHasPyTorchNamesAndShapes) {
  const Network network = load_network("lenet5");
  Model model(network, test::cpu_options(2, 3));
  test::train_a_little(model, 1);
  save_checkpoint(path("b.safetensors"), model, 1);

  const SafeTensors file = SafeTensors::load(path("b.safetensors"));
  const std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected = {
      {"conv1.weight", {6, 1, 5, 5}},  {"conv1.bias", {6}},
      {"conv2.weight", {16, 6, 5, 5}}, {"conv2.bias", {16}},
      {"fc1.weight", {120, 400}},      {"fc1.bias", {120}},
      {"fc2.weight", {84, 120}},       {"fc2.bias", {84}},
      {"fc3.weight", {10, 84}},        {"fc3.bias", {10}}};
  EXPECT_EQ(file.size(), 2 * expected.size());  // each parameter and its momentum, nothing else
  for (const auto& [name, shape] : expected) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(file.contains(name));
    ASSERT_TRUE(file.contains(name + ".momentum"));
    EXPECT_EQ(file.get(name).dtype, "F32");
    EXPECT_EQ(file.get(name).shape, shape);
    EXPECT_EQ(file.get(name + ".momentum").shape, shape);
    EXPECT_EQ(file.get(name).as_floats(), model.parameter(name));
    EXPECT_EQ(file.get(name + ".momentum").as_floats(), model.momentum(name));
  }
  EXPECT_EQ(file.metadata.at("epochs_done"), "1");
  EXPECT_EQ(file.metadata.at("step_counter"), "1");
  EXPECT_EQ(file.metadata.at("format"), "cnnrt-checkpoint-1");
  const Network described = network_from_json(file.metadata.at("model"), "metadata");
  EXPECT_EQ(network_to_json(described), network_to_json(network));
}

TEST_F(CheckpointTest, OtherArchitecturesAreRefusedNamingTheTensor) {
  Model lenet(load_network("lenet5"), test::cpu_options(2, 1));
  save_checkpoint(path("lenet.safetensors"), lenet, 1);

  // conv1 with 8 filters: same names, other shapes.
  Network wider(SampleShape{1, 28, 28}, 10, "wider");
  wider.conv2d(8, 5, 1, Padding::same()).relu().max_pool(2, 2);
  wider.conv2d(16, 5).relu().max_pool(2, 2).dense(120).relu().dense(84).relu().dense(10);
  Model wide(wider, test::cpu_options(2, 1));
  const Snapshot before = snapshot(wide);
  const std::string shape_message =
      test::error_message([&] { load_checkpoint(path("lenet.safetensors"), wide); });
  EXPECT_TRUE(test::contains(shape_message, path("lenet.safetensors")));
  EXPECT_TRUE(test::contains(shape_message, "'conv1.weight'"));
  EXPECT_TRUE(test::contains(shape_message, "[6, 1, 5, 5]"));
  EXPECT_TRUE(test::contains(shape_message, "[8, 1, 5, 5]"));
  expect_identical(before, snapshot(wide), wide);  // nothing was loaded

  // One more dense layer: a tensor the file does not have.
  Network deeper(SampleShape{1, 28, 28}, 10, "deeper");
  deeper.conv2d(6, 5, 1, Padding::same()).relu().max_pool(2, 2);
  deeper.conv2d(16, 5).relu().max_pool(2, 2).dense(120).relu().dense(84).relu().dense(10);
  deeper.relu().dense(10);
  Model deep(deeper, test::cpu_options(2, 1));
  const std::string missing_message =
      test::error_message([&] { load_checkpoint(path("lenet.safetensors"), deep); });
  EXPECT_TRUE(test::contains(missing_message, "'fc4.weight'"));
}

TEST_F(CheckpointTest, BadMomentumTensorLoadsNothing) {
  Model source(load_network("lenet5"), test::cpu_options(2, 1));
  test::train_a_little(source, 1);
  save_checkpoint(path("good.safetensors"), source, 1);
  const SafeTensors good = SafeTensors::load(path("good.safetensors"));
  SafeTensors bad;
  bad.metadata = good.metadata;
  for (const std::string& name : good.names()) {
    if (name == "fc3.bias.momentum") {
      const std::vector<float> five(5, 1.0f);
      bad.add_f32(name, {5}, five.data());  // the model's fc3.bias has 10 elements
    } else {
      bad.add(name, good.get(name));
    }
  }
  bad.save(path("bad.safetensors"));

  Model target(load_network("lenet5"), test::cpu_options(2, 2));
  const Snapshot before = snapshot(target);
  const std::string message =
      test::error_message([&] { load_checkpoint(path("bad.safetensors"), target); });
  EXPECT_TRUE(test::contains(message, "'fc3.bias.momentum'"));
  expect_identical(before, snapshot(target), target);  // no weight loaded either
}

// The good checkpoint of `model` with `change` applied to its tensors and metadata, saved as
// `out`.
template <typename Change>
void save_changed(const Model& model, const std::string& scratch, const std::string& out,
                  Change change) {
  save_checkpoint(scratch, model, 1);
  SafeTensors file = SafeTensors::load(scratch);
  change(file);
  file.save(out);
}

TEST_F(CheckpointTest, ExtraTensorsAreRefusedNamingThem) {
  Model source(load_network("lenet5"), test::cpu_options(2, 1));
  const std::vector<float> values(4, 1.0f);
  save_changed(source, path("good.safetensors"), path("extra.safetensors"), [&](SafeTensors& f) {
    f.add_f32("conv9.weight", {2, 2}, values.data());
    f.add_f32("fc1.weight.velocity", {4}, values.data());
  });
  Model target(load_network("lenet5"), test::cpu_options(2, 2));
  const Snapshot before = snapshot(target);
  test::expect_error([&] { load_checkpoint(path("extra.safetensors"), target); },
                     {path("extra.safetensors"), "2 tensors are not in lenet5",
                      "conv9.weight, fc1.weight.velocity"});
  expect_identical(before, snapshot(target), target);
  // Momentum tensors and the metadata are the model's own.
  EXPECT_TRUE(load_checkpoint(path("good.safetensors"), target).has_momentum);
}

TEST_F(CheckpointTest, ProgressMetadataMustBeAWholeNumber) {
  Model source(load_network("lenet5"), test::cpu_options(2, 1));
  struct Case {
    const char* key;
    const char* value;
  };
  for (const Case& c : {Case{"epochs_done", "-1"}, Case{"epochs_done", "3x"},
                        Case{"epochs_done", "2147483648"}, Case{"epochs_done", ""},
                        Case{"step_counter", "18446744073709551616"}, Case{"step_counter", " 5"}}) {
    SCOPED_TRACE(std::string(c.key) + "=" + c.value);
    save_changed(source, path("good.safetensors"), path("meta.safetensors"),
                 [&](SafeTensors& f) { f.metadata[c.key] = c.value; });
    Model target(load_network("lenet5"), test::cpu_options(2, 2));
    test::expect_error([&] { load_checkpoint(path("meta.safetensors"), target); },
                       {path("meta.safetensors"), std::string("metadata '") + c.key + "'",
                        "expected a whole number"});
  }
  save_changed(source, path("good.safetensors"), path("meta.safetensors"), [](SafeTensors& f) {
    f.metadata["epochs_done"] = "2147483647";
    f.metadata["step_counter"] = "18446744073709551615";
  });
  Model target(load_network("lenet5"), test::cpu_options(2, 2));
  const CheckpointState state = load_checkpoint(path("meta.safetensors"), target);
  EXPECT_EQ(state.epochs_done, 2147483647);
  EXPECT_EQ(state.step_counter, 18446744073709551615u);
}

// The data's description travels with the weights: input size, the per-channel normalisation and
// the class names, read back into the model that loads the file.
TEST_F(CheckpointTest, RecordsNormalisationClassNamesAndInputSize) {
  Network network(SampleShape{3, 8, 8}, 3, "rgb");
  network.dense(3);
  Model source(network, test::cpu_options(2, 1));
  const Normalization norm{{0.25f, 0.5f, 0.125f}, {0.2f, 0.3f, 0.4f}};
  source.set_normalization(norm);
  source.set_class_names({"cat", "dog \"fido\"", "émeu"});
  save_checkpoint(path("c.safetensors"), source, 1);

  const SafeTensors file = SafeTensors::load(path("c.safetensors"));
  EXPECT_EQ(file.metadata.at("input_size"), "3x8x8");
  EXPECT_EQ(file.metadata.at("normalization_mean"), "0.25,0.5,0.125");
  EXPECT_EQ(file.metadata.at("normalization_std"), "0.2,0.3,0.4");
  EXPECT_EQ(file.metadata.at("class_names"), R"(["cat","dog \"fido\"","émeu"])");

  Model target(network, test::cpu_options(2, 2));
  load_checkpoint(path("c.safetensors"), target, false);
  EXPECT_EQ(target.normalization().mean, norm.mean);
  EXPECT_EQ(target.normalization().std, norm.std);
  EXPECT_EQ(target.class_names(), (std::vector<std::string>{"cat", "dog \"fido\"", "émeu"}));
}

// A file from before the data's description: the IDX default normalisation, no names.
TEST_F(CheckpointTest, OlderFilesGetTheIdxDefaultNormalisation) {
  Model source(load_network("lenet5"), test::cpu_options(2, 1));
  save_changed(source, path("good.safetensors"), path("old.safetensors"), [](SafeTensors& f) {
    for (const char* key : {"input_size", "normalization_mean", "normalization_std"})
      f.metadata.erase(key);
  });
  Model target(load_network("lenet5"), test::cpu_options(2, 2));
  target.set_normalization(Normalization{{0.1f}, {0.9f}});
  target.set_class_names(std::vector<std::string>(10, "x"));
  load_checkpoint(path("old.safetensors"), target, false);
  EXPECT_EQ(target.normalization().mean, std::vector<float>{0.2860f});
  EXPECT_EQ(target.normalization().std, std::vector<float>{0.3530f});
  EXPECT_TRUE(target.class_names().empty());
}

TEST_F(CheckpointTest, BadDataMetadataLoadsNothing) {
  Model source(load_network("lenet5"), test::cpu_options(2, 1));
  struct Case {
    const char* key;
    const char* value;
    const char* says;
  };
  for (const Case& c : {Case{"input_size", "3x32x32", "takes 1x28x28 input"},
                        Case{"normalization_mean", "0.1,0.2", "2 means and 1 stds"},
                        Case{"normalization_std", "0", "must be positive"},
                        Case{"normalization_std", "x", "is not a number"},
                        Case{"class_names", "[\"a\"]", "JSON list of 10 names"},
                        Case{"class_names", "not json", "JSON list of 10 names"}}) {
    SCOPED_TRACE(std::string(c.key) + "=" + c.value);
    save_changed(source, path("good.safetensors"), path("meta.safetensors"),
                 [&](SafeTensors& f) { f.metadata[c.key] = c.value; });
    Model target(load_network("lenet5"), test::cpu_options(2, 2));
    const Snapshot before = snapshot(target);
    test::expect_error([&] { load_checkpoint(path("meta.safetensors"), target); },
                       {path("meta.safetensors"), c.says});
    expect_identical(before, snapshot(target), target);
  }
}

TEST_F(CheckpointTest, TruncatedFileFailsCleanly) {
  Model model(load_network("lenet5"), test::cpu_options(2, 1));
  save_checkpoint(path("c.safetensors"), model, 1);
  const auto size = fs::file_size(path("c.safetensors"));
  for (const std::uintmax_t keep :
       {std::uintmax_t(0), std::uintmax_t(5), std::uintmax_t(100), size / 2, size - 1}) {
    SCOPED_TRACE(keep);
    fs::copy_file(path("c.safetensors"), path("cut.safetensors"),
                  fs::copy_options::overwrite_existing);
    fs::resize_file(path("cut.safetensors"), keep);
    Model target(load_network("lenet5"), test::cpu_options(2, 9));
    const Snapshot before = snapshot(target);
    const std::string message =
        test::error_message([&] { load_checkpoint(path("cut.safetensors"), target); });
    EXPECT_TRUE(test::contains(message, path("cut.safetensors")));
    expect_identical(before, snapshot(target), target);
  }
  EXPECT_TRUE(test::contains(
      test::error_message([&] { load_checkpoint(path("nonexistent.safetensors"), model); }),
      "nonexistent.safetensors"));
}

TEST_F(CheckpointTest, WeightsOnlyFilesAreAccepted) {
  Model source(load_network("lenet5"), test::cpu_options(2, 4));
  SafeTensors weights;
  for (const ParameterInfo& p : source.parameters()) {
    const std::vector<float> values = source.parameter(p.name);
    weights.add_f32(p.name, p.shape, values.data());
  }
  weights.save(path("weights.safetensors"));
  Model target(load_network("lenet5"), test::cpu_options(2, 5));
  const CheckpointState state = load_checkpoint(path("weights.safetensors"), target);
  EXPECT_FALSE(state.has_momentum);
  EXPECT_EQ(state.epochs_done, 0);
  EXPECT_EQ(state.step_counter, 0u);
  for (const ParameterInfo& p : source.parameters())
    EXPECT_EQ(target.parameter(p.name), source.parameter(p.name)) << p.name;
}

TEST_F(CheckpointTest, FailedSaveKeepsThePreviousFile) {
  Model model(load_network("lenet5"), test::cpu_options(2, 1));
  const std::string target = path("d.safetensors");
  save_checkpoint(target, model, 1);
  const std::vector<float> saved = model.parameter("fc3.weight");

  test::train_a_little(model, 1);
  ASSERT_NE(model.parameter("fc3.weight"), saved);
  fs::create_directory(target + ".tmp");  // the temporary file cannot be created
  const std::string message = test::error_message([&] { save_checkpoint(target, model, 2); });
  EXPECT_TRUE(test::contains(message, target + ".tmp"));

  Model reader(load_network("lenet5"), test::cpu_options(2, 2));
  EXPECT_EQ(load_checkpoint(target, reader).epochs_done, 1);
  EXPECT_EQ(reader.parameter("fc3.weight"), saved);

  EXPECT_THROW(save_checkpoint(path("no/such/dir/e.safetensors"), model, 1), Error);
}

// Training for two epochs, or for one, then a fresh model resumed from the checkpoint for the
// second, gives the same bits: the shuffle order, momentum and dropout masks are all restored.
void expect_resume_is_exact(const Network& network, const std::string& dir) {
  const Dataset train_set = test::synthetic_set(512, 1);
  const Dataset test_set = test::synthetic_set(128, 2);
  TrainOptions options;
  options.epochs = 2;
  options.optimizer = OptimizerParams{0.02f, 0.9f, 1e-4f};
  options.quiet = true;
  const CompileOptions compile = test::cpu_options(64, 5);

  Model straight(network, compile);
  const EpochReport straight_report = train(straight, train_set, test_set, options);

  TrainOptions first_half = options;
  first_half.epochs = 1;
  first_half.checkpoint_path = dir + "/half.safetensors";
  Model first(network, compile);
  train(first, train_set, test_set, first_half);
  EXPECT_EQ(first.step_counter(), 8u);  // 512 / 64

  TrainOptions second_half = options;
  second_half.resume_path = first_half.checkpoint_path;
  std::vector<int> started_at;  // on_start runs once, after the checkpoint is read
  second_half.on_start = [&](int first_epoch) { started_at.push_back(first_epoch); };
  Model resumed(network, compile);
  const EpochReport resumed_report = train(resumed, train_set, test_set, second_half);
  EXPECT_EQ(started_at, std::vector<int>{1});
  EXPECT_EQ(resumed_report.epoch, 2);
  EXPECT_EQ(resumed.step_counter(), 16u);
  expect_identical(snapshot(straight), snapshot(resumed), resumed);
  EXPECT_EQ(straight_report.train.loss_sum, resumed_report.train.loss_sum);
  EXPECT_EQ(straight_report.test.correct, resumed_report.test.correct);
  ASSERT_NE(snapshot(straight).params[0], snapshot(first).params[0]);  // epoch 2 changed things
}

TEST_F(CheckpointTest, ResumedTrainingIsBitIdenticalLeNet5) {
  expect_resume_is_exact(load_network("lenet5"), dir().string());
}

TEST_F(CheckpointTest, ResumedTrainingIsBitIdenticalWithDropout) {
  // Dropout masks derive from the step counter, which the checkpoint must carry.
  Network network(SampleShape{1, 28, 28}, 10, "dropout-net");
  network.conv2d(4, 5, 2, Padding::same()).relu().max_pool(2, 2);
  network.dropout(0.25f).dense(32).relu().dropout(0.5f).dense(10);
  expect_resume_is_exact(network, dir().string());
}

TEST_F(CheckpointTest, ResumingAFinishedRunIsAnError) {
  const Network network = load_network("lenet5");
  const Dataset train_set = test::synthetic_set(64, 3);
  TrainOptions options;
  options.epochs = 1;
  options.quiet = true;
  options.checkpoint_path = path("done.safetensors");
  Model model(network, test::cpu_options(64, 1));
  train(model, train_set, train_set, options);
  options.resume_path = options.checkpoint_path;
  bool started = false;  // a run that cannot start is not announced
  options.on_start = [&](int) { started = true; };
  Model again(network, test::cpu_options(64, 1));
  const std::string message =
      test::error_message([&] { train(again, train_set, train_set, options); });
  EXPECT_EQ(message, options.resume_path +
                         " already has 1 epochs; ask for more than that with "
                         "TrainOptions::epochs (now 1)");
  EXPECT_FALSE(started);
}

}  // namespace
}  // namespace cnnrt
