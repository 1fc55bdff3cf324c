// Optimizer names and settings, the per-step scalars and the learning-rate schedules
// (include/cnnrt/optimizer.hpp).
#include "cnnrt/optimizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cnnrt/error.hpp"

namespace cnnrt {

namespace {
constexpr OptimizerKind kKinds[] = {OptimizerKind::sgd, OptimizerKind::nesterov,
                                    OptimizerKind::adam, OptimizerKind::adamw};
constexpr double kPi = 3.14159265358979323846;
}  // namespace

const char* to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::nesterov:
      return "nesterov";
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::sgd:
      break;
  }
  return "sgd";
}

OptimizerKind parse_optimizer(const std::string& text) {
  for (const OptimizerKind kind : kKinds)
    if (text == to_string(kind)) return kind;
  throw Error(fmt::format("unknown optimizer '{}' (sgd, nesterov, adam, adamw)", text));
}

void OptimizerParams::check() const {
  if (!(lr >= 0.0f) || !(weight_decay >= 0.0f))
    throw Error(
        fmt::format("the learning rate and weight decay must not be negative (lr {}, "
                    "weight decay {})",
                    lr, weight_decay));
  if (!(momentum >= 0.0f && momentum <= 1.0f))
    throw Error(fmt::format("momentum must be in [0, 1], got {}", momentum));
  if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
    throw Error(fmt::format("Adam's betas must be in [0, 1), got {} and {}", beta1, beta2));
  if (!(eps > 0.0f) || !std::isfinite(eps))
    throw Error(fmt::format("Adam's eps must be positive, got {}", eps));
}

StepScalars StepScalars::at(const OptimizerParams& params, float lr, unsigned long long step) {
  StepScalars s;
  s.lr = lr;
  if (params.uses_second_moment()) {
    const double t = double(step);
    s.step_size = float(double(lr) / (1.0 - std::pow(double(params.beta1), t)));
    s.bias_correction2_sqrt = float(std::sqrt(1.0 - std::pow(double(params.beta2), t)));
  }
  if (params.kind == OptimizerKind::adamw)
    s.decay_factor = float(1.0 - double(lr) * double(params.weight_decay));
  return s;
}

float LrSchedule::rate(float base_lr, int epoch, int step, int steps_per_epoch,
                       int total_epochs) const {
  const double per_epoch = double(std::max(steps_per_epoch, 1));
  const double g = double(epoch) * per_epoch + double(step);  // global step, 0-based
  const double total = double(std::max(total_epochs, 1)) * per_epoch;
  float lr = base_lr;
  switch (kind) {
    case Kind::constant:
      break;
    case Kind::step:
      lr = base_lr * std::pow(gamma, float(epoch / std::max(step_epochs, 1)));
      break;
    case Kind::cosine:
      // Float, per epoch: the rates of the runs before the per-step schedules, bit for bit.
      lr = total_epochs <= 1
               ? base_lr
               : base_lr * 0.5f *
                     (1.0f + std::cos(3.14159265358979f * float(epoch) / float(total_epochs)));
      break;
    case Kind::linear:
      lr = float(double(base_lr) * (1.0 - g / total));
      break;
    case Kind::onecycle: {
      const double max_lr = base_lr, initial = max_lr / 25.0, final_lr = initial / 1e4;
      const double peak = double(float(double(pct_start) * total)) - 1.0;  // PyTorch's end_step
      auto anneal = [](double from, double to, double pct) {
        return to + (from - to) / 2.0 * (std::cos(kPi * pct) + 1.0);
      };
      auto fraction = [](double at, double from, double to) {
        return to > from ? std::min((at - from) / (to - from), 1.0) : 1.0;
      };
      lr = float(g <= peak ? anneal(initial, max_lr, fraction(g, 0.0, peak))
                           : anneal(max_lr, final_lr, fraction(g, peak, total - 1.0)));
      break;
    }
  }
  const double warmup_steps = std::round(double(warmup_epochs) * per_epoch);
  if (warmup_steps > 0 && g < warmup_steps) lr = float(double(lr) * (g + 1.0) / warmup_steps);
  return lr;
}

LrSchedule LrSchedule::parse(const std::string& text) {
  LrSchedule s;
  if (text == "constant") return s;
  if (text == "cosine" || text == "linear" || text == "onecycle") {
    s.kind = text == "cosine" ? Kind::cosine : text == "linear" ? Kind::linear : Kind::onecycle;
    return s;
  }
  int epochs = 0;
  float value = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "step:%d:%f%c", &epochs, &value, &tail) == 2 && epochs > 0 &&
      value > 0) {
    s.kind = Kind::step;
    s.step_epochs = epochs;
    s.gamma = value;
    return s;
  }
  if (std::sscanf(text.c_str(), "onecycle:%f%c", &value, &tail) == 1 && value > 0 && value < 1) {
    s.kind = Kind::onecycle;
    s.pct_start = value;
    return s;
  }
  throw Error(fmt::format(
      "unknown learning-rate schedule '{}' (constant, cosine, linear, onecycle, onecycle:PCT with "
      "0 < PCT < 1, or step:EPOCHS:GAMMA)",
      text));
}

}  // namespace cnnrt
