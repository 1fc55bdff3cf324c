// CPU reference softmax and softmax cross-entropy (docs/math.md sections 2 and 3).
#include "kernels/cpu/loss.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstddef>

#include "cnnrt/error.hpp"

namespace cnnrt::cpu {

namespace {

// Index of the row's largest value, the first one on ties.
template <typename T>
int first_argmax(int classes, const T* row) {
  int best = 0;
  for (int i = 1; i < classes; ++i)
    if (row[i] > row[best]) best = i;
  return best;
}

}  // namespace

// logits: [n, classes] -> probs: [n, classes]
template <typename T>
void softmax_forward(int n, int classes, const T* logits, T* probs) {
  for (int s = 0; s < n; ++s) {
    const T* z = logits + std::size_t(s) * classes;
    T* o = probs + std::size_t(s) * classes;
    const T z_max = z[first_argmax(classes, z)];  // subtracting it keeps every exp <= 1
    T sum = T(0);
    for (int i = 0; i < classes; ++i) sum += std::exp(z[i] - z_max);
    for (int i = 0; i < classes; ++i) o[i] = std::exp(z[i] - z_max) / sum;
  }
}

// logits: [n, classes], labels: [n] -> dlogits: [n, classes] or nullptr, loss_sum, correct
template <typename T>
void softmax_cross_entropy(int n, int classes, const T* logits, const std::int32_t* labels,
                           T* dlogits, T* loss_sum, std::int32_t* correct, T label_smoothing,
                           int divisor) {
  const T d = T(divisor > 0 ? divisor : n);
  // The smoothed target: `on` for the true class, `off` for the others (1 and 0 unsmoothed).
  const T off = label_smoothing / T(classes);
  const T on = T(1) - label_smoothing + off;
  T batch_loss = T(0);
  std::int32_t batch_correct = 0;
  for (int s = 0; s < n; ++s) {
    const int t = labels[s];
    if (t < 0 || t >= classes)
      throw Error(fmt::format("softmax_cross_entropy: label {} of sample {} is outside [0, {})", t,
                              s, classes));
    const T* z = logits + std::size_t(s) * classes;
    const int predicted = first_argmax(classes, z);
    const T z_max = z[predicted];
    T sum = T(0);
    for (int i = 0; i < classes; ++i) sum += std::exp(z[i] - z_max);
    // -log(O_t) = log(sum) - (z_t - max): the same value, finite even when O_t underflows to 0.
    if (label_smoothing == T(0)) {
      batch_loss += std::log(sum) - (z[t] - z_max);
    } else {  // -sum_i q_i log(O_i) = log(sum) - (1 - e) (z_t - max) - e / K sum_i (z_i - max)
      T shifted = T(0);
      for (int i = 0; i < classes; ++i) shifted += z[i] - z_max;
      batch_loss += std::log(sum) - (T(1) - label_smoothing) * (z[t] - z_max) - off * shifted;
    }
    if (predicted == t) ++batch_correct;
    if (dlogits != nullptr) {
      T* dz = dlogits + std::size_t(s) * classes;
      for (int i = 0; i < classes; ++i) {
        const T o = std::exp(z[i] - z_max) / sum;
        dz[i] = (o - (i == t ? on : off)) / d;
      }
    }
  }
  if (loss_sum != nullptr) *loss_sum += batch_loss;
  if (correct != nullptr) *correct += batch_correct;
}

template void softmax_forward<float>(int, int, const float*, float*);
template void softmax_forward<double>(int, int, const double*, double*);
template void softmax_cross_entropy<float>(int, int, const float*, const std::int32_t*, float*,
                                           float*, std::int32_t*, float, int);
template void softmax_cross_entropy<double>(int, int, const double*, const std::int32_t*, double*,
                                            double*, std::int32_t*, double, int);

}  // namespace cnnrt::cpu
