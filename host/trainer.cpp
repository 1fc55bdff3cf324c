#include "cnnrt/trainer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/plots.hpp"
#include "cnnrt/tensorboard.hpp"
#include "host/profiling.hpp"

namespace cnnrt {

double process_uptime_seconds() {
  // Field 22 of /proc/self/stat is the start time in clock ticks since boot.
  std::ifstream stat("/proc/self/stat");
  std::ifstream uptime_file("/proc/uptime");
  std::string content;
  double uptime = 0;
  if (stat && std::getline(stat, content) && (uptime_file >> uptime)) {
    const auto close = content.rfind(')');
    if (close != std::string::npos) {
      std::istringstream fields(content.substr(close + 2));
      std::string field;
      for (int i = 3; i <= 22 && (fields >> field); ++i) {
        if (i == 22) {
          const double ticks = double(sysconf(_SC_CLK_TCK));
          return uptime - std::stod(field) / ticks;
        }
      }
    }
  }
  static const auto first_call = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - first_call).count();
}

namespace {

class MetricsCsv {
 public:
  MetricsCsv(const std::string& path, bool append) : path_(path) {
    if (path.empty()) return;
    // A resumed run appends to its metrics, but a file it starts still needs the header.
    const bool has_rows = append && std::ifstream(path).peek() != std::ifstream::traits_type::eof();
    errno = 0;
    file_.open(path, append ? std::ios::app : std::ios::trunc);
    if (!file_)
      throw Error(fmt::format("cannot write the metrics file {}: {}", path,
                              errno != 0 ? std::strerror(errno) : "cannot open"));
    if (!has_rows)
      file_ << "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s\n";
  }
  void write(const EpochReport& r) {
    if (!file_.is_open()) return;
    errno = 0;
    file_ << fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.4f},{:.1f},{:.4f}\n", r.epoch,
                         r.train.mean_loss(), r.train.accuracy(), r.test.mean_loss(),
                         r.test.accuracy(), r.seconds, r.images_per_second, r.wall_seconds);
    file_.flush();
    if (!file_)
      throw Error(fmt::format("writing the metrics file {} failed: {}", path_,
                              errno != 0 ? std::strerror(errno) : "stream error"));
  }

 private:
  std::string path_;
  std::ofstream file_;
};

void draw_progress(int epoch, int epochs, int step, int steps, const BatchStats& running) {
  constexpr int kWidth = 30;
  const int filled = steps > 0 ? step * kWidth / steps : kWidth;
  std::string bar(static_cast<std::size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  std::string stats;
  if (running.samples > 0)
    stats = fmt::format(" loss {:.4f} acc {:.4f}", running.mean_loss(), running.accuracy());
  fmt::print("\repoch {}/{} [{}] {}/{}{}", epoch, epochs, bar, step, steps, stats);
  std::fflush(stdout);
}

// The step of `epoch` (1-based) after which the running loss sum first stopped being finite, or 0
// when it did not happen again.
//
// Why a re-run: the loss is read once per epoch (on CUDA it accumulates on the device, and a read
// after every step would stall the replayed step graphs), so divergence shows at the epoch's end.
// train() keeps a host copy of the state at the epoch's start (2 x parameters, one transfer each
// per epoch, nothing per step); this puts it back and runs the epoch again reading the loss after
// every step. Training is deterministic, so the re-run takes the same steps as the first run.
int locate_divergence(Model& model, int epoch, Model::EpochControl control,
                      const Model::TrainingState& epoch_start) {
  model.restore_training_state(epoch_start);
  control.stop = nullptr;
  control.after_step = nullptr;  // these steps were reported in the first run
  control.stop_on_nonfinite = true;
  const Model::EpochPass pass = model.train_epoch(epoch, control);
  return std::isfinite(pass.stats.loss_sum) ? 0 : pass.steps_done;
}

// The position a checkpoint was stopped at, checked against this run's epoch.
Model::EpochControl resume_position(const CheckpointState& state, const std::string& path,
                                    const Model& model, const Dataset& train_set) {
  Model::EpochControl control;
  const EpochPosition& at = state.within_epoch;
  if (at.steps_done == 0) return control;
  const std::int64_t batch = model.options().batch_size;
  const std::int64_t steps = (train_set.count + batch - 1) / batch;
  if (at.steps_done > steps ||
      at.stats.samples != std::min(at.steps_done * batch, std::int64_t(train_set.count)))
    throw Error(fmt::format(
        "{} stopped in epoch {} after step {} ({} images); this run's epoch of {} images at batch "
        "{} cannot continue it (resume with the same batch size, data and training limit)",
        path, state.epochs_done + 1, at.steps_done, at.stats.samples, train_set.count, batch));
  control.first_step = at.steps_done;
  control.done = at.stats;
  return control;
}

}  // namespace

