// The fast CPU dense layer (float): oneDNN sgemm over the rows this thread owns.
#include "kernels/cpu/dense_fast.hpp"

#include <algorithm>
#include <cstddef>

#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/activation_fast.hpp"
#include "kernels/cpu/sgemm.hpp"

namespace cnnrt::cpu::fast {

// out[n, k] = b[k] + sum_j in[n, j] W[k, j] for k in [first, first + count):
// [n, in] x [count, in]^T
void dense_forward(const DenseGeometry& g, int first, int count, const float* in,
                   const float* weight, const float* bias, float* out,
                   const FusedActivation<float>& fused) {
  const int fan_in = g.in_features, fan_out = g.out_features;
  if (count <= 0) return;
  for (int n = 0; n < g.n; ++n) {
    float* row = out + std::size_t(n) * fan_out + first;
    if (bias)
      std::copy(bias + first, bias + first + count, row);
    else
      std::fill(row, row + count, 0.0f);
  }
  sgemm(Op::plain, Op::transposed, g.n, count, fan_in, 1.0f, in, fan_in,
        weight + std::size_t(first) * fan_in, fan_in, 1.0f, out + first, fan_out);
  if (count == fan_out) return fused_activation_forward(fused, 0, g.out_size(), out);
  for (int n = 0; n < g.n; ++n)
    fused_activation_forward(fused, std::size_t(n) * fan_out + first, std::size_t(count), out);
}

// din[n, j] = sum_k dout[n, k] W[k, j] for j in [first, first + count): [n, out] x [out, count]
void dense_backward_data(const DenseGeometry& g, int first, int count, const float* dout,
                         const float* weight, float* din, const FusedActivationGrad<float>& fused) {
  const int fan_in = g.in_features, fan_out = g.out_features;
  if (count <= 0) return;
  sgemm(Op::plain, Op::plain, g.n, count, fan_out, 1.0f, dout, fan_out, weight + first, fan_in,
        0.0f, din + first, fan_in);
  if (count == fan_in) return fused_activation_backward(fused, 0, g.in_size(), din);
  for (int n = 0; n < g.n; ++n)
    fused_activation_backward(fused, std::size_t(n) * fan_in + first, std::size_t(count), din);
}

// dW[k, j] = sum_n dout[n, k] in[n, j] for k in [first, first + count): [count, n] x [n, in];
// db[k] = sum_n dout[n, k]
void dense_backward_weights(const DenseGeometry& g, int first, int count, const float* in,
                            const float* dout, float* dweight, float* dbias) {
  const int fan_in = g.in_features, fan_out = g.out_features;
  if (count <= 0) return;
  sgemm(Op::transposed, Op::plain, count, fan_in, g.n, 1.0f, dout + first, fan_out, in, fan_in,
        0.0f, dweight + std::size_t(first) * fan_in, fan_in);
  if (dbias == nullptr) return;
  for (int k = first; k < first + count; ++k) dbias[k] = 0.0f;
  for (int n = 0; n < g.n; ++n) {
    const float* row = dout + std::size_t(n) * fan_out;
    for (int k = first; k < first + count; ++k) dbias[k] += row[k];
  }
}

}  // namespace cnnrt::cpu::fast
