#pragma once
// The optimizer's settings and learning-rate schedules.
#include <string>

#include "cnnrt/export.hpp"

namespace cnnrt {

// SGD with momentum and (L2) weight decay, PyTorch's convention:
//   v = momentum * v + (grad + weight_decay * param);  param -= lr * v
struct SgdParams {
  float lr = 0.01f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
};

// The learning rate of each epoch (0-based) from the base rate:
//   constant: lr;  step: lr * gamma^(epoch / step_epochs);  cosine: lr * (1 + cos(pi * epoch /
//   epochs)) / 2
struct CNNRT_API LrSchedule {
  enum class Kind { constant, step, cosine };
  Kind kind = Kind::constant;
  int step_epochs = 10;
  float gamma = 0.1f;

  float rate(float base_lr, int epoch, int total_epochs) const;
  static LrSchedule parse(const std::string& text);  // "constant", "step:EPOCHS:GAMMA", "cosine"
};

}  // namespace cnnrt
