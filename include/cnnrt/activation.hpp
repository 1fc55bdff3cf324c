#pragma once

namespace cnnrt {

// The activations of docs/math.md section 2 (softmax lives in the loss).
enum class Activation : int { none = 0, relu = 1, leaky_relu = 2, sigmoid = 3 };

}  // namespace cnnrt
