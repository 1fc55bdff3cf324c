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

}  // namespace

EpochReport train(Model& model, const Dataset& train_set, const Dataset& test_set,
                  const TrainOptions& options,
                  const std::function<void(const EpochReport&)>& on_epoch) {
  if (options.epochs <= 0)
    throw Error(fmt::format("TrainOptions::epochs must be positive, got {}", options.epochs));
  // Before anything slow: a path that cannot be written should not cost an epoch.
  if (!options.checkpoint_path.empty())
    check_can_write(options.checkpoint_path, "checkpoint", true);
  if (!options.metrics_path.empty()) check_can_write(options.metrics_path, "metrics file", false);
  // Before the checkpoint: the optimizer's state it holds must be the one this run continues.
  model.set_optimizer(options.optimizer);
  model.set_label_smoothing(options.label_smoothing);
  int first_epoch = 0;
  Model::EpochControl resume_at;
  if (!options.resume_path.empty()) {
    const CheckpointState state = load_checkpoint(options.resume_path, model);
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
  if (!options.resume_path.empty() && !options.quiet) {
    if (resume_at.first_step > 0)
      fmt::print("resumed from {} in epoch {} after step {}\n", options.resume_path,
                 first_epoch + 1, resume_at.first_step);
    else
      fmt::print("resumed from {} after epoch {}\n", options.resume_path, first_epoch);
  }
  MetricsCsv metrics(options.metrics_path, !options.resume_path.empty());
  std::unique_ptr<TensorBoardWriter> events;
  if (!options.tensorboard_dir.empty())
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
    if (options.progress_bar)
      progress = [&](int step, int steps, const BatchStats& running) {
        if (step == steps || step % 8 == 0)
          draw_progress(epoch + 1, options.epochs, step, steps, running);
      };
    const Model::EpochPass pass = model.train_epoch(epoch, control, progress);
    report = EpochReport{};
    report.train = pass.stats;
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.progress_bar) fmt::print("\r{:80}\r", "");

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
      throw Error(
          fmt::format("training diverged {}: the loss is {} (lr {}); {}try a smaller "
                      "TrainOptions::optimizer.lr",
                      where, loss, report.lr, kept));
    }
    if (options.stop != nullptr && options.stop->load(std::memory_order_relaxed)) {
      report.stopped = true;
      report.wall_seconds = process_uptime_seconds();
      if (!options.checkpoint_path.empty())
        save_checkpoint(options.checkpoint_path, model, epoch,
                        EpochPosition{pass.steps_done, pass.stats});
      return report;
    }
    report.test = model.evaluate_resident();
    report.wall_seconds = process_uptime_seconds();

    if (!options.checkpoint_path.empty())
      save_checkpoint(options.checkpoint_path, model, report.epoch);
    metrics.write(report);
    if (events) write_events(*events, model, report);
    if (!options.quiet)
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
