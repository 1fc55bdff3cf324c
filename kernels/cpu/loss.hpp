#pragma once
// CPU reference softmax and softmax cross-entropy (docs/math.md sections 2 and 3).
#include <cstdint>

namespace cnnrt::cpu {

// logits: [n, classes] -> probs: [n, classes], computed with the row maximum subtracted.
template <typename T>
void softmax_forward(int n, int classes, const T* logits, T* probs);

// logits: [n, classes], labels: [n] in [0, classes) ->
//   dlogits: [n, classes] = (O_i - q_i) / d        q = (1 - e) one-hot(t) + e / classes
//   *loss_sum += sum over the batch of -sum_i q_i log(O_i)   (-log(O_t) when e = 0; the caller
//                divides by the sample count)
//   *correct  += number of samples whose largest logit (first on ties) is the true class
// e = label_smoothing in [0, 1) (PyTorch's CrossEntropyLoss(label_smoothing=e), docs/math.md).
// d = divisor, or n when divisor is 0: a rank holding n of a global batch of d samples divides by
// d, so that the ranks' gradients sum to the global batch's mean.
// dlogits may be nullptr (evaluation); loss_sum and correct may be nullptr.
template <typename T>
void softmax_cross_entropy(int n, int classes, const T* logits, const std::int32_t* labels,
                           T* dlogits, T* loss_sum, std::int32_t* correct, T label_smoothing = T(0),
                           int divisor = 0);

}  // namespace cnnrt::cpu