void check_can_write(const std::string& path, const std::string& what, bool via_temporary) {
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
    throw Error(fmt::format("cannot write the {} {}: it is a directory", what, path));
  const std::string probe = via_temporary ? path + ".tmp" : path;
  // A file written in place that exists already is opened for appending and left as it is;
  // otherwise the file is created and removed again.
  const bool exists = !via_temporary && ::access(path.c_str(), F_OK) == 0;
  const int flags = O_WRONLY | O_CLOEXEC | (exists ? O_APPEND : O_CREAT | O_TRUNC);
  const int fd = ::open(probe.c_str(), flags, 0644);
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    throw Error(fmt::format("cannot write the {} {}: {}{}", what, path, reason,
                            via_temporary ? fmt::format(" (creating {})", probe) : ""));
  }
  ::close(fd);
  if (!exists) ::unlink(probe.c_str());
}

namespace {

void write_events(TensorBoardWriter& events, const Model& model, const EpochReport& report) {
  const std::int64_t step = report.epoch;
  events.add_scalar("loss/train", step, report.train.mean_loss());
  events.add_scalar("loss/test", step, report.test.mean_loss());
  events.add_scalar("accuracy/train", step, report.train.accuracy());
  events.add_scalar("accuracy/test", step, report.test.accuracy());
  events.add_scalar("learning_rate", step, report.lr);
  events.add_scalar("images_per_second", step, report.images_per_second);
  if (const auto kernels = draw_first_convolution(model))
    events.add_image(kernels->parameter, step, kernels->picture);
  events.flush();
}

std::int64_t bits_of(float value) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// The settings of a run every rank must share (the model's were checked when it was compiled).
void check_ranks_agree_on(Communicator& ranks, const TrainOptions& o) {
  check_ranks_agree(ranks, {{"epochs", o.epochs},
                            {"optimizer", int(o.optimizer.kind)},
                            {"learning rate (float bits)", bits_of(o.optimizer.lr)},
                            {"momentum (float bits)", bits_of(o.optimizer.momentum)},
                            {"weight decay (float bits)", bits_of(o.optimizer.weight_decay)},
                            {"learning-rate schedule", int(o.schedule.kind)},
                            {"warm-up epochs", o.schedule.warmup_epochs},
                            {"label smoothing (float bits)", bits_of(o.label_smoothing)},
                            {"augmentation", setting_hash(o.augment)},
                            {"resuming (0 no, 1 yes)", o.resume_path.empty() ? 0 : 1}});
}

// Rank 0 reads the checkpoint; every rank gets its state, or rank 0's error.
CheckpointState load_on_rank0(Communicator& ranks, const std::string& path, Model& model) {
  CheckpointState state;
  std::string failure;
  if (ranks.rank() == 0) {
    try {
      state = load_checkpoint(path, model);
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  std::int64_t length = std::int64_t(failure.size());
  ranks.broadcast(&length, sizeof(length), 0);
  failure.resize(std::size_t(length));
  ranks.broadcast(failure.data(), failure.size(), 0);
  if (!failure.empty()) throw CollectiveError(failure);
  std::int64_t fields[6] = {state.epochs_done,
                            std::int64_t(state.step_counter),
                            std::int64_t(state.optimizer_steps),
                            state.within_epoch.steps_done,
                            state.within_epoch.stats.correct,
                            state.within_epoch.stats.samples};
  double loss_sum = state.within_epoch.stats.loss_sum;
  ranks.broadcast(fields, sizeof(fields), 0);
  ranks.broadcast(&loss_sum, sizeof(loss_sum), 0);
  state.epochs_done = int(fields[0]);
  state.step_counter = std::uint64_t(fields[1]);
  state.optimizer_steps = std::uint64_t(fields[2]);
  state.within_epoch.steps_done = int(fields[3]);
  state.within_epoch.stats = BatchStats{loss_sum, fields[4], fields[5]};
  Model::TrainingState training = model.training_state();
  for (std::vector<float>* part :
       {&training.parameters, &training.momentum, &training.second_moment, &training.state})
    ranks.broadcast(part->data(), part->size() * sizeof(float), 0);
  training.step_counter = state.step_counter;
  training.optimizer_steps = state.optimizer_steps;
  model.restore_training_state(training);
  return state;
}

}  // namespace

EpochReport train(Model& model, const Dataset& train_set, const Dataset& test_set,
                  const TrainOptions& options,
                  const std::function<void(const EpochReport&)>& on_epoch) {
  if (options.epochs <= 0)
    throw Error(fmt::format("TrainOptions::epochs must be positive, got {}", options.epochs));
  // With ranks, rank 0 alone writes files and prints; the others wait for its checkpoints.
  Communicator* ranks = several_ranks(model.options().communicator);
  const bool writer = ranks == nullptr || ranks->rank() == 0;
  if (ranks != nullptr) check_ranks_agree_on(*ranks, options);
  const bool quiet = options.quiet || !writer;
  // Before anything slow: a path that cannot be written should not cost an epoch.
  if (!options.checkpoint_path.empty() && writer)
    check_can_write(options.checkpoint_path, "checkpoint", true);
  if (!options.metrics_path.empty() && writer)
    check_can_write(options.metrics_path, "metrics file", false);
  auto save = [&](int epochs_done, const EpochPosition& within) {
    if (options.checkpoint_path.empty()) return;
    if (writer) save_checkpoint(options.checkpoint_path, model, epochs_done, within);
    if (ranks != nullptr) ranks->barrier();
  };
  // Before the checkpoint: the optimizer's state it holds must be the one this run continues.
  model.set_optimizer(options.optimizer);
  model.set_label_smoothing(options.label_smoothing);
  int first_epoch = 0;
  Model::EpochControl resume_at;
  if (!options.resume_path.empty()) {
    const CheckpointState state = ranks != nullptr
                                      ? load_on_rank0(*ranks, options.resume_path, model)
                                      : load_checkpoint(options.resume_path, model);
    first_epoch = state.epochs_done;
    resume_at = resume_position(state, options.resume_path, model, train_set);
    if (first_epoch >= options.epochs)
      throw Error(fmt::format(
          "{} already has {} epochs; ask for more than that with TrainOptions::epochs (now {})",
          options.resume_path, first_epoch, options.epochs));
  }
  model.set_normalization(options.normalization);
  // Names for every output only (a model may have more outputs than the data has classes).
  if (int(train_set.class_names.size()) == model.network().classes())
    model.set_class_names(train_set.class_names);
  model.set_augmentation(parse_augmentation(options.augment));
  model.upload_train_set(train_set);
  model.upload_eval_set(test_set);
  if (options.on_start) options.on_start(first_epoch);
  if (!options.resume_path.empty() && !quiet) {
    if (resume_at.first_step > 0)
      fmt::print("resumed from {} in epoch {} after step {}\n", options.resume_path,
                 first_epoch + 1, resume_at.first_step);
    else
      fmt::print("resumed from {} after epoch {}\n", options.resume_path, first_epoch);
  }
  MetricsCsv metrics(writer ? options.metrics_path : "", !options.resume_path.empty());
  std::unique_ptr<TensorBoardWriter> events;
  if (!options.tensorboard_dir.empty() && writer)
    events = std::make_unique<TensorBoardWriter>(options.tensorboard_dir);
  const std::string kept =
      options.checkpoint_path.empty()
          ? ""
          : fmt::format("the last good checkpoint {} is kept; ", options.checkpoint_path);

  EpochReport report;
  for (int epoch = first_epoch; epoch < options.epochs; ++epoch) {
    ScopedRange range(fmt::format("epoch {}", epoch + 1));
    Model::EpochControl control = epoch == first_epoch ? resume_at : Model::EpochControl{};
    const int batch = model.options().batch_size;
    const int steps = (train_set.count + batch - 1) / batch;
    control.step_lr.resize(std::size_t(steps));
    for (int k = 0; k < steps; ++k)
      control.step_lr[std::size_t(k)] =
          options.schedule.rate(options.optimizer.lr, epoch, k, steps, options.epochs);
    control.stop = options.stop;
    if (options.on_step)
      control.after_step = [&, epoch](int step, int steps) {
        options.on_step(epoch + 1, step, steps);
      };
    const Model::TrainingState epoch_start = model.training_state();  // see locate_divergence
    const auto start = std::chrono::steady_clock::now();
    Model::Progress progress;
    if (options.progress_bar && writer)
      progress = [&](int step, int steps, const BatchStats& running) {
        if (step == steps || step % 8 == 0)
          draw_progress(epoch + 1, options.epochs, step, steps, running);
      };
    const Model::EpochPass pass = model.train_epoch(epoch, control, progress);
    report = EpochReport{};
    report.train = pass.stats;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.progress_bar && writer) fmt::print("\r{:80}\r", "");

    report.epoch = epoch + 1;
    report.lr = control.step_lr[std::size_t(control.first_step < steps ? control.first_step : 0)];
    report.steps = pass.steps;
    report.steps_done = pass.steps_done;
    const double trained = double(pass.stats.samples - control.done.samples);
    report.images_per_second = report.seconds > 0 ? trained / report.seconds : 0.0;
    const double loss = report.train.mean_loss();
    if (!std::isfinite(pass.stats.loss_sum)) {
      const int step = locate_divergence(model, epoch, control, epoch_start);
      const std::string where =
          step > 0 ? fmt::format("in epoch {} at step {} of {}", report.epoch, step, pass.steps)
                   : fmt::format(
                         "in epoch {} (a step-by-step re-run of the epoch did not "
                         "reproduce it)",
                         report.epoch);
      const std::string message = fmt::format(
          "training diverged {}: the loss is {} (lr {}); {}try a smaller "
          "TrainOptions::optimizer.lr",
          where, loss, report.lr, kept);
      if (ranks != nullptr) throw CollectiveError(message);  // the loss is the ranks' sum
      throw Error(message);
    }
    std::int64_t stop = options.stop != nullptr && options.stop->load(std::memory_order_relaxed);
    if (ranks != nullptr) ranks->max(&stop, 1);  // every rank stops, or none
    if (stop != 0) {
      report.stopped = true;
      report.wall_seconds = process_uptime_seconds();
      save(epoch, EpochPosition{pass.steps_done, pass.stats});
      return report;
    }
    report.test = model.evaluate_resident();
    report.wall_seconds = process_uptime_seconds();

    save(report.epoch, EpochPosition{});
    metrics.write(report);
    if (events) write_events(*events, model, report);
    if (!quiet)
      fmt::print(
          "epoch {}/{}  loss {:.4f}  train_acc {:.4f}  test_loss {:.4f}  test_acc {:.4f}  "
          "{:.2f} s  {:.0f} img/s\n",
          report.epoch, options.epochs, loss, report.train.accuracy(), report.test.mean_loss(),
          report.test.accuracy(), report.seconds, report.images_per_second);
    std::fflush(stdout);
    if (on_epoch) on_epoch(report);
  }
  return report;
}

}  // namespace cnnrt
