#pragma once
// The optimizer's settings, its per-step scalars and learning-rate schedules.
#include <string>

#include "cnnrt/export.hpp"

namespace cnnrt {

// PyTorch's update conventions (torch.optim), with g the gradient and p the parameter:
//   sgd:      v = momentum * v + (g + wd * p);              p -= lr * v
//   nesterov: v = momentum * v + (g + wd * p);              p -= lr * ((g + wd * p) + momentum * v)
//   adam:     g' = g + wd * p (L2 decay in the gradient);   m = b1 * m + (1 - b1) * g'
//             s = b2 * s + (1 - b2) * g'^2;  p -= lr / (1 - b1^t) * m / (sqrt(s) / sqrt(1 - b2^t)
//             + eps), t the 1-based step count
//   adamw:    p *= 1 - lr * wd (decoupled decay), then adam with g' = g
enum class OptimizerKind { sgd, nesterov, adam, adamw };
CNNRT_API const char* to_string(OptimizerKind kind);
// "sgd", "nesterov", "adam" or "adamw"; throws cnnrt::Error naming the choices otherwise.
CNNRT_API OptimizerKind parse_optimizer(const std::string& text);

struct CNNRT_API OptimizerParams {
  float lr = 0.01f;       // the base rate; a schedule scales it per step
  float momentum = 0.0f;  // sgd, nesterov
  float weight_decay = 0.0f;
  OptimizerKind kind = OptimizerKind::sgd;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // adam, adamw
  // false: tensors of rank <= 1 (biases, batch norm's weight and bias) get no weight decay.
  bool decay_norm_bias = true;

  // Adam's second moment: a second buffer of the parameters' size.
  bool uses_second_moment() const {
    return kind == OptimizerKind::adam || kind == OptimizerKind::adamw;
  }
  // Throws cnnrt::Error naming the setting when one is out of range: lr, weight decay < 0,
  // momentum outside [0, 1], betas outside [0, 1), eps <= 0.
  void check() const;
};

// The scalars of one step that change from step to step, worked out on the host in double (as
// PyTorch does in Python) and read by the update kernel from the backend's memory, so a replayed
// CUDA graph takes each step's values.
struct StepScalars {
  float lr = 0;
  float step_size = 0;              // adam: lr / (1 - b1^t)
  float bias_correction2_sqrt = 0;  // adam: sqrt(1 - b2^t)
  float decay_factor = 1;           // adamw: 1 - lr * wd
  static constexpr int kCount = 4;  // floats in the struct, in this order
  // `step` is t, the 1-based count of updates including this one.
  static StepScalars at(const OptimizerParams& params, float lr, unsigned long long step);
};
static_assert(sizeof(StepScalars) == sizeof(float) * StepScalars::kCount,
              "StepScalars is copied to backend memory as kCount floats");

// The learning rate of each step from the base rate. Epoch e (0-based) of E, step k (0-based) of
// S per epoch, global step g = e * S + k of T = E * S:
//   constant: lr
//   step:     lr * gamma^(e / step_epochs)                        (per epoch)
//   cosine:   lr * (1 + cos(pi * e / E)) / 2                       (per epoch)
//   linear:   lr * (1 - g / T)                                    (per step; PyTorch's LinearLR)
//   onecycle: PyTorch's OneCycleLR (cosine annealing, div_factor 25, final_div_factor 1e4): from
//             lr / 25 up to lr over the first pct_start of the steps, then down to lr / 2.5e5
// Warm-up (per step) multiplies any of them by (g + 1) / W for g < W, W = warmup_epochs * S steps.
struct CNNRT_API LrSchedule {
  enum class Kind { constant, step, cosine, linear, onecycle };
  Kind kind = Kind::constant;
  int step_epochs = 10;
  float gamma = 0.1f;
  float pct_start = 0.3f;      // onecycle
  float warmup_epochs = 0.0f;  // may be fractional

  float rate(float base_lr, int epoch, int step, int steps_per_epoch, int total_epochs) const;
  // The rate at the first step of `epoch`.
  float rate(float base_lr, int epoch, int total_epochs) const {
    return rate(base_lr, epoch, 0, 1, total_epochs);
  }
  // "constant", "step:EPOCHS:GAMMA", "cosine", "linear", "onecycle" or "onecycle:PCT" (0 < PCT
  // < 1); warm-up is set apart (warmup_epochs).
  static LrSchedule parse(const std::string& text);
};

}  // namespace cnnrt
