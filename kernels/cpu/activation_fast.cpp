// The fast CPU activations: the sigmoid in the widest lanes the processor has, chosen at run time
// (the shipped build targets baseline x86-64), the other kinds as the reference loops.
#include "kernels/cpu/activation_fast.hpp"

#include <string>

#include "cnnrt/error.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/sigmoid_lanes.hpp"

namespace cnnrt::cpu::fast {

const char* sigmoid_path_name(SigmoidPath path) {
  switch (path) {
    case SigmoidPath::lanes4:
      return "4 lanes";
    case SigmoidPath::avx2:
      return "AVX2, 8 lanes";
    case SigmoidPath::avx512:
      return "AVX-512, 16 lanes";
  }
  return "unknown";
}

bool sigmoid_path_available(SigmoidPath path) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  switch (path) {
    case SigmoidPath::lanes4:
      return true;
    case SigmoidPath::avx2:
      return __builtin_cpu_supports("avx2");
    case SigmoidPath::avx512:
      return __builtin_cpu_supports("avx512f");
  }
  return false;
#else
  return path == SigmoidPath::lanes4;
#endif
}

SigmoidPath chosen_sigmoid_path() {
  static const SigmoidPath chosen =
      sigmoid_path_available(SigmoidPath::avx512) ? SigmoidPath::avx512
      : sigmoid_path_available(SigmoidPath::avx2) ? SigmoidPath::avx2
                                                  : SigmoidPath::lanes4;
  return chosen;
}

// The wider paths, each in its own file built for its instruction set (x86-64 only).
void sigmoid_forward_avx2(std::size_t count, const float* z, float* a);
void sigmoid_forward_avx512(std::size_t count, const float* z, float* a);

namespace {

void run_sigmoid(SigmoidPath path, std::size_t count, const float* z, float* a) {
  switch (path) {
#if defined(__x86_64__) && defined(__GNUC__)
    case SigmoidPath::avx512:
      return sigmoid_forward_avx512(count, z, a);
    case SigmoidPath::avx2:
      return sigmoid_forward_avx2(count, z, a);
#endif
    default:
      return sigmoid_array<4>(count, z, a);
  }
}

}  // namespace

void sigmoid_forward(SigmoidPath path, std::size_t count, const float* z, float* a) {
  if (!sigmoid_path_available(path))
    throw Error(std::string("the sigmoid path '") + sigmoid_path_name(path) +
                "' is not available on this processor or build");
  run_sigmoid(path, count, z, a);
}

void activation_forward(Activation kind, float leaky_slope, std::size_t count, const float* z,
                        float* a) {
  if (kind == Activation::sigmoid) return run_sigmoid(chosen_sigmoid_path(), count, z, a);
  cpu::activation_forward(kind, leaky_slope, count, z, a);
}

void fused_activation_forward(const FusedActivation<float>& fused, std::size_t first,
                              std::size_t count, const float* z) {
  if (fused.activated == nullptr) return;
  activation_forward(fused.kind, fused.leaky_slope, count, z + first, fused.activated + first);
}

}  // namespace cnnrt::cpu::fast
