#pragma once
// What the convolution's three files (conv_forward.cu, conv_backward_data.cu,
// conv_backward_weights.cu) share; included by them only. The twin contract is conv.cuh.
#include <cstddef>

namespace cnnrt::cuda {

constexpr std::size_t kSharedBytesLimit = 48 * 1024;  // the default per-block limit

// Blocks the staged (fast) backward kernels aim for: enough to keep every SM of an H100/H200
// (132 SMs) busy with a few blocks each while one block stages its sample.
constexpr int kTargetStagedBlocks = 528;
constexpr int kStagedMaxThreads = 256;

inline int ceil_div_int(int a, int b) {
  return (a + b - 1) / b;
}

}  // namespace cnnrt::cuda
