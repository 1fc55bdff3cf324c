// The training loop on the CPU: LeNet-5 learns Fashion-MNIST well above chance in a few seconds;
// a diverging run stops with an error and keeps the last good checkpoint; the per-epoch callback,
// learning-rate schedule and metrics file (appended to on resume).

#include <fmt/format.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/trainer.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

// LeNet-5, 3000 training images, 2 epochs, batch 64, lr 0.05, momentum 0.9, 1000 test images.
// Measured on the CPU with 2 threads: seed 1 (the test's) reaches test accuracy 0.650 after epoch 1
// and 0.789 after epoch 2, train loss 0.693; seeds 2 and 3 reach 0.765 and 0.741 (loss 0.663 and
// 0.731). Chance is 0.10 and a mean loss of ln(10) = 2.30.
constexpr double kMinAccuracy = 0.68;
constexpr double kMaxTrainLoss = 1.0;
constexpr double kMaxTestLoss = 1.0;

class TrainingTest : public test::ScratchDirTest {
 protected:
  TrainingTest() : ScratchDirTest("training_test") {}
};

TEST_F(TrainingTest, LeNet5LearnsFashionMnist) {
  const std::string dir = test::fashion_mnist_dir();
  if (!test::have_fashion_mnist())
    GTEST_SKIP() << "Fashion-MNIST not found in " << dir << " (set CNNRT_DATA_DIR)";
  const Dataset train_set = load_mnist_split(dir, true).take(3000);
  const Dataset test_set = load_mnist_split(dir, false).take(1000);
  Model model(load_network("lenet5"), test::cpu_options(64, 1));
  TrainOptions options;
  options.epochs = 2;
  options.optimizer = OptimizerParams{0.05f, 0.9f, 0.0f};
  options.quiet = true;
  std::vector<double> test_accuracy;
  const EpochReport report = train(model, train_set, test_set, options, [&](const EpochReport& r) {
    test_accuracy.push_back(r.test.accuracy());
  });
  ASSERT_EQ(test_accuracy.size(), 2u);
  EXPECT_EQ(report.test.samples, 1000);
  EXPECT_EQ(report.train.samples, 3000);
  EXPECT_GE(report.test.accuracy(), kMinAccuracy);
  EXPECT_LT(report.train.mean_loss(), kMaxTrainLoss);
  EXPECT_LT(report.test.mean_loss(), kMaxTestLoss);
  EXPECT_GT(test_accuracy[1], test_accuracy[0]);  // the second epoch still helps
}

