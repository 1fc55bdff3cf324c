#pragma once
// Helpers for the GPU-vs-CPU parity suites (tests/cuda_*_test.cpp): uploads, NaN-poisoned output
// buffers, run-to-run bit identity, and the tolerance for long float sums.
#include <cstddef>
#include <vector>

#include "host/device_buffer.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/ops.hpp"
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

}  // namespace cnnrt::test
