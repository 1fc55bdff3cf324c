#pragma once
// CPU reference softmax and softmax cross-entropy (docs/math.md sections 2 and 3).
#include <cstdint>

namespace cnnrt::cpu {

// logits: [n, classes] -> probs: [n, classes], computed with the row maximum subtracted.
template <typename T>
void softmax_forward(int n, int classes, const T* logits, T* probs);

// logits: [n, classes], labels: [n] in [0, classes) ->
//   dlogits: [n, classes] = (O_i - [i == t]) / n   (O_t - 1 for the true class, O_i otherwise)
//   *loss_sum += sum over the batch of -log(O_t)   (the caller divides by the sample count)
//   *correct  += number of samples whose largest logit (first on ties) is the true class
// dlogits may be nullptr (evaluation); loss_sum and correct may be nullptr.
template <typename T>
void softmax_cross_entropy(int n, int classes, const T* logits, const std::int32_t* labels,
                           T* dlogits, T* loss_sum, std::int32_t* correct);

}  // namespace cnnrt::cpu