TEST_F(TrainingTest, DivergenceStopsAndKeepsTheLastGoodCheckpoint) {
  const Dataset train_set = test::synthetic_set(256, 1);
  const Network network = load_network("lenet5");
  TrainOptions options;
  options.epochs = 1;
  options.quiet = true;
  options.checkpoint_path = path("good.safetensors");
  Model good(network, test::cpu_options(64));
  train(good, train_set, train_set, options);
  const std::vector<std::uint8_t> good_bytes = test::read_bytes(options.checkpoint_path);
  ASSERT_FALSE(good_bytes.empty());

  options.epochs = 3;
  options.optimizer = OptimizerParams{1e6f, 0.9f, 0.0f};
  Model exploding(network, test::cpu_options(64));
  std::string message;
  try {
    train(exploding, train_set, train_set, options);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_TRUE(test::contains(message, "diverged"));
  EXPECT_TRUE(test::contains(message, "the last good checkpoint " + options.checkpoint_path +
                                          " is kept; try a smaller TrainOptions::optimizer.lr"));
  EXPECT_EQ(test::read_bytes(options.checkpoint_path), good_bytes);
  EXPECT_FALSE(fs::exists(options.checkpoint_path + ".tmp"));
}

// `count` copies of one synthetic sample: every batch is the same whatever the shuffled order, so
// the steps can be replayed through Model::train_step on host batches.
Dataset repeated_sample(int count) {
  const Dataset one = test::synthetic_set(1, 7);
  Dataset data = one;
  data.count = count;
  data.images.clear();
  data.labels.clear();
  for (int i = 0; i < count; ++i) {
    data.images.insert(data.images.end(), one.images.begin(), one.images.end());
    data.labels.push_back(one.labels[0]);
  }
  return data;
}

// The divergence error names the epoch and the step (1-based) where the loss first stopped being
// finite. The step is found here by replaying the same run one host batch at a time.
void expect_divergence_names_the_step(const CompileOptions& compile, const std::string& dir) {
  constexpr int kSamples = 96;
  constexpr int kBatch = 32;  // 3 steps per epoch
  constexpr int kEpochs = 3;
  ASSERT_EQ(compile.batch_size, kBatch);
  const Dataset data = repeated_sample(kSamples);
  const Network network = load_network("lenet5");
  TrainOptions options;
  options.epochs = kEpochs;
  // Epoch 1 learns at lr 0.01 (the loss falls, but not to 0); epoch 2 runs at lr 1e14, so its
  // first update makes the weights overflow a step or two later: a gross effect, not one of
  // rounding, so the host-batch replay meets it at the same step on any backend.
  options.optimizer = OptimizerParams{0.01f, 0.9f, 0.0f};
  options.schedule = LrSchedule::parse("step:1:1e16");
  options.quiet = true;

  // The replay: Model::train_step on host batches, lr per epoch as the schedule sets it.
  int expected_epoch = 0, expected_step = 0;
  {
    Model replay(network, compile);
    replay.set_normalization(options.normalization);
    const std::vector<float> images = normalized_samples(data, 0, kBatch, options.normalization);
    const std::vector<std::int32_t> labels(data.labels.begin(), data.labels.begin() + kBatch);
    for (int epoch = 0; epoch < kEpochs && expected_epoch == 0; ++epoch) {
      OptimizerParams sgd = options.optimizer;
      sgd.lr = options.schedule.rate(options.optimizer.lr, epoch, kEpochs);
      replay.set_optimizer(sgd);
      for (int step = 1; step <= kSamples / kBatch; ++step) {
        if (!std::isfinite(replay.train_step(images.data(), labels.data(), kBatch).loss_sum)) {
          expected_epoch = epoch + 1;
          expected_step = step;
          break;
        }
      }
    }
  }
  ASSERT_GE(expected_epoch, 2) << "the replay should diverge after a good first epoch";

  options.checkpoint_path = dir + "/run.safetensors";
  options.metrics_path = dir + "/run.csv";
  std::vector<std::uint8_t> last_good_checkpoint;
  Model model(network, compile);
  const std::string message = test::error_message([&] {
    train(model, data, data, options, [&](const EpochReport&) {
      last_good_checkpoint = test::read_bytes(options.checkpoint_path);
    });
  });
  EXPECT_TRUE(test::contains(
      message, fmt::format("diverged in epoch {} at step {} of 3", expected_epoch, expected_step)))
      << "the replay diverged in epoch " << expected_epoch << " at step " << expected_step;
  EXPECT_TRUE(test::contains(message, options.checkpoint_path));
  EXPECT_EQ(test::read_bytes(options.checkpoint_path), last_good_checkpoint);
  EXPECT_FALSE(fs::exists(options.checkpoint_path + ".tmp"));
  std::ifstream csv(options.metrics_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  // The header and a row per good epoch: none for the diverged one.
  ASSERT_EQ(lines.size(), std::size_t(expected_epoch));
  EXPECT_EQ(lines.back().substr(0, 2), std::to_string(expected_epoch - 1) + ",");
}

TEST_F(TrainingTest, DivergenceNamesTheEpochAndStep) {
  expect_divergence_names_the_step(test::cpu_options(32), dir().string());
}

TEST_F(TrainingTest, DivergenceNamesTheEpochAndStepCuda) {
  CNNRT_REQUIRE_GPU();
  CompileOptions compile = test::cpu_options(32);
  compile.device = Device::cuda;  // graph replay, the fast path
  expect_divergence_names_the_step(compile, dir().string());
}

// What train() leaves: the final checkpoint's bytes, the reports passed to on_epoch and the
// metrics rows without the timing columns.
struct RunRecord {
  std::vector<std::uint8_t> checkpoint;
  std::vector<EpochReport> reports;
  std::vector<std::string> rows;
};

// Stopping through TrainOptions::stop after step `stop_step` of epoch `stop_epoch` (0: before
// any step) and resuming from the checkpoint gives the same final checkpoint bytes, reports and
// metrics as a run that was never stopped.
// `adjust` changes the run's options (the optimizer, schedule, smoothing) before either run.
void expect_stop_and_resume_is_exact(const Network& network, const CompileOptions& compile,
                                     int stop_epoch, int stop_step, const std::string& dir,
                                     const std::function<void(TrainOptions&)>& adjust = {}) {
  SCOPED_TRACE(fmt::format("stop after step {} of epoch {}", stop_step, stop_epoch));
  const Dataset train_set = test::synthetic_set(200, 1);  // batch 32: 7 steps, the last of 8
  const Dataset test_set = test::synthetic_set(64, 2);
  constexpr int kSteps = 7;
  TrainOptions options;
  options.epochs = 3;
  options.optimizer = OptimizerParams{0.02f, 0.9f, 1e-4f};
  options.quiet = true;
  if (adjust) adjust(options);
  auto run = [&](TrainOptions o, const std::string& name) {
    o.checkpoint_path = dir + "/" + name + ".safetensors";
    o.metrics_path = dir + "/" + name + ".csv";
    RunRecord record;
    Model model(network, compile);
    train(model, train_set, test_set, o,
          [&](const EpochReport& r) { record.reports.push_back(r); });
    record.checkpoint = test::read_bytes(o.checkpoint_path);
    record.rows = test::metrics_rows_without_timing(o.metrics_path);
    return record;
  };
  const RunRecord straight = run(options, "straight");

  std::atomic<bool> stop{stop_step == 0};
  TrainOptions stopping = options;
  stopping.checkpoint_path = dir + "/stopped.safetensors";
  stopping.metrics_path = dir + "/stopped.csv";
  stopping.stop = &stop;
  stopping.on_step = [&](int epoch, int step, int steps) {
    EXPECT_EQ(steps, kSteps);
    if (epoch == stop_epoch && step == stop_step) stop = true;
  };
  std::vector<EpochReport> reports;
  Model first(network, compile);
  const EpochReport stopped = train(first, train_set, test_set, stopping,
                                    [&](const EpochReport& r) { reports.push_back(r); });
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.epoch, stop_epoch);
  EXPECT_EQ(stopped.steps_done, stop_step);
  EXPECT_EQ(stopped.steps, kSteps);
  EXPECT_EQ(first.step_counter(), std::uint64_t((stop_epoch - 1) * kSteps + stop_step));
  EXPECT_EQ(stopped.train.samples, std::min(stop_step * 32, 200));
  Model reader(network, test::cpu_options(1));
  reader.set_optimizer(options.optimizer);
  const CheckpointState state = load_checkpoint(stopping.checkpoint_path, reader);
  EXPECT_EQ(state.optimizer, to_string(options.optimizer.kind));
  EXPECT_EQ(state.optimizer_steps, first.optimizer_steps());
  EXPECT_EQ(state.epochs_done, stop_epoch - 1);
  EXPECT_EQ(state.within_epoch.steps_done, stop_step);
  EXPECT_EQ(state.within_epoch.stats.loss_sum, stopped.train.loss_sum);
  EXPECT_EQ(state.within_epoch.stats.correct, stopped.train.correct);

  TrainOptions resuming = options;
  resuming.checkpoint_path = stopping.checkpoint_path;
  resuming.metrics_path = stopping.metrics_path;
  resuming.resume_path = stopping.checkpoint_path;
  Model resumed(network, compile);
  train(resumed, train_set, test_set, resuming,
        [&](const EpochReport& r) { reports.push_back(r); });
  EXPECT_EQ(test::read_bytes(resuming.checkpoint_path), straight.checkpoint);
  EXPECT_EQ(test::metrics_rows_without_timing(resuming.metrics_path), straight.rows);
  ASSERT_EQ(reports.size(), straight.reports.size());
  for (std::size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].epoch, straight.reports[i].epoch);
    EXPECT_EQ(reports[i].train.loss_sum, straight.reports[i].train.loss_sum) << i;
    EXPECT_EQ(reports[i].train.correct, straight.reports[i].train.correct) << i;
    EXPECT_EQ(reports[i].train.samples, straight.reports[i].train.samples) << i;
    EXPECT_EQ(reports[i].test.loss_sum, straight.reports[i].test.loss_sum) << i;
  }
}

