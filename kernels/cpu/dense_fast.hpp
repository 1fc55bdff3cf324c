#pragma once
// The fast CPU dense layer (float): oneDNN sgemm on the calling thread. The layer unit splits
// the batch, or the columns of the result when a large weight matrix would otherwise be read
// once per thread (forward, backward-data), or the output units (weight gradient) across threads.
// Held against the plain-loop twin in kernels/cpu/dense.cpp by tests/cpu_fast_test.cpp.
#include "kernels/ops.hpp"

namespace cnnrt::cpu::fast {

// Output units [first, first + count) of every row:
// in: [n, in], weight: [out, in], bias: [out] or nullptr -> out: [n, out] holding z, and
// fused.activated act(z) when set, in those columns
void dense_forward(const DenseGeometry& g, int first, int count, const float* in,
                   const float* weight, const float* bias, float* out,
                   const FusedActivation<float>& fused);

// Input features [first, first + count) of every row:
// dout: [n, out], weight: [out, in] -> din: [n, in] (overwritten) in those columns, through the
// fused activation's gradient when fused.z is set
void dense_backward_data(const DenseGeometry& g, int first, int count, const float* dout,
                         const float* weight, float* din, const FusedActivationGrad<float>& fused);

// Output units [first, first + count) of the weight gradient:
// in: [n, in], dout: [n, out] -> dweight rows [first, first + count) of [out, in], dbias the same
// entries of [out] (overwritten)
void dense_backward_weights(const DenseGeometry& g, int first, int count, const float* in,
                            const float* dout, float* dweight, float* dbias);

}  // namespace cnnrt::cpu::fast
