#pragma once
// Checkpoints: safetensors files with PyTorch's names and shapes ("conv1.weight" [6, 1, 5, 5],
// "fc1.weight" [120, 400], ...), the optimizer's state (PyTorch's names: "<name>.momentum" for sgd
// and nesterov, "<name>.exp_avg" and "<name>.exp_avg_sq" for adam and adamw) and, in the header's
// metadata, the epoch, the step counter, the optimizer's name and update count ("optimizer",
// "optimizer_steps"), the model description, the data's description (input_size "CxHxW",
// normalization_mean and normalization_std as comma lists, class_names as a JSON list when the
// model has names) and, for a run stopped inside an epoch, the position in it. Written to a
// temporary file and renamed into place, so a crash mid-write leaves the previous checkpoint
// intact.
#include <cstdint>
#include <string>

#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt {

// A position inside an epoch: the steps taken and the exact sums over their images, so that a
// resumed epoch reports what an uninterrupted one would.
struct CNNRT_API EpochPosition {
  int steps_done = 0;
  BatchStats stats;
};

struct CNNRT_API CheckpointState {
  int epochs_done = 0;  // completed epochs
  std::uint64_t step_counter = 0;
  std::uint64_t optimizer_steps = 0;
  std::string optimizer;       // whose state the file holds; empty for a weights-only file
  bool has_momentum = false;   // the optimizer's state was loaded
  EpochPosition within_epoch;  // in epoch epochs_done + 1; steps_done 0 at an epoch boundary
};

// `within_epoch` is recorded only when it has steps (metadata epoch_steps_done, epoch_loss_sum,
// epoch_correct, epoch_samples), so a checkpoint at an epoch boundary is the same file whichever
// way the run got there.
CNNRT_API void save_checkpoint(const std::string& path, const Model& model, int epochs_done,
                               const EpochPosition& within_epoch = {});
// Weights only, for other frameworks: the parameters and the layers' state (batch norm's
// running_mean, running_var and num_batches_tracked, the last as PyTorch's I64) under PyTorch's
// names, and the model, data and class metadata of a checkpoint; no optimizer state or progress.
// PyTorch's load_state_dict(strict=True) takes its tensors into the equivalent module, and
// load_checkpoint reads it back. Written through a temporary file as checkpoints are.
CNNRT_API void save_weights(const std::string& path, const Model& model);
// Loads weights (and the optimizer's state and progress when present) into a compiled model; every
// tensor name and shape is checked against the model. Weights-only files are accepted. The
// optimizer's state goes to the model's optimizer (set it first, Model::set_optimizer): state of
// another optimizer is an error naming both. with_optimizer_state false: weights only (evaluation,
// prediction), whatever optimizer the file holds. The model's normalisation and class names become
// the file's; a file written before they were recorded gives the IDX default normalisation
// (kIdxDefaultMean, kIdxDefaultStd) and no names.
CNNRT_API CheckpointState load_checkpoint(const std::string& path, Model& model,
                                          bool with_optimizer_state = true);

}  // namespace cnnrt
