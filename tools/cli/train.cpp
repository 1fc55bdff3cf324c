// `cnnrt train` and `cnnrt eval`.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/plots.hpp"
#include "cnnrt/profiling.hpp"
#include "cnnrt/recipe.hpp"
#include "cnnrt/trainer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct TrainArgs {
  std::string model = "lenet5";
  std::string data = default_data_dir();
  std::string device = "auto";
  std::string init = "lecun-uniform";
  std::string gemm = "tiled";
  std::string schedule = "cosine";
  std::string augment = "none";
  std::string tta = "none";
  std::string optimizer = "sgd";
  std::string betas = "0.9,0.999";
  int epochs = 10;
  int batch = 0;    // 0: 256 on CUDA, 64 on the CPU
  float lr = 0.0f;  // 0: 0.02 * batch / 64
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  float eps = 1e-8f;
  float warmup = 0.0f;
  float label_smoothing = 0.0f;
  bool no_decay_norm_bias = false;
  std::uint64_t seed = 1;
  int train_limit = 0;
  int test_limit = 0;
  int threads = 0;
  std::string checkpoint, resume, metrics, weights, profile_steps, plots, tensorboard;
  std::string mean, std_dev;  // --mean, --std: comma lists, empty when not given
  DataFormat data_format;
  bool no_graphs = false;
  bool no_fuse = false;
};

void add_common(CLI::App* cmd, TrainArgs& a) {
  add_model_option(cmd, a.model);
  add_data_option(cmd, a.data);
  add_data_format_options(cmd, a.data_format);
  add_device_option(cmd, a.device);
  cmd->add_option("--batch", a.batch,
                  "Batch size (default: 256 on CUDA; 64 on the CPU, which has no launch overhead "
                  "to amortise and learns more per epoch with more steps)")
      ->check(positive_number());
  add_test_limit_option(cmd, a.test_limit);
  add_gemm_option(cmd, a.gemm);
  cmd->add_option("--threads", a.threads,
                  "CPU backend threads (0: all cores); results are bit-identical for one count, "
                  "not across counts")
      ->check(non_negative_number());
  cmd->add_option("--seed", a.seed,
                  "Seed for weights, shuffling, dropout and the --test-split draw")
      ->capture_default_str();
  cmd->add_flag("--no-graphs", a.no_graphs, "CUDA: launch every kernel of every step (no graph)");
  cmd->add_flag("--no-fuse", a.no_fuse,
                "Run activations as layers of their own, not inside the convolution, dense and "
                "pooling kernels next to them (the same results, more kernels)");
}

// SIGINT and SIGTERM during `train`: the first asks the training loop to stop after the step in
// flight; the handler then restores the default action for both, so a second one kills at once.
std::atomic<bool> stop_requested{false};
volatile std::sig_atomic_t stop_signal = 0;
static_assert(std::atomic<bool>::is_always_lock_free, "the handler needs a lock-free flag");

