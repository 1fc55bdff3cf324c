#include "cnnrt/trainer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
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
    file_.open(path, append ? std::ios::app : std::ios::trunc);
    if (!file_) throw Error(fmt::format("cannot write metrics file {}", path));
    if (!has_rows)
      file_ << "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s\n";
  }
  void write(const EpochReport& r) {
    if (!file_.is_open()) return;
    file_ << fmt::format("{},{:.6f},{:.6f},{:.6f},{:.6f},{:.4f},{:.1f},{:.4f}\n", r.epoch,
                         r.train.mean_loss(), r.train.accuracy(), r.test.mean_loss(),
                         r.test.accuracy(), r.seconds, r.images_per_second, r.wall_seconds);
    file_.flush();
    if (!file_) throw Error(fmt::format("writing metrics file {} failed", path_));
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

}  // namespace

EpochReport train(Model& model, const Dataset& train_set, const Dataset& test_set,
                  const TrainOptions& options,
                  const std::function<void(const EpochReport&)>& on_epoch) {
  if (options.epochs <= 0)
    throw Error(fmt::format("--epochs must be positive, got {}", options.epochs));
  int first_epoch = 0;
  if (!options.resume_path.empty()) {
    const CheckpointState state = load_checkpoint(options.resume_path, model);
    first_epoch = state.epochs_done;
    if (first_epoch >= options.epochs)
      throw Error(fmt::format("{} already has {} epochs; ask for more than that with --epochs",
                              options.resume_path, first_epoch));
  }
  model.set_normalization(options.normalize_mean, options.normalize_std);
  model.upload_train_set(train_set);
  model.upload_eval_set(test_set);
  if (options.on_start) options.on_start(first_epoch);
  if (!options.resume_path.empty() && !options.quiet)
    fmt::print("resumed from {} after epoch {}\n", options.resume_path, first_epoch);
  MetricsCsv metrics(options.metrics_path, first_epoch > 0);

  EpochReport report;
  for (int epoch = first_epoch; epoch < options.epochs; ++epoch) {
    ScopedRange range(fmt::format("epoch {}", epoch + 1));
    SgdParams sgd = options.sgd;
    sgd.lr = options.schedule.rate(options.sgd.lr, epoch, options.epochs);
    model.set_sgd(sgd);

    const auto start = std::chrono::steady_clock::now();
    Model::Progress progress;
    if (options.progress_bar)
      progress = [&](int step, int steps, const BatchStats& running) {
        if (step == steps || step % 8 == 0)
          draw_progress(epoch + 1, options.epochs, step, steps, running);
      };
    report.train = model.train_epoch(epoch, progress);
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.progress_bar) fmt::print("\r{:80}\r", "");

    report.epoch = epoch + 1;
    report.lr = sgd.lr;
    report.images_per_second = report.seconds > 0 ? train_set.count / report.seconds : 0.0;
    const double loss = report.train.mean_loss();
    if (!std::isfinite(loss))
      throw Error(fmt::format(
          "training diverged in epoch {}: the loss is {} (lr {}); {}try a smaller --lr",
          report.epoch, loss, sgd.lr,
          options.checkpoint_path.empty()
              ? ""
              : fmt::format("the last good checkpoint {} is kept; ", options.checkpoint_path)));
    report.test = model.evaluate_resident();
    report.wall_seconds = process_uptime_seconds();

    if (!options.checkpoint_path.empty())
      save_checkpoint(options.checkpoint_path, model, report.epoch);
    metrics.write(report);
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
