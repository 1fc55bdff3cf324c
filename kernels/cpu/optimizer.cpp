// CPU reference SGD, Nesterov SGD, Adam and AdamW (PyTorch's conventions, see OptimizerParams).
#include "kernels/cpu/optimizer.hpp"

#include <cmath>

namespace cnnrt::cpu {

namespace {

// param, grad, velocity: [count]
template <typename T>
void sgd(const OptimizerParams& params, T lr, bool nesterov, std::size_t count, T* param,
         const T* grad, T* velocity) {
  const T momentum = T(params.momentum), decay = T(params.weight_decay);
  for (std::size_t i = 0; i < count; ++i) {
    const T d = grad[i] + decay * param[i];
    velocity[i] = momentum * velocity[i] + d;
    param[i] -= lr * (nesterov ? d + momentum * velocity[i] : velocity[i]);
  }
}

// param, grad, m, s: [count]
template <typename T>
void adam(const OptimizerParams& params, const StepScalars& step, bool decoupled, std::size_t count,
          T* param, const T* grad, T* m, T* s) {
  const T b1 = T(params.beta1), b2 = T(params.beta2), eps = T(params.eps);
  const T decay = T(params.weight_decay), step_size = T(step.step_size);
  const T bc2_sqrt = T(step.bias_correction2_sqrt), factor = T(step.decay_factor);
  for (std::size_t i = 0; i < count; ++i) {
    T p = param[i];
    T g = grad[i];
    if (decoupled) {
      if (decay != T(0)) p *= factor;
    } else {
      g += decay * p;
    }
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    s[i] = b2 * s[i] + (T(1) - b2) * g * g;
    const T denom = std::sqrt(s[i]) / bc2_sqrt + eps;
    param[i] = p - step_size * (m[i] / denom);
  }
}

}  // namespace

template <typename T>
void optimizer_update(const OptimizerParams& params, const StepScalars& step, std::size_t count,
                      T* param, const T* grad, T* first, T* second) {
  switch (params.kind) {
    case OptimizerKind::sgd:
    case OptimizerKind::nesterov:
      sgd(params, T(step.lr), params.kind == OptimizerKind::nesterov, count, param, grad, first);
      return;
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      adam(params, step, params.kind == OptimizerKind::adamw, count, param, grad, first, second);
      return;
  }
}

template void optimizer_update<float>(const OptimizerParams&, const StepScalars&, std::size_t,
                                      float*, const float*, float*, float*);
template void optimizer_update<double>(const OptimizerParams&, const StepScalars&, std::size_t,
                                       double*, const double*, double*, double*);

}  // namespace cnnrt::cpu
