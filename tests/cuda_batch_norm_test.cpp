// CUDA batch normalisation against the CPU twin (kernels/cpu/batch_norm.cpp): training and
// evaluation forward with the running statistics, both backward passes, each fused activation,
// per channel and per feature (plane 1), and the same bits on every run (fixed-order block
// reductions, no atomics).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/batch_norm.hpp"
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// Statistics are sums of n * plane values in different orders (sequential on the CPU, a tree on
// the GPU); the normalised values are O(1).
Tolerance stats_tolerance(const BatchNormGeometry& g) {
  return summed_tolerance(g.per_channel());
}

std::string describe(const BatchNormGeometry& g) {
  return "n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " plane" +
         std::to_string(g.plane);
}

void check_case(const BatchNormGeometry& g, std::uint64_t seed) {
  SCOPED_TRACE(describe(g));
  const BatchNormParams bn{0.2, 1e-4};
  const Tolerance tol = stats_tolerance(g);
  const std::size_t c = std::size_t(g.c);
  const std::vector<float> x = random_vector<float>(g.size(), seed, -1.0, 2.0);
  const std::vector<float> gamma = random_vector<float>(c, seed + 1, 0.5, 1.5);
  const std::vector<float> beta = random_vector<float>(c, seed + 2);
  const std::vector<float> rm0 = random_vector<float>(c, seed + 3);
  const std::vector<float> rv0 = random_vector<float>(c, seed + 4, 0.5, 2.0);
  const std::vector<float> dout = random_vector<float>(g.size(), seed + 5);

  std::vector<float> out(g.size()), mean(c), inv_std(c), rm = rm0, rv = rv0;
  float tracked = 3.0f;
  cpu::batch_norm_forward_training<float>(g, 0, g.c, bn, x.data(), gamma.data(), beta.data(),
                                          out.data(), {}, mean.data(), inv_std.data(), rm.data(),
                                          rv.data(), &tracked);
  const auto x_dev = to_device(x), gamma_dev = to_device(gamma), beta_dev = to_device(beta);
  auto rm_dev = to_device(rm0), rv_dev = to_device(rv0);
  auto tracked_dev = to_device(std::vector<float>{3.0f});
  auto out_dev = poisoned<float>(g.size()), mean_dev = poisoned<float>(c),
       inv_std_dev = poisoned<float>(c);
  cuda::batch_norm_forward_training(g, bn, x_dev.data(), gamma_dev.data(), beta_dev.data(),
                                    out_dev.data(), {}, mean_dev.data(), inv_std_dev.data(),
                                    rm_dev.data(), rv_dev.data(), tracked_dev.data(), nullptr);
  EXPECT_TRUE(all_close(out_dev.download(), out, tol, "out"));
  EXPECT_TRUE(all_close(mean_dev.download(), mean, tol, "mean"));
  EXPECT_TRUE(all_close(inv_std_dev.download(), inv_std, tol, "inv_std"));
  EXPECT_TRUE(all_close(rm_dev.download(), rm, tol, "running_mean"));
  EXPECT_TRUE(all_close(rv_dev.download(), rv, tol, "running_var"));
  EXPECT_EQ(tracked_dev.download(), std::vector<float>{4.0f});

  // Evaluation with the updated running statistics.
  std::vector<float> eval(g.size());
  cpu::batch_norm_forward_inference<float>(g, 0, g.c, bn, x.data(), gamma.data(), beta.data(),
                                           rm.data(), rv.data(), eval.data(), {});
  const auto rm_in = to_device(rm), rv_in = to_device(rv);
  auto eval_dev = poisoned<float>(g.size());
  cuda::batch_norm_forward_inference(g, bn, x_dev.data(), gamma_dev.data(), beta_dev.data(),
                                     rm_in.data(), rv_in.data(), eval_dev.data(), {}, nullptr);
  EXPECT_TRUE(all_close(eval_dev.download(), eval, Tolerance{1e-6, 1e-5}, "eval"));

  // Both backward passes from the CPU's statistics.
  std::vector<float> dgamma(c), dbeta(c), din(g.size());
  cpu::batch_norm_backward_weights<float>(g, 0, g.c, x.data(), dout.data(), mean.data(),
                                          inv_std.data(), dgamma.data(), dbeta.data());
  cpu::batch_norm_backward_data<float>(g, 0, g.c, x.data(), dout.data(), gamma.data(), mean.data(),
                                       inv_std.data(), din.data(), {});
  ASSERT_TRUE(any_nonzero(dgamma));
  ASSERT_TRUE(any_nonzero(din));
  const auto dout_dev = to_device(dout), mean_in = to_device(mean), inv_std_in = to_device(inv_std);
  std::vector<float> first_dgamma, first_din;
  for (int run = 0; run < 2; ++run) {
    auto dgamma_dev = poisoned<float>(c), dbeta_dev = poisoned<float>(c);
    auto din_dev = poisoned<float>(g.size());
    cuda::batch_norm_backward_weights(g, x_dev.data(), dout_dev.data(), mean_in.data(),
                                      inv_std_in.data(), dgamma_dev.data(), dbeta_dev.data(),
                                      nullptr);
    cuda::batch_norm_backward_data(g, x_dev.data(), dout_dev.data(), gamma_dev.data(),
                                   mean_in.data(), inv_std_in.data(), din_dev.data(), {}, nullptr);
    const std::vector<float> dgamma_got = dgamma_dev.download(), din_got = din_dev.download();
    EXPECT_TRUE(all_close(dgamma_got, dgamma, tol, "dgamma"));
    EXPECT_TRUE(all_close(dbeta_dev.download(), dbeta, tol, "dbeta"));
    // din subtracts two sums of m terms, each scaled by 1 / m: the sums' error, not m times it.
    EXPECT_TRUE(all_close(din_got, din, tol, "din"));
    expect_same_bits_every_run(run, dgamma_got, first_dgamma, "dgamma");
    expect_same_bits_every_run(run, din_got, first_din, "din");
  }
}