TEST_F(TrainingTest, StopFlagStopsAtTheStepAndResumeIsBitIdentical) {
  const Network network = load_network("lenet5");
  const CompileOptions compile = test::cpu_options(32, 3);
  expect_stop_and_resume_is_exact(network, compile, 2, 3, dir().string());  // inside an epoch
  expect_stop_and_resume_is_exact(network, compile, 2, 7, dir().string());  // after its last step
  expect_stop_and_resume_is_exact(network, compile, 1, 0, dir().string());  // before any step
}

TEST_F(TrainingTest, StopFlagAndResumeWithDropoutIsBitIdentical) {
  // Dropout masks follow the step counter, which the checkpoint carries mid-epoch too.
  Network network(SampleShape{1, 28, 28}, 10, "dropout-net");
  network.conv2d(4, 5, 2, Padding::same()).relu().max_pool(2, 2);
  network.dropout(0.25f).dense(32).relu().dropout(0.5f).dense(10);
  expect_stop_and_resume_is_exact(network, test::cpu_options(32, 4), 2, 5, dir().string());
}

TEST_F(TrainingTest, StopFlagAndResumeIsBitIdenticalCuda) {
  CNNRT_REQUIRE_GPU();
  CompileOptions compile = test::cpu_options(32, 3);
  compile.device = Device::cuda;  // graph replay: the batch counter restarts mid-epoch
  expect_stop_and_resume_is_exact(load_network("lenet5"), compile, 2, 3, dir().string());
  expect_stop_and_resume_is_exact(load_network("lenet5"), compile, 2, 7, dir().string());
}

