#pragma once
// Checkpoints: safetensors files with PyTorch's names and shapes ("conv1.weight" [6, 1, 5, 5],
// "fc1.weight" [120, 400], ...), the optimizer's momentum ("<name>.momentum") and, in the header's
// metadata, the epoch, the step counter and the model description. Written to a temporary file
// and renamed into place, so a crash mid-write leaves the previous checkpoint intact.
#include <cstdint>
#include <string>

#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt {

struct CNNRT_API CheckpointState {
  int epochs_done = 0;  // completed epochs
  std::uint64_t step_counter = 0;
  bool has_momentum = false;
};

CNNRT_API void save_checkpoint(const std::string& path, const Model& model, int epochs_done);
// Loads weights (and momentum and progress when present) into a compiled model; every tensor name
// and shape is checked against the model. Weights-only files (no momentum) are accepted.
CNNRT_API CheckpointState load_checkpoint(const std::string& path, Model& model);

}  // namespace cnnrt
