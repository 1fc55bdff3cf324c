// CUDA softmax and fused softmax + cross-entropy + gradient (docs/math.md sections 2 and 3). Every
// softmax subtracts the row maximum first, so no exp overflows.
#include <cmath>

#include "kernels/cuda/check.hpp"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/loss.cuh"

namespace cnnrt::cuda {
namespace {

// One block reduces the whole batch, so the loss sum has one fixed order (threads stride over
// samples, then a tree over the block). Batches are a few hundred rows of ~10 classes: one block
// is ample, and it makes the result independent of the grid.
constexpr int kLossThreads = 256;  // power of two (tree reduction)

// logits: [n, classes] -> probs: [n, classes]; one thread per row, grid-stride.
__global__ void softmax_forward_kernel(int n, int classes, const float* __restrict__ logits,
                                       float* __restrict__ probs) {
  for (int row = blockIdx.x * blockDim.x + threadIdx.x; row < n; row += gridDim.x * blockDim.x) {
    const float* z = logits + std::size_t(row) * classes;
    float* o = probs + std::size_t(row) * classes;
    float row_max = z[0];
    for (int i = 1; i < classes; ++i) row_max = fmaxf(row_max, z[i]);
    float sum = 0.0f;
    for (int i = 0; i < classes; ++i) sum += expf(z[i] - row_max);
    const float inv_sum = 1.0f / sum;
    for (int i = 0; i < classes; ++i) o[i] = expf(z[i] - row_max) * inv_sum;
  }
}

// logits: [n, classes], labels: [n] -> dlogits: [n, classes] (or nullptr), *loss_sum += sum of
// -sum_i q_i log(O_i) (q the
// smoothed target, see kernels/cpu/loss.hpp), *correct += hits. grid: 1 block of kLossThreads;
// thread t handles rows t, t + 256... A label outside [0, classes) adds NaN to the loss (and NaN
// gradients) instead of reading out of bounds, so the host's divergence check reports it.
__global__ void softmax_cross_entropy_kernel(int n, int classes, const float* __restrict__ logits,
                                             const std::int32_t* __restrict__ labels,
                                             float* __restrict__ dlogits,
                                             float* __restrict__ loss_sum,
                                             std::int32_t* __restrict__ correct,
                                             float label_smoothing, int divisor) {
  __shared__ float loss_partial[kLossThreads];
  // The smoothed target: `on` for the true class, `off` for the others (1 and 0 unsmoothed).
  const float off = label_smoothing / float(classes);
  const float on = 1.0f - label_smoothing + off;
  __shared__ int correct_partial[kLossThreads];
  const float inv_n = 1.0f / float(divisor);
  float loss = 0.0f;
  int hits = 0;
  for (int row = threadIdx.x; row < n; row += kLossThreads) {
    const float* z = logits + std::size_t(row) * classes;
    const int label = labels[row];
    const bool label_ok = label >= 0 && label < classes;
    float row_max = z[0];
    int best = 0;  // first maximum on ties (strict >)
    for (int i = 1; i < classes; ++i)
      if (z[i] > row_max) {
        row_max = z[i];
        best = i;
      }
    float sum = 0.0f;
    for (int i = 0; i < classes; ++i) sum += expf(z[i] - row_max);
    // -log(O_t) = log(sum) - (z_t - max): finite even when O_t underflows to 0.
    float row_loss = nanf("");
    if (label_ok && label_smoothing == 0.0f) {
      row_loss = logf(sum) - (z[label] - row_max);
    } else if (label_ok) {  // log(sum) - (1 - e) (z_t - max) - e / K sum_i (z_i - max)
      float shifted = 0.0f;
      for (int i = 0; i < classes; ++i) shifted += z[i] - row_max;
      row_loss = logf(sum) - (1.0f - label_smoothing) * (z[label] - row_max) - off * shifted;
    }
    loss += row_loss;
    hits += (label_ok && best == label) ? 1 : 0;
    if (dlogits != nullptr) {
      const float inv_sum = 1.0f / sum;
      float* dz = dlogits + std::size_t(row) * classes;
      for (int i = 0; i < classes; ++i) {
        const float prob = expf(z[i] - row_max) * inv_sum;
        dz[i] = label_ok ? (prob - (i == label ? on : off)) * inv_n : nanf("");
      }
    }
  }
  loss_partial[threadIdx.x] = loss;
  correct_partial[threadIdx.x] = hits;
  for (int half = kLossThreads / 2; half > 0; half /= 2) {
    __syncthreads();
    if (int(threadIdx.x) < half) {
      loss_partial[threadIdx.x] += loss_partial[threadIdx.x + half];
      correct_partial[threadIdx.x] += correct_partial[threadIdx.x + half];
    }
  }
  if (threadIdx.x == 0) {
    if (loss_sum != nullptr) *loss_sum += loss_partial[0];
    if (correct != nullptr) *correct += correct_partial[0];
  }
}

}  // namespace

void softmax_forward(int n, int classes, const float* logits, float* probs, cudaStream_t stream) {
  if (n <= 0 || classes <= 0) return;
  const unsigned blocks =
      unsigned((n + detail::kElementwiseThreads - 1) / detail::kElementwiseThreads);
  softmax_forward_kernel<<<blocks, detail::kElementwiseThreads, 0, stream>>>(n, classes, logits,
                                                                             probs);
  CNNRT_LAUNCH_CHECK(softmax_forward_kernel);
}

void softmax_cross_entropy(int n, int classes, const float* logits, const std::int32_t* labels,
                           float* dlogits, float* loss_sum, std::int32_t* correct,
                           cudaStream_t stream, float label_smoothing, int divisor) {
  if (n <= 0 || classes <= 0) return;
  softmax_cross_entropy_kernel<<<1, kLossThreads, 0, stream>>>(n, classes, logits, labels, dlogits,
                                                               loss_sum, correct, label_smoothing,
                                                               divisor > 0 ? divisor : n);
  CNNRT_LAUNCH_CHECK(softmax_cross_entropy_kernel);
}

}  // namespace cnnrt::cuda