// Augmented crops and flips are drawn from (seed, epoch, step, sample), all restored on resume.
const auto kCropFlip = [](TrainOptions& o) { o.augment = "crop:2,flip"; };

TEST_F(TrainingTest, StopFlagAndResumeWithAugmentationIsBitIdentical) {
  const Network network = load_network("lenet5");
  expect_stop_and_resume_is_exact(network, test::cpu_options(32, 3), 2, 3, dir().string(),
                                  kCropFlip);
  expect_stop_and_resume_is_exact(network, test::cpu_options(32, 3), 3, 7, dir().string(),
                                  kCropFlip);
}

TEST_F(TrainingTest, StopFlagAndResumeWithAugmentationIsBitIdenticalCuda) {
  CNNRT_REQUIRE_GPU();
  CompileOptions compile = test::cpu_options(32, 3);
  compile.device = Device::cuda;  // graph replay: the epoch is read from the device counter
  expect_stop_and_resume_is_exact(load_network("lenet5"), compile, 2, 3, dir().string(), kCropFlip);
}

// Augmentation changes what is learnt (the same seed trains other weights than without it), the
// same seed gives the same bits, and the default is off.
TEST_F(TrainingTest, AugmentationIsSeededAndOffByDefault) {
  const Dataset train_set = test::synthetic_set(96, 1);
  const Dataset test_set = test::synthetic_set(32, 2);
  const Network network = load_network("lenet5");
  auto weights = [&](const std::string& augment) {
    TrainOptions o;
    o.epochs = 2;
    o.quiet = true;
    o.augment = augment;
    Model model(network, test::cpu_options(32, 5));
    train(model, train_set, test_set, o);
    return model.parameter("conv1.weight");
  };
  const std::vector<float> plain = weights(""), none = weights("none");
  const std::vector<float> augmented = weights("crop:3,flip");
  EXPECT_EQ(plain, none);
  EXPECT_NE(plain, augmented);
  EXPECT_EQ(augmented, weights("crop:3,flip"));
  EXPECT_NE(augmented, weights("flip"));
  TrainOptions bad;
  bad.quiet = true;
  bad.augment = "crop:28";  // no pixel of the image would be left in some crops
  Model model(network, test::cpu_options(32, 5));
  EXPECT_THROW(train(model, train_set, test_set, bad), Error);
}

