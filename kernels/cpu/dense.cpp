// CPU reference dense layer (docs/math.md section 4). The math's W[j,k] is stored here as weight[k,
// j]
// ([out, in], PyTorch's layout), so every W[j,k] below reads weight[k * in + j].
#include "kernels/cpu/dense.hpp"

#include <cstddef>

#include "kernels/cpu/activation.hpp"

namespace cnnrt::cpu {

// in: [n, in], weight: [out, in], bias: [out] or nullptr -> out, fused.activated (when not
// nullptr): [n, out]
// Z[n,k] = b[k] + sum_j A[n,j] * W[j,k]; a fused activation runs on each finished row.
template <typename T>
void dense_forward(const DenseGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                   const FusedActivation<T>& fused) {
  const std::size_t fan_in = g.in_features, fan_out = g.out_features;
  for (std::size_t n = 0; n < std::size_t(g.n); ++n) {
    for (std::size_t k = 0; k < fan_out; ++k) {
      T sum = bias ? bias[k] : T(0);
      for (std::size_t j = 0; j < fan_in; ++j) sum += in[n * fan_in + j] * weight[k * fan_in + j];
      out[n * fan_out + k] = sum;
    }
    fused_activation_forward(fused, n * fan_out, fan_out, out);
  }
}

// dout: [n, out], weight: [out, in], fused.z, fused.a (when fused.z is set): [n, in] -> din: [n,
// in] DA[n,j] = sum_k DZ[n,k] * W[j,k]; a fused activation's backward runs on each finished row.
template <typename T>
void dense_backward_data(const DenseGeometry& g, const T* dout, const T* weight, T* din,
                         const FusedActivationGrad<T>& fused) {
  const std::size_t fan_in = g.in_features, fan_out = g.out_features;
  for (std::size_t n = 0; n < std::size_t(g.n); ++n) {
    for (std::size_t j = 0; j < fan_in; ++j) {
      T sum = T(0);
      for (std::size_t k = 0; k < fan_out; ++k)
        sum += dout[n * fan_out + k] * weight[k * fan_in + j];
      din[n * fan_in + j] = sum;
    }
    fused_activation_backward(fused, n * fan_in, fan_in, din);
  }
}

// in: [n, in], dout: [n, out] -> dweight: [out, in], dbias: [out] or nullptr
// DW[j,k] = sum_n A[n,j] * DZ[n,k];  db[k] = sum_n DZ[n,k]
template <typename T>
void dense_backward_weights(const DenseGeometry& g, const T* in, const T* dout, T* dweight,
                            T* dbias) {
  const std::size_t fan_in = g.in_features, fan_out = g.out_features;
  for (std::size_t k = 0; k < fan_out; ++k) {
    for (std::size_t j = 0; j < fan_in; ++j) {
      T sum = T(0);
      for (std::size_t n = 0; n < std::size_t(g.n); ++n)
        sum += in[n * fan_in + j] * dout[n * fan_out + k];
      dweight[k * fan_in + j] = sum;
    }
    if (dbias != nullptr) {
      T sum = T(0);
      for (std::size_t n = 0; n < std::size_t(g.n); ++n) sum += dout[n * fan_out + k];
      dbias[k] = sum;
    }
  }
}

template void dense_forward<float>(const DenseGeometry&, const float*, const float*, const float*,
                                   float*, const FusedActivation<float>&);
template void dense_forward<double>(const DenseGeometry&, const double*, const double*,
                                    const double*, double*, const FusedActivation<double>&);
template void dense_backward_data<float>(const DenseGeometry&, const float*, const float*, float*,
                                         const FusedActivationGrad<float>&);
template void dense_backward_data<double>(const DenseGeometry&, const double*, const double*,
                                          double*, const FusedActivationGrad<double>&);
template void dense_backward_weights<float>(const DenseGeometry&, const float*, const float*,
                                            float*, float*);
template void dense_backward_weights<double>(const DenseGeometry&, const double*, const double*,
                                             double*, double*);

}  // namespace cnnrt::cpu
