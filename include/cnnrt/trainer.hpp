#pragma once
// The training loop: epochs over a resident training set, evaluation after each epoch, learning-
// rate schedule, metrics CSV, checkpoints and resume, and a stop on divergence.
#include <functional>
#include <string>

#include "cnnrt/dataset.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/optimizer.hpp"

namespace cnnrt {

struct CNNRT_API TrainOptions {
  int epochs = 10;
  SgdParams sgd{0.08f, 0.9f, 0.0f};  // the tool's default at batch 256 (0.02 * batch / 64)
  LrSchedule schedule{LrSchedule::Kind::cosine};
  float normalize_mean = kFashionMnistMean;
  float normalize_std = kFashionMnistStd;
  std::string checkpoint_path;  // written after every epoch when set
  std::string resume_path;      // continue from this checkpoint when set
  std::string metrics_path;     // CSV, one row per epoch, when set
  bool progress_bar = false;    // a live bar on stdout (for terminals)
  bool quiet = false;           // no per-epoch lines
  // Called once everything is loaded and checked (the resumed checkpoint, the data sets), just
  // before the first epoch, with the number of epochs already done: the place to announce the
  // run, so that a bad input file gives an error and nothing else.
  std::function<void(int first_epoch)> on_start;
};

struct CNNRT_API EpochReport {
  int epoch = 0;  // 1-based
  BatchStats train, test;
  double seconds = 0;  // training pass only
  double images_per_second = 0;
  double wall_seconds = 0;  // since the process started, at the end of this epoch
  float lr = 0;
};

// Trains `model` on `train`, evaluating on `test` after each epoch. Returns the last epoch's
// report. Throws cnnrt::Error when the loss becomes NaN or infinite (the last good checkpoint is
// kept) or when a file cannot be read or written.
CNNRT_API EpochReport train(Model& model, const Dataset& train, const Dataset& test,
                            const TrainOptions& options,
                            const std::function<void(const EpochReport&)>& on_epoch = {});

// Seconds since the process started (from /proc/self/stat where available).
CNNRT_API double process_uptime_seconds();

}  // namespace cnnrt