TEST(AugmentationSpec, ParsesCropAndFlipAndRejectsTheRest) {
  const Augmentation both = parse_augmentation("crop:4,flip");
  EXPECT_EQ(both.crop_padding, 4);
  EXPECT_TRUE(both.flip);
  EXPECT_EQ(to_string(both), "crop:4,flip");
  EXPECT_EQ(to_string(parse_augmentation("flip,crop:2")), "crop:2,flip");
  EXPECT_FALSE(parse_augmentation("").enabled());
  EXPECT_FALSE(parse_augmentation("none").enabled());
  EXPECT_EQ(to_string(parse_augmentation("none")), "none");
  for (const char* bad : {"crop", "crop:", "crop:0", "crop:-1", "crop:x", "flip,flip", "crop:1,",
                          ",flip", "rotate", "crop:2,crop:3", "crop:99999"})
    EXPECT_THROW(parse_augmentation(bad), Error) << bad;
}

// Every optimizer with the per-step schedules, warm-up, label smoothing and undecayed biases: the
// optimizer's state and the step count go through the checkpoint exactly.
void adjust_for(OptimizerKind kind, TrainOptions& o) {
  o.optimizer.kind = kind;
  if (o.optimizer.uses_second_moment()) o.optimizer.lr = 2e-3f;
  o.optimizer.weight_decay = 1e-2f;
  o.optimizer.decay_norm_bias = false;
  o.schedule = LrSchedule::parse(kind == OptimizerKind::adam ? "onecycle" : "linear");
  o.schedule.warmup_epochs = 0.5f;
  o.label_smoothing = 0.1f;
}

TEST_F(TrainingTest, StopAndResumeIsBitIdenticalForEveryOptimizer) {
  const Network network = load_network("lenet5");
  const CompileOptions compile = test::cpu_options(32, 3);
  for (const OptimizerKind kind :
       {OptimizerKind::sgd, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw}) {
    SCOPED_TRACE(to_string(kind));
    const auto adjust = [kind](TrainOptions& o) { adjust_for(kind, o); };
    expect_stop_and_resume_is_exact(network, compile, 2, 3, dir().string(), adjust);
    expect_stop_and_resume_is_exact(network, compile, 1, 7, dir().string(), adjust);  // 1 + 2
  }
}

TEST_F(TrainingTest, StopAndResumeWithAdamIsBitIdenticalCuda) {
  CNNRT_REQUIRE_GPU();
  CompileOptions compile = test::cpu_options(32, 3);
  compile.device = Device::cuda;  // graph replay reads each step's scalars from the table
  const auto adjust = [](TrainOptions& o) { adjust_for(OptimizerKind::adam, o); };
  expect_stop_and_resume_is_exact(load_network("lenet5"), compile, 2, 3, dir().string(), adjust);
  expect_stop_and_resume_is_exact(load_network("lenet5"), compile, 1, 7, dir().string(), adjust);
}

TEST_F(TrainingTest, ResumingAnSgdCheckpointWithAdamNamesBoth) {
  const Dataset data = test::synthetic_set(64, 1);
  const Network network = load_network("lenet5");
  TrainOptions options;
  options.epochs = 1;
  options.quiet = true;
  options.checkpoint_path = (dir() / "sgd.safetensors").string();
  {
    Model model(network, test::cpu_options(32, 3));
    train(model, data, data, options);
  }
  TrainOptions adam = options;
  adam.epochs = 2;
  adam.resume_path = options.checkpoint_path;
  adam.checkpoint_path.clear();
  adam.optimizer.kind = OptimizerKind::adam;
  Model model(network, test::cpu_options(32, 3));
  test::expect_error([&] { train(model, data, data, adam); },
                     {"state of the sgd optimizer", "this run uses adam"});
  // Evaluation takes the weights alone, whatever optimizer wrote them.
  Model reader(network, test::cpu_options(32, 3));
  reader.set_optimizer(adam.optimizer);
  EXPECT_FALSE(load_checkpoint(options.checkpoint_path, reader, false).has_momentum);
}