TEST(CudaBatchNorm, PerChannelShapes) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 100;
  for (const BatchNormGeometry g :
       {BatchNormGeometry{2, 1, 1}, BatchNormGeometry{3, 4, 5}, BatchNormGeometry{128, 32, 196},
        BatchNormGeometry{7, 3, 1000}, BatchNormGeometry{1, 6, 2}})
    check_case(g, seed += 10);
}

TEST(CudaBatchNorm, PerFeatureShapes) {
  CNNRT_REQUIRE_GPU();
  std::uint64_t seed = 300;
  for (const BatchNormGeometry g :
       {BatchNormGeometry{2, 10, 1}, BatchNormGeometry{256, 120, 1}, BatchNormGeometry{1000, 3, 1}})
    check_case(g, seed += 10);
}

TEST(CudaBatchNorm, FusedActivations) {
  CNNRT_REQUIRE_GPU();
  const BatchNormGeometry g{9, 5, 37};
  const BatchNormParams bn{};
  const std::size_t c = std::size_t(g.c);
  const std::vector<float> x = random_vector<float>(g.size(), 501);
  const std::vector<float> gamma = random_vector<float>(c, 502, 0.5, 1.5);
  const std::vector<float> beta = random_vector<float>(c, 503);
  const std::vector<float> dout = random_vector<float>(g.size(), 504);
  const std::vector<float> mean = random_vector<float>(c, 505);
  const std::vector<float> inv_std = random_vector<float>(c, 506, 0.5, 2.0);
  const std::vector<float> rv = random_vector<float>(c, 507, 0.5, 2.0);
  const auto x_dev = to_device(x), gamma_dev = to_device(gamma), beta_dev = to_device(beta),
             dout_dev = to_device(dout), mean_dev = to_device(mean),
             inv_std_dev = to_device(inv_std), rv_dev = to_device(rv);
  const Tolerance tol = stats_tolerance(g);
  for (const Activation kind : kFusibleActivations) {
    SCOPED_TRACE("activation " + std::to_string(int(kind)));
    // Forward (training and evaluation): act(z) against the CPU's z through the reference
    // activation.
    std::vector<float> z(g.size()), m(c), s(c), rm_cpu(c, 0.0f), rv_cpu = rv;
    float tracked = 0.0f;
    cpu::batch_norm_forward_training<float>(g, 0, g.c, bn, x.data(), gamma.data(), beta.data(),
                                            z.data(), {}, m.data(), s.data(), rm_cpu.data(),
                                            rv_cpu.data(), &tracked);
    std::vector<float> a(g.size());
    cpu::activation_forward(kind, kFusedLeakySlope, g.size(), z.data(), a.data());
    auto z_dev = poisoned<float>(g.size()), a_dev = poisoned<float>(g.size());
    auto m_dev = poisoned<float>(c), s_dev = poisoned<float>(c);
    auto rm_dev = to_device(std::vector<float>(c, 0.0f));
    auto rv_run = to_device(rv), tracked_dev = to_device(std::vector<float>{0.0f});
    cuda::batch_norm_forward_training(
        g, bn, x_dev.data(), gamma_dev.data(), beta_dev.data(), z_dev.data(),
        FusedActivation<float>{kind, kFusedLeakySlope, a_dev.data()}, m_dev.data(), s_dev.data(),
        rm_dev.data(), rv_run.data(), tracked_dev.data(), nullptr);
    EXPECT_TRUE(all_close(z_dev.download(), z, tol, "z"));
    EXPECT_TRUE(all_close(a_dev.download(), a, tol, "act(z)"));

    // Backward-data through the activation in front.
    const ActivationPair act(kind, g.size(), 508);
    std::vector<float> da(g.size());
    cpu::batch_norm_backward_data<float>(g, 0, g.c, x.data(), dout.data(), gamma.data(),
                                         mean.data(), inv_std.data(), da.data(), {});
    const std::vector<float> expected = act.backward(da);
    ASSERT_TRUE(any_nonzero(expected));
    auto din_dev = poisoned<float>(g.size());
    cuda::batch_norm_backward_data(g, x_dev.data(), dout_dev.data(), gamma_dev.data(),
                                   mean_dev.data(), inv_std_dev.data(), din_dev.data(), act.fused(),
                                   nullptr);
    EXPECT_TRUE(all_close(din_dev.download(), expected, tol, "fused din"));
  }
}

}  // namespace
}  // namespace cnnrt
