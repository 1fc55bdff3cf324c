// `cnnrt train` and `cnnrt eval`.
#include <fmt/format.h>
#include <unistd.h>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/trainer.hpp"
#include "host/profiling.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct TrainArgs {
  std::string model = "lenet5";
  std::string data = default_data_dir();
  std::string device = "auto";
  std::string init = "he-uniform";
  std::string gemm = "tiled";
  std::string schedule = "constant";
  int epochs = 10;
  int batch = 256;
  float lr = 0.05f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  std::uint64_t seed = 1;
  int train_limit = 0;
  int test_limit = 0;
  int threads = 0;
  std::string checkpoint, resume, metrics, weights, profile_steps;
  bool no_graphs = false;
};

void add_common(CLI::App* cmd, TrainArgs& a) {
  cmd->add_option("--model", a.model, "Preset name (lenet5, lenet5-classic, alexnet) or JSON file")
      ->capture_default_str();
  cmd->add_option("--data", a.data, "Directory with MNIST-format IDX files")->capture_default_str();
  cmd->add_option("--device", a.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--batch", a.batch, "Batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--test-limit", a.test_limit, "Use only the first N test images (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--gemm", a.gemm, "Dense layers on CUDA: tiled (hand-written) or cublas")
      ->check(CLI::IsMember({"tiled", "cublas"}))
      ->capture_default_str();
  cmd->add_option("--threads", a.threads, "CPU backend threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-graphs", a.no_graphs, "CUDA: launch every kernel of every step (no graph)");
}

CompileOptions compile_options(const TrainArgs& a) {
  CompileOptions o;
  o.device = resolve_device(a.device);
  o.batch_size = a.batch;
  o.seed = a.seed;
  o.init = parse_init_scheme(a.init);
  o.gemm = a.gemm == "cublas" ? GemmBackend::cublas : GemmBackend::tiled;
  o.cpu_threads = a.threads;
  o.cuda_graphs = !a.no_graphs;
  return o;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a model (LeNet-5 on Fashion-MNIST by default)");
  TrainArgs& a = *args;
  add_common(cmd, a);
  cmd->add_option("--epochs", a.epochs, "Epochs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--lr", a.lr, "Learning rate")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--momentum", a.momentum, "SGD momentum")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--weight-decay", a.weight_decay, "L2 weight decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--schedule", a.schedule, "Learning rate schedule: constant, cosine, step:E:G")
      ->capture_default_str();
  cmd->add_option("--init", a.init,
                  "Weight init: he-uniform, he-normal, xavier-uniform, xavier-normal, "
                  "lecun-uniform, lecun-normal")
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed for weights, shuffling and dropout")
      ->capture_default_str();
  cmd->add_option("--train-limit", a.train_limit, "Use only the first N training images (0: all)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--checkpoint", a.checkpoint,
                  "Write a checkpoint (safetensors) after each epoch");
  cmd->add_option("--resume", a.resume, "Continue from a checkpoint");
  cmd->add_option("--metrics", a.metrics, "Write per-epoch metrics as CSV");
  cmd->add_option("--profile-steps", a.profile_steps,
                  "A:B: bracket training steps A..B (0-based) with cudaProfilerStart/Stop for "
                  "Nsight (those steps run without graph replay)");
  cmd->callback([args] {
    const TrainArgs& a = *args;
    const Network network = load_network(a.model);
    const CompileOptions options = compile_options(a);
    const Dataset train_set = load_split(a.data, true, a.train_limit);
    const Dataset test_set = load_split(a.data, false, a.test_limit);
    Model model(network, options);
    if (!a.profile_steps.empty()) {
      const ProfileSteps steps = ProfileSteps::parse(a.profile_steps);
      model.set_profile_steps(steps.first, steps.last);
    }
    fmt::print("training {} on {} ({} train / {} test images) on {}, batch {}, {} epochs\n",
               network.name(), a.data, train_set.count, test_set.count, to_string(options.device),
               options.batch_size, a.epochs);
    TrainOptions t;
    t.epochs = a.epochs;
    t.sgd = SgdParams{a.lr, a.momentum, a.weight_decay};
    t.schedule = LrSchedule::parse(a.schedule);
    t.checkpoint_path = a.checkpoint;
    t.resume_path = a.resume;
    t.metrics_path = a.metrics;
    t.progress_bar = isatty(STDOUT_FILENO) != 0;
    const EpochReport last = train(model, train_set, test_set, t);
    fmt::print("final test accuracy {:.4f} after {} epochs ({:.1f} s since start)\n",
               last.test.accuracy(), last.epoch, last.wall_seconds);
  });
}

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate saved weights on the test set");
  TrainArgs& a = *args;
  add_common(cmd, a);
  cmd->add_option("--weights", a.weights, "Checkpoint or weights file (safetensors)")->required();
  cmd->callback([args] {
    const TrainArgs& a = *args;
    const Network network = load_network(a.model);
    Model model(network, compile_options(a));
    load_checkpoint(a.weights, model);
    const Dataset test_set = load_split(a.data, false, a.test_limit);
    const TrainOptions defaults;
    model.set_normalization(defaults.normalize_mean, defaults.normalize_std);
    model.upload_eval_set(test_set);
    const BatchStats stats = model.evaluate_resident();
    fmt::print("accuracy {:.4f} loss {:.4f} images {}\n", stats.accuracy(), stats.mean_loss(),
               stats.samples);
  });
}

}  // namespace cnnrt::cli