TEST_F(TrainingTest, ResumeWithAnotherBatchSizeInsideAnEpochIsRefused) {
  const Dataset data = test::synthetic_set(128, 1);
  const Network network = load_network("lenet5");
  std::atomic<bool> stop{false};
  TrainOptions options;
  options.epochs = 2;
  options.quiet = true;
  options.checkpoint_path = path("stopped.safetensors");
  options.stop = &stop;
  options.on_step = [&](int, int step, int) { stop = step == 2; };
  Model model(network, test::cpu_options(32));
  ASSERT_TRUE(train(model, data, data, options).stopped);

  TrainOptions resume = options;
  resume.stop = nullptr;
  resume.on_step = nullptr;
  resume.resume_path = options.checkpoint_path;
  Model other_batch(network, test::cpu_options(16));
  const std::string message = test::error_message([&] { train(other_batch, data, data, resume); });
  EXPECT_TRUE(test::contains(message, "after step 2 (64 images)"));
  EXPECT_TRUE(test::contains(message, "at batch 16"));
}

// Output paths that cannot be written fail before the first step, naming the path and the reason.
TEST_F(TrainingTest, UnwritablePathsFailBeforeTheFirstStep) {
  const Dataset data = test::synthetic_set(64, 1);
  Model model(load_network("lenet5"), test::cpu_options(32));
  test::write_text(path("file"), "a regular file");
  const struct {
    std::string checkpoint, metrics, reason;
  } cases[] = {
      {path("missing/c.safetensors"), "", "No such file or directory"},
      {path("file/c.safetensors"), "", "Not a directory"},
      {dir().string(), "", "it is a directory"},
      {"", path("missing/m.csv"), "No such file or directory"},
      {"", path("file/m.csv"), "Not a directory"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.checkpoint + c.metrics);
    TrainOptions options;
    options.epochs = 1;
    options.quiet = true;
    options.checkpoint_path = c.checkpoint;
    options.metrics_path = c.metrics;
    int steps = 0;
    options.on_step = [&](int, int, int) { ++steps; };
    const std::string message = test::error_message([&] { train(model, data, data, options); });
    EXPECT_TRUE(test::contains(message, c.checkpoint + c.metrics));
    EXPECT_TRUE(test::contains(message, c.reason));
    EXPECT_EQ(steps, 0);
  }
  EXPECT_FALSE(fs::exists(path("missing")));
}

// A batch whose arena is larger than the machine's memory: an error naming the bytes, not
// std::bad_alloc. LeNet-5 holds per sample, in 4-byte words: the input (784) and label (1), every
// layer's output and its gradient (2 x (4704 + 4704 + 1176 + 1600 + 1600 + 400 + 120 + 120 + 84 +
// 84 + 10)) and the two pools' argmax (1176 + 400).
constexpr std::int64_t kLeNet5BytesPerSample = 4 * (784 + 1 + 2 * 14602 + 1176 + 400);
// Parameters, gradients and momentum (3 x 61706 floats), 256-byte alignment of ~40 regions and
// the weight-gradient workspace (CPU: a few KB per thread; CUDA: at most 2 x 528 rows of conv2's
// 2416 weights and biases, 10.2 MB) stay under this.
constexpr std::int64_t kLeNet5FixedBytesBound = 16 << 20;

std::int64_t bytes_named_in(const std::string& message) {
  const std::size_t at = message.find(" bytes");
  std::size_t begin = at;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(message[begin - 1]))) --begin;
  return at == std::string::npos || begin == at ? -1
                                                : std::stoll(message.substr(begin, at - begin));
}

TEST_F(TrainingTest, BatchTooLargeForHostMemoryNamesTheBytes) {
  constexpr int kBatch = 100000000;
  const std::string message =
      test::error_message([&] { Model model(load_network("lenet5"), test::cpu_options(kBatch)); });
  EXPECT_TRUE(test::contains(message, "out of host memory"));
  EXPECT_TRUE(test::contains(message, "at batch 100000000"));
  const std::int64_t bytes = bytes_named_in(message);
  EXPECT_GE(bytes, kBatch * kLeNet5BytesPerSample) << message;
  EXPECT_LE(bytes, kBatch * kLeNet5BytesPerSample + kLeNet5FixedBytesBound) << message;
}

