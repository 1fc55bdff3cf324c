// CPU reference SGD with momentum and weight decay (PyTorch's convention, see SgdParams).
#include "kernels/cpu/optimizer.hpp"

namespace cnnrt::cpu {

// param, grad, velocity: [count]
template <typename T>
void sgd_update(const SgdParams& params, std::size_t count, T* param, const T* grad, T* velocity) {
  const T lr = T(params.lr), momentum = T(params.momentum), decay = T(params.weight_decay);
  for (std::size_t i = 0; i < count; ++i) {
    velocity[i] = momentum * velocity[i] + (grad[i] + decay * param[i]);
    param[i] -= lr * velocity[i];
  }
}

template void sgd_update<float>(const SgdParams&, std::size_t, float*, const float*, float*);
template void sgd_update<double>(const SgdParams&, std::size_t, double*, const double*, double*);

}  // namespace cnnrt::cpu
