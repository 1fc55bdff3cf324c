#pragma once
// CPU reference dense layer (docs/math.md section 4). Input is flattened NCHW: [n, in_features].
#include "kernels/ops.hpp"

namespace cnnrt::cpu {

// in: [n, in], weight: [out, in], bias: [out] or nullptr -> out: [n, out] holding z; with
// fused.activated, also act(z) there (FusedActivation{} for the plain layer).
template <typename T>
void dense_forward(const DenseGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                   const FusedActivation<T>& fused);

// dout: [n, out], weight: [out, in] -> din: [n, in] (overwritten). With fused.z set, din gets the
// gradient at the input of the activation in front of the layer (FusedActivationGrad).
template <typename T>
void dense_backward_data(const DenseGeometry& g, const T* dout, const T* weight, T* din,
                         const FusedActivationGrad<T>& fused);

// in: [n, in], dout: [n, out] -> dweight: [out, in], dbias: [out] or nullptr (overwritten)
template <typename T>
void dense_backward_weights(const DenseGeometry& g, const T* in, const T* dout, T* dweight,
                            T* dbias);

}  // namespace cnnrt::cpu