TEST_F(TrainingTest, BatchTooLargeForDeviceMemoryNamesTheBytes) {
  CNNRT_REQUIRE_GPU();
  constexpr int kBatch = 100000000;
  CompileOptions compile = test::cpu_options(kBatch);
  compile.device = Device::cuda;
  const std::string message =
      test::error_message([&] { Model model(load_network("lenet5"), compile); });
  EXPECT_TRUE(test::contains(message, "out of device memory"));
  EXPECT_TRUE(test::contains(message, " free of "));
  const std::int64_t bytes = bytes_named_in(message);
  EXPECT_GE(bytes, kBatch * kLeNet5BytesPerSample) << message;
  EXPECT_LE(bytes, kBatch * kLeNet5BytesPerSample + kLeNet5FixedBytesBound) << message;
  // The failed allocation leaves the device usable.
  Model small(load_network("lenet5"), [&] {
    CompileOptions o = compile;
    o.batch_size = 8;
    return o;
  }());
  EXPECT_EQ(small.parameter("fc3.bias").size(), 10u);
}

TEST_F(TrainingTest, EpochCallbackScheduleAndMetricsAcrossResume) {
  const Dataset train_set = test::synthetic_set(128, 2);
  const Dataset test_set = test::synthetic_set(64, 3);
  const Network network = load_network("lenet5-classic");
  TrainOptions options;
  options.epochs = 2;
  options.optimizer = OptimizerParams{0.08f, 0.9f, 0.0f};
  options.schedule = LrSchedule::parse("step:1:0.5");
  options.quiet = true;
  options.checkpoint_path = path("run.safetensors");
  options.metrics_path = path("metrics.csv");
  std::vector<EpochReport> reports;
  auto record = [&](const EpochReport& r) { reports.push_back(r); };
  Model model(network, test::cpu_options(32));
  train(model, train_set, test_set, options, record);

  options.epochs = 3;
  options.resume_path = options.checkpoint_path;
  Model resumed(network, test::cpu_options(32));
  train(resumed, train_set, test_set, options, record);

  ASSERT_EQ(reports.size(), 3u);
  const float expected_lr[] = {0.08f, 0.04f, 0.02f};  // halved every epoch
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reports[i].epoch, i + 1);
    EXPECT_FLOAT_EQ(reports[i].lr, expected_lr[i]);
    EXPECT_EQ(reports[i].train.samples, 128);
    EXPECT_EQ(reports[i].test.samples, 64);
    EXPECT_GT(reports[i].seconds, 0.0);
  }
  // One header, then one row per epoch, the resumed run appending.
  std::ifstream csv(options.metrics_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s");
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(lines[i].substr(0, 2), std::to_string(i) + ",");
  Model reader(network, test::cpu_options(1));
  EXPECT_EQ(load_checkpoint(options.checkpoint_path, reader).epochs_done, 3);
}

TEST_F(TrainingTest, ResumeIntoANewMetricsFileWritesTheHeader) {
  const Dataset data = test::synthetic_set(64, 5);
  const Network network = load_network("lenet5");
  TrainOptions options;
  options.epochs = 1;
  options.quiet = true;
  options.checkpoint_path = path("run.safetensors");
  Model model(network, test::cpu_options(32));
  train(model, data, data, options);

  options.epochs = 2;
  options.resume_path = options.checkpoint_path;
  options.metrics_path = path("resumed.csv");  // did not exist before
  Model resumed(network, test::cpu_options(32));
  train(resumed, data, data, options);
  std::ifstream csv(options.metrics_path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(csv, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s");
  EXPECT_EQ(lines[1].substr(0, 2), "2,");
}

TEST_F(TrainingTest, BadInputsAreRejected) {
  Model model(load_network("lenet5"), test::cpu_options(16));
  const Dataset data = test::synthetic_set(32, 4);
  TrainOptions options;
  options.quiet = true;
  options.epochs = 0;
  EXPECT_EQ(test::error_message([&] { train(model, data, data, options); }),
            "TrainOptions::epochs must be positive, got 0");
  options.epochs = 1;
  Dataset small = data;
  small.height = small.width = 14;
  small.images.resize(std::size_t(small.count) * 14 * 14);
  try {
    train(model, small, data, options);
    ADD_FAILURE() << "expected a cnnrt::Error";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "1x14x14"));
    EXPECT_TRUE(test::contains(e.what(), "1x28x28"));
  }
  options.metrics_path = path("no/such/dir/metrics.csv");
  EXPECT_THROW(train(model, data, data, options), Error);
}

}  // namespace
}  // namespace cnnrt
