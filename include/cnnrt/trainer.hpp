#pragma once
// The training loop: epochs over a resident training set, evaluation after each epoch, learning-
// rate schedule, metrics CSV, checkpoints and resume (also inside an epoch), a stop on request
// between steps, and a stop on divergence that names the step.
#include <atomic>
#include <functional>
#include <string>

#include "cnnrt/dataset.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/optimizer.hpp"

namespace cnnrt {

struct CNNRT_API TrainOptions {
  int epochs = 10;
  // SGD, momentum 0.9: the tool's default at batch 256 (lr 0.02 * batch / 64). lr is the base
  // rate the schedule scales per step.
  OptimizerParams optimizer{0.08f, 0.9f, 0.0f};
  LrSchedule schedule{LrSchedule::Kind::cosine};
  float label_smoothing = 0.0f;  // in [0, 1), see Model::set_label_smoothing
  // Applied to every batch (Model::set_normalization) and recorded in the checkpoint; the IDX
  // default unless set (the CLI computes it from the training set for other formats).
  Normalization normalization;
  std::string augment;  // training batches, as parse_augmentation reads it ("crop:4,flip"); off
  std::string checkpoint_path;  // written after every epoch when set
  std::string resume_path;      // continue from this checkpoint when set
  std::string metrics_path;     // CSV, one row per epoch, when set
  // TensorBoard events (TensorBoardWriter), when set: a new event file in this directory with,
  // after every epoch (step = epoch), the scalars loss/train, loss/test, accuracy/train,
  // accuracy/test, learning_rate and images_per_second, and the first convolution's kernels as
  // the image "<layer>.weight".
  std::string tensorboard_dir;
  bool progress_bar = false;  // a live bar on stdout (for terminals)
  bool quiet = false;         // no per-epoch lines
  // Read on the host between steps (no device synchronisation). Once true, the run ends after the
  // step in flight: the checkpoint (when checkpoint_path is set) records the position inside the
  // epoch, and train() returns a report with `stopped` set. Resuming from that checkpoint gives
  // the same bits as a run that was never stopped.
  const std::atomic<bool>* stop = nullptr;
  // Called on the host after each step is issued: epoch and step are 1-based.
  std::function<void(int epoch, int step, int steps)> on_step;
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
  // Set when TrainOptions::stop ended the run inside `epoch` after `steps_done` of its `steps`;
  // `train` then covers those steps only and `test` is not evaluated.
  bool stopped = false;
  int steps_done = 0;
  int steps = 0;
};

// Trains `model` on `train`, evaluating on `test` after each epoch. Returns the last epoch's
// report. Throws cnnrt::Error when the loss becomes NaN or infinite, naming the epoch and the step
// (the last good checkpoint is kept and no metrics row is written for that epoch), or when a file
// cannot be read or written; the checkpoint and metrics paths are checked before the first step.
CNNRT_API EpochReport train(Model& model, const Dataset& train, const Dataset& test,
                            const TrainOptions& options,
                            const std::function<void(const EpochReport&)>& on_epoch = {});

// Throws cnnrt::Error naming `what`, `path` and the system's reason when the file could not be
// written: a missing or unwritable directory, a parent that is not a directory, a directory in
// the way. `via_temporary`: the file is written as path + ".tmp" and renamed into place (as
// checkpoints are). Leaves no file behind.
CNNRT_API void check_can_write(const std::string& path, const std::string& what,
                               bool via_temporary);

// Seconds since the process started (from /proc/self/stat where available).
CNNRT_API double process_uptime_seconds();

}  // namespace cnnrt
