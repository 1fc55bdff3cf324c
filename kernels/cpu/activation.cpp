// CPU reference activations (docs/math.md section 2).
#include "kernels/cpu/activation.hpp"

#include <cmath>

namespace cnnrt::cpu {

template <typename T>
T activate(Activation kind, T leaky_slope, T z) {
  switch (kind) {
    case Activation::none:
      return z;
    case Activation::relu:
      return z >= T(0) ? z : T(0);
    case Activation::leaky_relu:
      // max(slope * z, z) for a slope in [0, 1), written so any slope keeps the z >= 0 split.
      return z >= T(0) ? z : leaky_slope * z;
    case Activation::sigmoid:
      // exp(-z) overflows to inf for very negative z, giving exactly 0: no NaN.
      return T(1) / (T(1) + std::exp(-z));
  }
  return z;
}

// z: [count] -> a: [count]. One loop per kind, the kind chosen outside it, so the compiler can
// vectorise the loop; each element gets activate()'s expression, so the bits are activate()'s.
template <typename T>
void activation_forward(Activation kind, T leaky_slope, std::size_t count, const T* z, T* a) {
  switch (kind) {
    case Activation::none:
      for (std::size_t i = 0; i < count; ++i) a[i] = z[i];
      return;
    case Activation::relu:
      for (std::size_t i = 0; i < count; ++i) a[i] = z[i] >= T(0) ? z[i] : T(0);
      return;
    case Activation::leaky_relu:
      for (std::size_t i = 0; i < count; ++i) a[i] = z[i] >= T(0) ? z[i] : leaky_slope * z[i];
      return;
    case Activation::sigmoid:
      for (std::size_t i = 0; i < count; ++i) a[i] = activate(kind, leaky_slope, z[i]);
      return;
  }
}

// z, a, da: [count] -> dz: [count], one loop per kind as above; dz may alias da (each element is
// read before it is written).
template <typename T>
void activation_backward(Activation kind, T leaky_slope, std::size_t count, const T* z, const T* a,
                         const T* da, T* dz) {
  switch (kind) {
    case Activation::none:
      for (std::size_t i = 0; i < count; ++i) dz[i] = da[i];
      return;
    case Activation::relu:  // the lecture's rule: the gradient passes at z == 0
      for (std::size_t i = 0; i < count; ++i) dz[i] = z[i] >= T(0) ? da[i] : T(0);
      return;
    case Activation::leaky_relu:
      for (std::size_t i = 0; i < count; ++i) dz[i] = z[i] >= T(0) ? da[i] : leaky_slope * da[i];
      return;
    case Activation::sigmoid:
      for (std::size_t i = 0; i < count; ++i) dz[i] = da[i] * a[i] * (T(1) - a[i]);
      return;
  }
}

// z: [first + count] -> fused.activated: [first + count], elements [first, first + count)
template <typename T>
void fused_activation_forward(const FusedActivation<T>& fused, std::size_t first, std::size_t count,
                              const T* z) {
  if (fused.activated == nullptr) return;
  activation_forward(fused.kind, fused.leaky_slope, count, z + first, fused.activated + first);
}

// fused.z, fused.a, din: [first + count] -> din: elements [first, first + count), in place
template <typename T>
void fused_activation_backward(const FusedActivationGrad<T>& fused, std::size_t first,
                               std::size_t count, T* din) {
  if (fused.z == nullptr) return;
  activation_backward(fused.kind, fused.leaky_slope, count, fused.z + first, fused.a + first,
                      din + first, din + first);
}

template float activate<float>(Activation, float, float);
template double activate<double>(Activation, double, double);
template void activation_forward<float>(Activation, float, std::size_t, const float*, float*);
template void activation_forward<double>(Activation, double, std::size_t, const double*, double*);
template void activation_backward<float>(Activation, float, std::size_t, const float*, const float*,
                                         const float*, float*);
template void activation_backward<double>(Activation, double, std::size_t, const double*,
                                          const double*, const double*, double*);
template void fused_activation_forward<float>(const FusedActivation<float>&, std::size_t,
                                              std::size_t, const float*);
template void fused_activation_forward<double>(const FusedActivation<double>&, std::size_t,
                                               std::size_t, const double*);
template void fused_activation_backward<float>(const FusedActivationGrad<float>&, std::size_t,
                                               std::size_t, float*);
template void fused_activation_backward<double>(const FusedActivationGrad<double>&, std::size_t,
                                                std::size_t, double*);

}  // namespace cnnrt::cpu