extern "C" void request_stop(int signal) {
  stop_signal = signal;
  stop_requested.store(true, std::memory_order_relaxed);
  struct sigaction fallback {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(SIGINT, &fallback, nullptr);
  sigaction(SIGTERM, &fallback, nullptr);
}

// Installs request_stop for the lifetime of the object and puts the previous handlers back.
class StopOnSignals {
 public:
  StopOnSignals() {
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_RESTART;  // SA_RESTART: file writes in flight go on
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopOnSignals() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

// The tool's error for a run that a signal stopped: where, the checkpoint and how to go on. Exit
// status 128 + the signal (130 for SIGINT, 143 for SIGTERM), as a shell reports a killed command.
StoppedRun interrupted(const EpochReport& report, const std::string& checkpoint) {
  // 0: another rank of a distributed run was signalled.
  const int signal = stop_signal != 0 ? int(stop_signal) : SIGINT;
  const std::string name = stop_signal == 0    ? "a signal to another rank"
                           : signal == SIGINT  ? "SIGINT"
                           : signal == SIGTERM ? "SIGTERM"
                                               : strsignal(signal);
  const std::string where = fmt::format("interrupted in epoch {} after step {} of {} ({})",
                                        report.epoch, report.steps_done, report.steps, name);
  const std::string saved = checkpoint.empty()
                                ? "no checkpoint written (no --checkpoint given)"
                                : fmt::format("checkpoint written to {}; resume with --resume {}",
                                              checkpoint, checkpoint);
  return StoppedRun(fmt::format("{}; {}", where, saved), 128 + signal);
}

// --betas B1,B2: two numbers in [0, 1).
std::pair<float, float> parse_betas(const std::string& text) {
  float b1 = 0, b2 = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%f,%f%c", &b1, &b2, &tail) != 2 || !(b1 >= 0 && b1 < 1) ||
      !(b2 >= 0 && b2 < 1))
    throw Error(fmt::format("betas must be B1,B2 with both in [0, 1), got '{}'", text));
  return {b1, b2};
}

// The recipe the command line gives: the flags given, nothing else, so that they override the
// preset's recipe and the rest keep it.
TrainRecipe flag_recipe(const CLI::App& cmd, const TrainArgs& a) {
  TrainRecipe r;
  auto given = [&](const char* flag) { return cmd.get_option(flag)->count() > 0; };
  if (given("--optimizer")) r.optimizer = a.optimizer;
  if (given("--schedule")) r.schedule = a.schedule;
  if (given("--lr")) r.lr = a.lr;
  if (given("--momentum")) r.momentum = a.momentum;
  if (given("--weight-decay")) r.weight_decay = a.weight_decay;
  if (given("--betas")) std::tie(r.beta1, r.beta2) = parse_betas(a.betas);
  if (given("--eps")) r.eps = a.eps;
  if (given("--warmup")) r.warmup = a.warmup;
  if (given("--label-smoothing")) r.label_smoothing = a.label_smoothing;
  if (given("--epochs")) r.epochs = a.epochs;
  if (given("--batch")) r.batch = a.batch;
  if (given("--no-decay-norm-bias")) r.no_decay_norm_bias = a.no_decay_norm_bias;
  if (given("--augment")) r.augment = a.augment;
  return r;
}

CompileOptions compile_options(const TrainArgs& a) {
  CompileOptions o;
  o.device = resolve_device(a.device);
  o.batch_size = a.batch > 0 ? a.batch : (o.device == Device::cuda ? 256 : 64);
  o.seed = a.seed;
  o.init = parse_init_scheme(a.init);
  o.gemm = parse_gemm_backend(a.gemm);
  o.cpu_threads = a.threads;
  o.cuda_graphs = !a.no_graphs;
  o.fuse_activations = !a.no_fuse;
  return o;
}

// Under a launcher (mpirun, srun): the job's ranks, each on its machine-local share of the cores,
// or its machine-local rank's GPU.
void join_ranks(CompileOptions& o, const TrainArgs& a) {
  o.communicator = launched_communicator();
  if (!o.communicator) return;
  const Communicator& ranks = *o.communicator;
  if (o.device == Device::cuda) {
    const int gpus = int(cuda_devices().size());
    if (gpus > 0) use_cuda_device(ranks.local_rank() % gpus);
  } else if (a.threads == 0) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    o.cpu_threads = std::max(1, cores / ranks.local_size());
  }
}

// `train --plots DIR`: per-epoch metrics collected from train()'s callback, and after every epoch
// loss.png, accuracy.png, kernels.png (the first convolution's weights) and feature_maps.png (one
// test image through every convolution), rewritten so a stopped run still leaves pictures.
class TrainingPlots {
 public:
  // More maps than this per row make pictures too wide to read.
  static constexpr int kMaxMapsPerRow = 16;

  TrainingPlots(std::string dir, const Dataset& test, const Normalization& norm)
      : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec || !std::filesystem::is_directory(dir_))
      throw Error(fmt::format("--plots {}: cannot create the directory: {}", dir_, ec.message()));
    // The feature-map picture follows test image 0, normalised as training normalises.
    if (test.count == 0) throw Error("--plots: the test set is empty");
    sample_ = normalized_samples(test, 0, 1, norm);
  }

  void add_epoch(Model& model, const EpochReport& report) {
    if (first_epoch_ == 0) first_epoch_ = report.epoch;
    train_loss_.push_back(report.train.mean_loss());
    test_loss_.push_back(report.test.mean_loss());
    train_accuracy_.push_back(report.train.accuracy());
    test_accuracy_.push_back(report.test.accuracy());
    write_line_chart(path("loss.png"), "loss per epoch",
                     {{"train", train_loss_, kTrainColour}, {"test", test_loss_, kTestColour}},
                     first_epoch_);
    write_line_chart(
        path("accuracy.png"), "accuracy per epoch",
        {{"train", train_accuracy_, kTrainColour}, {"test", test_accuracy_, kTestColour}},
        first_epoch_);
    write_kernels(model);
    write_maps(model);
  }

 private:
  static constexpr std::array<std::uint8_t, 3> kTrainColour{31, 119, 180};
  static constexpr std::array<std::uint8_t, 3> kTestColour{214, 39, 40};

  std::string path(const char* file) const { return (std::filesystem::path(dir_) / file).string(); }

  void write_kernels(const Model& model) const {
    if (const auto kernels = draw_first_convolution(model)) {
      const ByteImage& grid = kernels->picture;
      write_rgb_png(path("kernels.png"), grid.width, grid.height, grid.pixels);
    }
  }

  void write_maps(Model& model) const {
    const SampleShape in = model.network().input();
    std::vector<FeatureMapRow> rows;
    rows.push_back(FeatureMapRow{"input (test image 0)", in.c, in.h, in.w, sample_});
    model.logits(sample_.data(), 1);  // one forward pass; the layers keep their outputs
    const std::vector<SampleShape> shapes = model.layer_shapes();
    const std::vector<LayerSpec>& layers = model.network().layers();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      if (layers[i].type != "conv2d") continue;
      const SampleShape s = shapes[i];
      const int shown = std::min(s.c, kMaxMapsPerRow);
      std::vector<float> maps = model.layer_output(int(i), 1);
      maps.resize(std::size_t(shown) * s.h * s.w);
      const std::string label =
          shown < s.c
              ? fmt::format("{} (first {} of {} maps, {}x{})", layers[i].name, shown, s.c, s.h, s.w)
              : fmt::format("{} ({} maps, {}x{})", layers[i].name, s.c, s.h, s.w);
      rows.push_back(FeatureMapRow{label, shown, s.h, s.w, std::move(maps)});
    }
    write_feature_maps(path("feature_maps.png"), "feature maps", rows);
  }

  std::string dir_;
  std::vector<float> sample_;
  int first_epoch_ = 0;
  std::vector<double> train_loss_, test_loss_, train_accuracy_, test_accuracy_;
};

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a model (LeNet-5 on Fashion-MNIST by default)");
  TrainArgs& a = *args;
  add_common(cmd, a);
  cmd->add_option("--epochs", a.epochs, "Epochs (default: the preset's recipe, else 10)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--lr", a.lr,
                  "Learning rate (default: 0.02 * batch / 64, the linear scaling rule; 0.08 at "
                  "batch 256)")
      ->check(positive_number());
  cmd->add_option("--momentum", a.momentum, "SGD momentum")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--weight-decay", a.weight_decay, "L2 weight decay")
      ->check(non_negative_number())
      ->capture_default_str();
  cmd->add_option("--optimizer", a.optimizer,
                  "sgd, nesterov (SGD with Nesterov momentum), adam (L2 weight decay in the "
                  "gradient) or adamw (decoupled weight decay)")
      ->check(parsed_by(parse_optimizer, "OPTIMIZER"))
      ->capture_default_str();
  cmd->add_option("--betas", a.betas, "Adam's B1,B2, each in [0, 1)")
      ->check(parsed_by(parse_betas, "B1,B2"))
      ->capture_default_str();
  cmd->add_option("--eps", a.eps, "Adam's eps (added to the root of the second moment)")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_flag("--no-decay-norm-bias", a.no_decay_norm_bias,
                "No weight decay on tensors of rank <= 1 (biases, batch norm's weight and bias)");
  cmd->add_option("--schedule", a.schedule,
                  "Learning rate schedule: constant, cosine, step:E:G (per epoch); linear, "
                  "onecycle, onecycle:PCT (per step)")
      ->check(parsed_by(LrSchedule::parse, "SCHEDULE"))
      ->capture_default_str();
  cmd->add_option("--augment", a.augment,
                  "Augment training batches: crop:P (a random crop of the image padded by P "
                  "black pixels), flip (random horizontal flips), both as crop:4,flip, or none")
      ->check(parsed_by(parse_augmentation, "SPEC"))
      ->capture_default_str();
  cmd->add_option("--warmup", a.warmup,
                  "Linear warm-up over this many epochs (fractions allowed), step by step, in "
                  "front of the schedule")
      ->check(non_negative_number())
      ->capture_default_str();
  cmd->add_option("--label-smoothing", a.label_smoothing,
                  "Training target (1 - E) one-hot + E / classes, 0 <= E < 1")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            float e = 0;
            if (!CLI::detail::lexical_cast(text, e) || !(e >= 0.0f && e < 1.0f))
              return fmt::format("must be a number in [0, 1), got {}", text);
            return "";
          },
          "E"))
      ->capture_default_str();
  cmd->add_option("--mean", a.mean,
                  "Normalisation mean of byte / 255: one value, or one per channel (comma list); "
                  "default: computed from the training set, the IDX default 0.2860 for IDX data")
      ->check(
          parsed_by([](const std::string& t) { return parse_float_list(t, "mean"); }, "M[,M..]"));
  cmd->add_option("--std", a.std_dev,
                  "Normalisation standard deviation, as --mean (each > 0; IDX default 0.3530)")
      ->check(parsed_by(parse_std_list, "S[,S..]"));
  cmd->add_option("--init", a.init,
                  "Weight init: he-uniform, he-normal, xavier-uniform, xavier-normal, "
                  "lecun-uniform, lecun-normal")
      ->check(parsed_by(parse_init_scheme, "INIT"))
      ->capture_default_str();
  cmd->add_option("--train-limit", a.train_limit, "Use only the first N training images (0: all)")
      ->check(non_negative_number());
  cmd->add_option("--checkpoint", a.checkpoint,
                  "Write a checkpoint (safetensors) after each epoch, and when SIGINT or SIGTERM "
                  "stops training (after the step in flight; exit status 128 + the signal, a "
                  "second signal kills at once)");
  cmd->add_option("--resume", a.resume, "Continue from a checkpoint");
  cmd->add_option("--metrics", a.metrics, "Write per-epoch metrics as CSV");
  cmd->add_option("--profile-steps", a.profile_steps,
                  "A:B: bracket training steps A..B (0-based) with cudaProfilerStart/Stop for "
                  "Nsight (those steps run without graph replay)")
      ->check(parsed_by(ProfileSteps::parse, "A:B"));
  cmd->add_option("--plots", a.plots,
                  "Write loss, accuracy, kernel and feature-map PNGs into DIR after each epoch");
  cmd->add_option("--tensorboard", a.tensorboard,
                  "Write TensorBoard event files into DIR: per epoch the losses, accuracies, "
                  "learning rate and images/s, and the first convolution's kernels");
  cmd->callback([args, cmd] {
    // Unwritable output paths fail first, before the model and the data are read (train()
    // checks them again).
    if (!args->checkpoint.empty()) check_can_write(args->checkpoint, "checkpoint", true);
    if (!args->metrics.empty()) check_can_write(args->metrics, "metrics file", false);
    // The preset's recipe under the flags given; the tool's defaults under both.
    const TrainRecipe recipe = load_recipe(args->model).overridden_by(flag_recipe(*cmd, *args));
    TrainArgs a = *args;
    if (recipe.batch) a.batch = *recipe.batch;
    a.data_format.seed = a.seed, a.data_format.threads = a.threads;
    StopOnSignals stop_on_signals;
    Network network = load_network(a.model);
    check_normalization_flags(a.mean, a.std_dev, network);
    const std::vector<std::string> presets = preset_names();
    const bool preset = std::find(presets.begin(), presets.end(), a.model) != presets.end();
    a.data_format.classes_follow_data = preset;
    CompileOptions options = compile_options(a);
    join_ranks(options, a);
    const bool rank0 = !options.communicator || options.communicator->rank() == 0;
    // Start-up overlaps: the two splits are read and inflated on threads of their own while the
    // model is compiled (on CUDA that creates the context, a few hundred ms). Errors keep their
    // order: a bad data set is reported before a model that could not be compiled.
    std::string train_summary, test_summary;
    auto train_load = std::async(std::launch::async, load_split, a.data, true, a.train_limit,
                                 std::cref(network), std::cref(a.data_format), &train_summary);
    auto test_load = std::async(std::launch::async, load_split, a.data, false, a.test_limit,
                                std::cref(network), std::cref(a.data_format), &test_summary);
    std::optional<Model> compiled;
    std::exception_ptr compile_error;
    try {
      compiled.emplace(network, options);
    } catch (...) {
      compile_error = std::current_exception();
    }
    const Dataset train_set = train_load.get();
    const Dataset test_set = test_load.get();
    if (compile_error) std::rethrow_exception(compile_error);
    for (const std::string* line : {&train_summary, &test_summary})
      if (!line->empty() && rank0) fmt::print("{}\n", *line);
    // CIFAR and folders say how many classes they hold: a preset's last layer follows them, a
    // model file must already agree.
    if (resolve_format(a.data, a.data_format) != "idx" && train_set.classes != network.classes()) {
      if (!preset)
        throw Error(fmt::format(
            "{} holds {} classes but {} has {} outputs: set the model file's \"classes\" and its "
            "last layer's units to {}",
            a.data, train_set.classes, a.model, network.classes(), train_set.classes));
      const int preset_classes = network.classes();
      network = with_classes(network, train_set.classes);
      compiled.emplace(network, options);
      if (rank0)
        fmt::print("{}: {} outputs in {}, one per class of {} (the preset has {})\n",
                   network.name(), network.classes(), network.layers().back().name, a.data,
                   preset_classes);
    }
    const Normalization normalization =
        resolve_normalization(a.mean, a.std_dev, network, a.data, a.data_format, train_set);
    Model& model = *compiled;
    if (!a.profile_steps.empty()) {
      const ProfileSteps steps = ProfileSteps::parse(a.profile_steps);
      model.set_profile_steps(steps.first, steps.last);
    }
    TrainOptions t;
    t.optimizer =
        OptimizerParams{0.02f * float(options.batch_size) / 64.0f, a.momentum, a.weight_decay};
    t.schedule = LrSchedule::parse(a.schedule);
    recipe.apply(t);
    t.normalization = normalization;
    // Printed once the checkpoint to resume from and the data are checked: a bad file gives the
    // error line alone.
    t.on_start = [&](int) {
      if (options.communicator) {
        const Communicator& ranks = *options.communicator;
        const RankSlice share = rank_slice(options.batch_size, ranks.rank(), ranks.size());
        fmt::print("rank {} of {} ({}): images {}..{} of each batch of {}\n", ranks.rank(),
                   ranks.size(), ranks.describe(), share.begin, share.end - 1, options.batch_size);
        std::fflush(stdout);
        if (!rank0) return;
      }
      const OptimizerParams& o = t.optimizer;
      const std::string settings = o.uses_second_moment()
                                       ? fmt::format("betas {},{}", o.beta1, o.beta2)
                                       : fmt::format("momentum {}", o.momentum);
      fmt::print(
          "training {} on {} ({} train / {} test images) on {}, batch {}, {} epochs, {} lr {} "
          "({}{}), {}, {} init\n",
          network.name(), a.data, train_set.count, test_set.count, to_string(options.device),
          options.batch_size, t.epochs, to_string(o.kind), o.lr,
          recipe.schedule.value_or(a.schedule),
          t.schedule.warmup_epochs > 0 ? fmt::format(", warm-up {}", t.schedule.warmup_epochs) : "",
          settings, a.init);
    };
    t.checkpoint_path = a.checkpoint;
    t.resume_path = a.resume;
    t.metrics_path = a.metrics;
    t.progress_bar = isatty(STDOUT_FILENO) != 0;
    t.stop = &stop_requested;
    std::unique_ptr<TrainingPlots> plots;
    if (!a.plots.empty() && rank0)
      plots = std::make_unique<TrainingPlots>(a.plots, test_set, t.normalization);
    t.tensorboard_dir = a.tensorboard;
    const EpochReport last = train(model, train_set, test_set, t, [&](const EpochReport& report) {
      if (plots) plots->add_epoch(model, report);
    });
    if (last.stopped) throw interrupted(last, a.checkpoint);
    if (!rank0) return;
    if (plots) fmt::print("plots written to {}\n", a.plots);
    if (!a.tensorboard.empty()) fmt::print("TensorBoard events written to {}\n", a.tensorboard);
    fmt::print("final test accuracy {:.4f} after {} epochs ({:.1f} s since start)\n",
               last.test.accuracy(), last.epoch, last.wall_seconds);
  });
}

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate saved weights on the test set");
  TrainArgs& a = *args;
  add_common(cmd, a);
  add_weights_option(cmd, a.weights);
  cmd->add_option("--tta", a.tta,
                  "Test-time augmentation: flip classifies by the mean softmax of each image and "
                  "its mirror; none")
      ->check(parsed_by(parse_test_time_augment, "TTA"))
      ->capture_default_str();
  cmd->callback([args, cmd] {
    TrainArgs a = *args;
    a.data_format.seed = a.seed, a.data_format.threads = a.threads;
    const Network network = network_for_weights(*cmd, a.model, a.weights);
    Model model(network, compile_options(a));
    load_checkpoint(a.weights, model, false);
    // The checkpoint's normalisation (load_checkpoint set it), as training applied it.
    const Dataset test_set = load_split(a.data, false, a.test_limit, network, a.data_format);
    model.upload_eval_set(test_set);
    const BatchStats stats = model.evaluate_resident(parse_test_time_augment(a.tta));
    fmt::print("accuracy {:.4f} loss {:.4f} images {}\n", stats.accuracy(), stats.mean_loss(),
               stats.samples);
  });
}

}  // namespace cnnrt::cli
