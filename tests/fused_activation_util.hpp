#pragma once
// Fused activations in the kernel suites: the activations a kernel can fuse, and (for the CPU
// twins) checks that an op run with one fused gives the same bits as the op followed by the
// reference activation kernel (kernels/ops.hpp promises it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/activation.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt::test {

constexpr float kFusedLeakySlope = 0.1f;
constexpr Activation kFusibleActivations[] = {Activation::none, Activation::relu,
                                              Activation::leaky_relu, Activation::sigmoid};

// The activation an op's fused form must match: the reference's, or the fast path's
// (cpu::fast::activation_forward) for the fast ops.
template <typename T>
using ActivationForward = void (*)(Activation, T, std::size_t, const T*, T*);

// `run(z, fused)` runs an op with `count` outputs into z. Unfused, then with each activation
// fused: z must be the same bits, and fused.activated those of `activation` on z. Every buffer
// starts as NaN, and the unfused z must come out finite, so a skipped write cannot hide.
template <typename T, typename Run>
void expect_fused_forward_same_bits(std::size_t count, Run run,
                                    ActivationForward<T> activation = &cpu::activation_forward<T>) {
  std::vector<T> z_expected = nan_vector<T>(count);
  run(z_expected.data(), FusedActivation<T>{});
  ASSERT_TRUE(all_finite(z_expected));
  for (const Activation kind : kFusibleActivations) {
    SCOPED_TRACE("activation " + std::to_string(int(kind)));
    std::vector<T> a_expected = nan_vector<T>(count);
    activation(kind, T(kFusedLeakySlope), count, z_expected.data(), a_expected.data());
    std::vector<T> z = nan_vector<T>(count), a = nan_vector<T>(count);
    run(z.data(), FusedActivation<T>{kind, T(kFusedLeakySlope), a.data()});
    EXPECT_TRUE(bitwise_equal(z, z_expected)) << "z";
    EXPECT_TRUE(bitwise_equal(a, a_expected)) << "act(z)";
  }
}

// `run(din, fused)` runs an op whose din has `count` elements. Unfused it gives da; with each
// activation fused, din must be the same bits as activation_backward(z, a, da), for a seeded z
// (every fifth element exactly 0, where ReLU's z >= 0 rule decides) and a = act(z). NaN-poisoned
// as above.
template <typename T, typename Run>
void expect_fused_backward_same_bits(std::size_t count, std::uint64_t seed, Run run) {
  std::vector<T> da = nan_vector<T>(count);
  run(da.data(), FusedActivationGrad<T>{});
  ASSERT_TRUE(all_finite(da));
  for (const Activation kind : kFusibleActivations) {
    SCOPED_TRACE("activation " + std::to_string(int(kind)));
    std::vector<T> z = random_vector<T>(count, ++seed), a(count);
    for (std::size_t i = 0; i < count; i += 5) z[i] = T(0);
    cpu::activation_forward(kind, T(kFusedLeakySlope), count, z.data(), a.data());
    std::vector<T> dz_expected = nan_vector<T>(count);
    cpu::activation_backward(kind, T(kFusedLeakySlope), count, z.data(), a.data(), da.data(),
                             dz_expected.data());
    std::vector<T> dz = nan_vector<T>(count);
    run(dz.data(), FusedActivationGrad<T>{kind, T(kFusedLeakySlope), z.data(), a.data()});
    EXPECT_TRUE(bitwise_equal(dz, dz_expected)) << "dz";
  }
}

}  // namespace cnnrt::test
