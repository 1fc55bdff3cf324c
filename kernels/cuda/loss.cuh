#pragma once
// CUDA softmax and fused softmax + cross-entropy + gradient, the twin of kernels/cpu/loss.hpp.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cnnrt::cuda {

// logits: [n, classes] -> probs: [n, classes]
void softmax_forward(int n, int classes, const float* logits, float* probs, cudaStream_t stream);

// logits: [n, classes], labels: [n] -> dlogits: [n, classes] = (O - q) / d (may be nullptr), q =
// (1 - e) one-hot + e / classes with e = label_smoothing; device scalars *loss_sum += sum
// -sum_i q_i log(O_i), *correct += correct predictions (may be nullptr).
// d = divisor, or n when it is 0 (kernels/cpu/loss.hpp).
// The batch sums are reduced in a fixed order, so the result is deterministic.
void softmax_cross_entropy(int n, int classes, const float* logits, const std::int32_t* labels,
                           float* dlogits, float* loss_sum, std::int32_t* correct,
                           cudaStream_t stream, float label_smoothing = 0.0f, int divisor = 0);

}  // namespace cnnrt::cuda
