#pragma once
// Helpers for the GPU-vs-CPU parity suites (tests/cuda_*_test.cpp): uploads, NaN-poisoned output
// buffers, run-to-run bit identity, and the tolerance for long float sums.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "host/device_buffer.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/ops.hpp"
#include "kernels/precision.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt::test {

// Float reference vs float GPU: both round every addition, in different orders, so the
// difference of two sums of `terms` products grows about linearly with `terms` (|values| <= 1).
// A wrong index gives errors of the size of the values themselves, far above this.
constexpr double kSumAtolPerTerm = 1e-7;
constexpr double kSumAtolFloor = 1e-5;
constexpr double kSumRtol = 1e-4;

inline Tolerance summed_tolerance(std::size_t terms) {
  return Tolerance{kSumAtolFloor + kSumAtolPerTerm * double(terms), kSumRtol};
}

// A fused activation's input z (random, every fifth element exactly 0: where ReLU's z >= 0 rule
// decides) and output a = act(z) from the reference, on the host and on the device.
struct ActivationPair {
  Activation kind;
  std::vector<float> z, a;
  DeviceBuffer<float> z_dev, a_dev;

  ActivationPair(Activation k, std::size_t count, std::uint64_t seed)
      : kind(k), z(random_vector<float>(count, seed)), a(count), z_dev(count), a_dev(count) {
    for (std::size_t i = 0; i < count; i += 5) z[i] = 0.0f;
    cpu::activation_forward(kind, kFusedLeakySlope, count, z.data(), a.data());
    z_dev.upload(z);
    a_dev.upload(a);
  }
  // What a kernel fusing this activation's backward pass is given.
  FusedActivationGrad<float> fused() const {
    return FusedActivationGrad<float>{kind, kFusedLeakySlope, z_dev.data(), a_dev.data()};
  }
  // The reference: da through the activation's backward pass.
  std::vector<float> backward(std::vector<float> da) const {
    cpu::activation_backward(kind, kFusedLeakySlope, da.size(), z.data(), a.data(), da.data(),
                             da.data());
    return da;
  }
};

template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
  DeviceBuffer<T> buffer(host.size());
  buffer.upload(host);
  return buffer;
}

// An output buffer filled with 0xFF bytes (NaN for float, -1 for integers), so an element the
// kernel forgets to write fails the comparison.
template <typename T>
DeviceBuffer<T> poisoned(std::size_t count) {
  DeviceBuffer<T> buffer(count);
  buffer.fill_bytes(0xFF);
  return buffer;
}

// Determinism across runs: the first run's output is kept, every later one must match it bit for
// bit (no float atomics, fixed summation orders).
template <typename T>
void expect_same_bits_every_run(int run, const std::vector<T>& output, std::vector<T>& first_run,
                                const char* what) {
  if (run == 0)
    first_run = output;
  else
    EXPECT_TRUE(bitwise_equal(output, first_run)) << what << " differs from the first run";
}

// What a TF32 kernel gives the tensor cores: each value rounded to TF32, to nearest with ties away
// from zero (tf32_round: PTX cvt.rna.tf32.f32, what wmma::__float_to_tf32 emits).
inline std::vector<float> rounded_to_tf32(std::vector<float> values) {
  for (float& v : values) v = tf32_round(v);
  return values;
}

// Random values none of which sits exactly halfway between two TF32 values, so that the rounding
// rule for ties cannot matter.
inline std::vector<float> tf32_operand(std::size_t count, std::uint64_t seed) {
  std::vector<float> values = random_vector<float>(count, seed);
  for (float& v : values) {
    const std::uint32_t bits = float_to_bits(v);
    if ((bits & 0x1fffu) == 0x1000u) v = bits_to_float(bits | 1u);
  }
  return values;
}

// The smallest difference from FP32 that shows TF32 rounding happened: far above float sums'
// rounding (~1e-6 here), far below TF32's (~1e-3 on LeNet's sums).
constexpr double kTf32VisibleDifference = 1e-4;

// Tensor cores add products with truncation (round toward zero), not round-to-nearest: the
// errors of a long sum do not cancel. Seen on an H100: 4.9e-4 on a 4,097-term sum of values in
// [-1, 1], over summed_tolerance's 4.2e-4; a wrong index is still off by the values themselves.
constexpr double kTensorCoreSumAtolPerTerm = 2.5e-7;

inline Tolerance tensor_core_summed_tolerance(std::size_t terms) {
  return Tolerance{kSumAtolFloor + kTensorCoreSumAtolPerTerm * double(terms), kSumRtol};
}

}  // namespace cnnrt::test
