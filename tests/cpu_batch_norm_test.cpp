// Batch normalisation (docs/math.md section 11): the CPU twin against the formulas computed here
// with plain loops in double (forward, running statistics with the unbiased variance, evaluation
// with the running statistics), its backward pass against central differences of those formulas,
// the fused activations, and the layer through Model: model-file errors, fusion, a batch of one,
// checkpoints (PyTorch's names, the state round trip, a bad running_var refused).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "kernels/cpu/batch_norm.hpp"
#include "kernels/ops.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr Tolerance kDoubleTol{1e-12, 1e-12};
constexpr Tolerance kFloatTol{1e-5, 1e-5};
// Central differences in double with step kFdStep: truncation error ~ h^2 times the third
// derivative, far below this.
// Float logits of the fast path (folded batch norms, other summation orders) against the
// reference path's float logits, a few layers deep.
constexpr Tolerance kFoldedLogits{1e-5, 1e-4};
constexpr double kFdStep = 1e-5;
constexpr Tolerance kFdTol{1e-7, 1e-6};

// The statistics and output of batch norm on [n, c, plane], by the formulas of docs/math.md
// section 11, in double.
struct Reference {
  std::vector<double> mean, var, out;  // var biased
};

Reference reference_forward(const BatchNormGeometry& g, const std::vector<double>& x,
                            const std::vector<double>& gamma, const std::vector<double>& beta,
                            double eps) {
  Reference r;
  r.mean.assign(std::size_t(g.c), 0.0);
  r.var.assign(std::size_t(g.c), 0.0);
  r.out.assign(x.size(), 0.0);
  const double m = double(g.n) * g.plane;
  auto at = [&](int s, int ch, int i) { return (std::size_t(s) * g.c + ch) * g.plane + i; };
  for (int ch = 0; ch < g.c; ++ch) {
    for (int s = 0; s < g.n; ++s)
      for (int i = 0; i < g.plane; ++i) r.mean[ch] += x[at(s, ch, i)] / m;
    for (int s = 0; s < g.n; ++s)
      for (int i = 0; i < g.plane; ++i) {
        const double d = x[at(s, ch, i)] - r.mean[ch];
        r.var[ch] += d * d / m;
      }
    for (int s = 0; s < g.n; ++s)
      for (int i = 0; i < g.plane; ++i)
        r.out[at(s, ch, i)] =
            gamma[ch] * (x[at(s, ch, i)] - r.mean[ch]) / std::sqrt(r.var[ch] + eps) + beta[ch];
  }
  return r;
}

template <typename T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// Seeded inputs of one geometry: x with a per-channel offset (so the means differ), gamma and
// beta away from 1 and 0, positive running statistics.
template <typename T>
struct Inputs {
  BatchNormGeometry g;
  std::vector<T> x, gamma, beta, running_mean, running_var;

  Inputs(BatchNormGeometry geometry, std::uint64_t seed) : g(geometry) {
    x = random_vector<T>(g.size(), seed, -2.0, 3.0);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += T(std::size_t(i / g.plane) % g.c);
    gamma = random_vector<T>(std::size_t(g.c), seed + 1, 0.5, 1.5);
    beta = random_vector<T>(std::size_t(g.c), seed + 2, -1.0, 1.0);
    running_mean = random_vector<T>(std::size_t(g.c), seed + 3, -0.5, 0.5);
    running_var = random_vector<T>(std::size_t(g.c), seed + 4, 0.5, 2.0);
  }
};

template <typename T>
void check_training_forward(const BatchNormGeometry& g, const BatchNormParams& bn,
                            const Tolerance& tol) {
  Inputs<T> in(g, 11);
  std::vector<T> out = nan_vector<T>(g.size()), mean = nan_vector<T>(std::size_t(g.c)),
                 inv_std = nan_vector<T>(std::size_t(g.c));
  std::vector<T> running_mean = in.running_mean, running_var = in.running_var;
  T tracked = T(5);
  cpu::batch_norm_forward_training<T>(g, 0, g.c, bn, in.x.data(), in.gamma.data(), in.beta.data(),
                                      out.data(), {}, mean.data(), inv_std.data(),
                                      running_mean.data(), running_var.data(), &tracked);
  const Reference r = reference_forward(g, to_double(in.x), to_double(in.gamma), to_double(in.beta),
                                        double(T(bn.eps)));
  EXPECT_TRUE(all_close(out, r.out, tol, "out"));
  EXPECT_TRUE(all_close(mean, r.mean, tol, "mean"));
  std::vector<double> expected_inv_std, expected_rm, expected_rv;
  const double m = double(g.per_channel()), mom = double(T(bn.momentum));
  for (int ch = 0; ch < g.c; ++ch) {
    expected_inv_std.push_back(1.0 / std::sqrt(r.var[ch] + double(T(bn.eps))));
    expected_rm.push_back((1 - mom) * double(in.running_mean[ch]) + mom * r.mean[ch]);
    // The running variance takes the unbiased variance: m / (m - 1) times the biased one.
    expected_rv.push_back((1 - mom) * double(in.running_var[ch]) + mom * r.var[ch] * m / (m - 1));
  }
  EXPECT_TRUE(all_close(inv_std, expected_inv_std, tol, "inv_std"));
  EXPECT_TRUE(all_close(running_mean, expected_rm, tol, "running_mean"));
  EXPECT_TRUE(all_close(running_var, expected_rv, tol, "running_var"));
  EXPECT_EQ(tracked, T(6));
}

TEST(CpuBatchNorm, HandComputedChannel) {
  // One channel 1 2 3 4: mean 2.5, biased variance 1.25, unbiased 5/3. momentum 1 makes the
  // running statistics the batch's.
  const BatchNormGeometry g{1, 1, 4};
  const std::vector<double> x = {1, 2, 3, 4}, gamma = {2}, beta = {1};
  std::vector<double> out = nan_vector<double>(4), mean(1), inv_std(1), rm = {7}, rv = {7};
  double tracked = 0;
  cpu::batch_norm_forward_training<double>(g, 0, 1, BatchNormParams{1.0, 0.25}, x.data(),
                                           gamma.data(), beta.data(), out.data(), {}, mean.data(),
                                           inv_std.data(), rm.data(), rv.data(), &tracked);
  // (x - 2.5) / sqrt(1.25 + 0.25) * 2 + 1, with sqrt(1.5) = 1.2247448713915890
  const double s = 2.0 / std::sqrt(1.5);
  EXPECT_TRUE(all_close(out,
                        std::vector<double>{1 - 1.5 * s, 1 - 0.5 * s, 1 + 0.5 * s, 1 + 1.5 * s},
                        kDoubleTol, "out"));
  EXPECT_DOUBLE_EQ(mean[0], 2.5);
  EXPECT_DOUBLE_EQ(rm[0], 2.5);
  EXPECT_DOUBLE_EQ(rv[0], 5.0 / 3.0);
  EXPECT_EQ(tracked, 1.0);
}

TEST(CpuBatchNorm, TrainingForwardPerChannelDouble) {
  check_training_forward<double>({3, 4, 5}, BatchNormParams{0.1, 1e-5}, kDoubleTol);
}

TEST(CpuBatchNorm, TrainingForwardPerChannelFloat) {
  check_training_forward<float>({4, 3, 49}, BatchNormParams{0.3, 1e-3}, kFloatTol);
}

TEST(CpuBatchNorm, TrainingForwardPerFeature) {
  // After a dense layer: plane 1, the batch alone gives each feature's statistics.
  check_training_forward<double>({6, 5, 1}, BatchNormParams{0.7, 0.5}, kDoubleTol);
  check_training_forward<float>({2, 3, 1}, BatchNormParams{0.0, 1e-5}, kFloatTol);
}

TEST(CpuBatchNorm, InferenceUsesTheRunningStatistics) {
  const BatchNormGeometry g{3, 2, 4};
  const Inputs<double> in(g, 21);
  std::vector<double> out = nan_vector<double>(g.size());
  cpu::batch_norm_forward_inference<double>(g, 0, g.c, BatchNormParams{0.1, 1e-2}, in.x.data(),
                                            in.gamma.data(), in.beta.data(), in.running_mean.data(),
                                            in.running_var.data(), out.data(), {});
  std::vector<double> expected(g.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const std::size_t ch = i / std::size_t(g.plane) % std::size_t(g.c);
    expected[i] =
        in.gamma[ch] * (in.x[i] - in.running_mean[ch]) / std::sqrt(in.running_var[ch] + 1e-2) +
        in.beta[ch];
  }
  EXPECT_TRUE(all_close(out, expected, kDoubleTol, "out"));
  // And not the batch's: the batch normalised by itself has mean 0 per channel, this does not.
  const Reference batch = reference_forward(g, in.x, in.gamma, in.beta, 1e-2);
  EXPECT_FALSE(all_close(out, batch.out, kFloatTol, "batch statistics"));
}

// The fold against the layer followed by the batch norm, in double: a dense layer's output y = W x
// + b, normalised with the running statistics, equals W' x + b' with the folded W' and b'.
TEST(CpuBatchNorm, FoldIsTheLayerAndTheBatchNormInOne) {
  const int c = 3;
  const std::size_t per_channel = 4;
  const std::vector<double> w = random_vector<double>(c * per_channel, 81);
  const std::vector<double> b = random_vector<double>(c, 82), x = random_vector<double>(4, 83);
  const std::vector<double> gamma = random_vector<double>(c, 84),
                            beta = random_vector<double>(c, 85);
  const std::vector<double> mean = random_vector<double>(c, 86);
  std::vector<double> var = random_vector<double>(c, 87);
  for (double& v : var) v = v * v + 0.1;
  const double eps = 1e-2;
  for (const bool with_bias : {true, false}) {
    SCOPED_TRACE(with_bias ? "bias" : "no bias");
    std::vector<double> folded_w = nan_vector<double>(w.size()), folded_b = nan_vector<double>(c);
    const BatchNormFold<double> fold{gamma.data(), beta.data(),     mean.data(),    var.data(),
                                     eps,          folded_w.data(), folded_b.data()};
    cpu::batch_norm_fold(fold, c, per_channel, w.data(), with_bias ? b.data() : nullptr);
    std::vector<double> expected, got;
    for (int ch = 0; ch < c; ++ch) {
      double y = with_bias ? b[std::size_t(ch)] : 0.0, y_folded = folded_b[std::size_t(ch)];
      for (std::size_t r = 0; r < per_channel; ++r) {
        y += w[std::size_t(ch) * per_channel + r] * x[r];
        y_folded += folded_w[std::size_t(ch) * per_channel + r] * x[r];
      }
      const std::size_t k = std::size_t(ch);
      expected.push_back(gamma[k] * (y - mean[k]) / std::sqrt(var[k] + eps) + beta[k]);
      got.push_back(y_folded);
    }
    ASSERT_TRUE(any_nonzero(expected));
    EXPECT_TRUE(all_close(got, expected, kDoubleTol, "folded output"));
  }
}

// Loss = sum(out * w) of the training forward: dout = w, and the gradients follow by central
// differences of reference_forward.
TEST(CpuBatchNorm, BackwardMatchesCentralDifferences) {
  for (const BatchNormGeometry g : {BatchNormGeometry{3, 2, 5}, BatchNormGeometry{5, 3, 1}}) {
    SCOPED_TRACE("plane " + std::to_string(g.plane));
    const double eps = 1e-3;
    Inputs<double> in(g, 31);
    const std::vector<double> w = random_vector<double>(g.size(), 37);
    auto loss = [&](const std::vector<double>& x, const std::vector<double>& gamma,
                    const std::vector<double>& beta) {
      const Reference r = reference_forward(g, x, gamma, beta, eps);
      double sum = 0;
      for (std::size_t i = 0; i < w.size(); ++i) sum += r.out[i] * w[i];
      return sum;
    };
    auto central = [&](std::vector<double>& v, std::size_t i) {
      const double keep = v[i];
      v[i] = keep + kFdStep;
      const double plus = loss(in.x, in.gamma, in.beta);
      v[i] = keep - kFdStep;
      const double minus = loss(in.x, in.gamma, in.beta);
      v[i] = keep;
      return (plus - minus) / (2 * kFdStep);
    };
    std::vector<double> dx_fd, dgamma_fd, dbeta_fd;
    for (std::size_t i = 0; i < in.x.size(); ++i) dx_fd.push_back(central(in.x, i));
    for (int ch = 0; ch < g.c; ++ch) {
      dgamma_fd.push_back(central(in.gamma, std::size_t(ch)));
      dbeta_fd.push_back(central(in.beta, std::size_t(ch)));
    }
    ASSERT_TRUE(any_nonzero(dx_fd));
    ASSERT_TRUE(any_nonzero(dgamma_fd));

    std::vector<double> out(g.size()), mean = nan_vector<double>(std::size_t(g.c)),
                                       inv_std = nan_vector<double>(std::size_t(g.c));
    std::vector<double> rm = in.running_mean, rv = in.running_var;
    double tracked = 0;
    cpu::batch_norm_forward_training<double>(
        g, 0, g.c, BatchNormParams{0.1, eps}, in.x.data(), in.gamma.data(), in.beta.data(),
        out.data(), {}, mean.data(), inv_std.data(), rm.data(), rv.data(), &tracked);
    std::vector<double> dgamma = nan_vector<double>(std::size_t(g.c)),
                        dbeta = nan_vector<double>(std::size_t(g.c)),
                        din = nan_vector<double>(g.size());
    cpu::batch_norm_backward_weights<double>(g, 0, g.c, in.x.data(), w.data(), mean.data(),
                                             inv_std.data(), dgamma.data(), dbeta.data());
    cpu::batch_norm_backward_data<double>(g, 0, g.c, in.x.data(), w.data(), in.gamma.data(),
                                          mean.data(), inv_std.data(), din.data(), {});
    EXPECT_TRUE(all_close(dgamma, dgamma_fd, kFdTol, "dgamma"));
    EXPECT_TRUE(all_close(dbeta, dbeta_fd, kFdTol, "dbeta"));
    EXPECT_TRUE(all_close(din, dx_fd, kFdTol, "din"));
  }
}

TEST(CpuBatchNorm, ChannelSlicesGiveTheSameBits) {
  // The unit splits the channels across threads: any split gives the whole run's bits.
  const BatchNormGeometry g{3, 5, 7};
  const Inputs<float> in(g, 41);
  const std::vector<float> dout = random_vector<float>(g.size(), 43);
  auto run = [&](const std::vector<int>& cuts) {
    std::vector<float> out = nan_vector<float>(g.size()), din = nan_vector<float>(g.size());
    std::vector<float> mean(std::size_t(g.c)), inv_std(std::size_t(g.c)), dgamma(std::size_t(g.c)),
        dbeta(std::size_t(g.c));
    std::vector<float> rm = in.running_mean, rv = in.running_var;
    float tracked = 0;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) {
      cpu::batch_norm_forward_training<float>(
          g, cuts[k], cuts[k + 1], BatchNormParams{}, in.x.data(), in.gamma.data(), in.beta.data(),
          out.data(), {}, mean.data(), inv_std.data(), rm.data(), rv.data(), &tracked);
      cpu::batch_norm_backward_weights<float>(g, cuts[k], cuts[k + 1], in.x.data(), dout.data(),
                                              mean.data(), inv_std.data(), dgamma.data(),
                                              dbeta.data());
      cpu::batch_norm_backward_data<float>(g, cuts[k], cuts[k + 1], in.x.data(), dout.data(),
                                           in.gamma.data(), mean.data(), inv_std.data(), din.data(),
                                           {});
    }
    EXPECT_EQ(tracked, 1.0f);  // counted once, by the slice starting at channel 0
    std::vector<float> all = out;
    for (const auto* v : {&din, &rm, &rv, &dgamma, &dbeta})
      all.insert(all.end(), v->begin(), v->end());
    return all;
  };
  const std::vector<float> whole = run({0, 5});
  ASSERT_TRUE(all_finite(whole));
  EXPECT_TRUE(bitwise_equal(run({0, 2, 5}), whole));
  EXPECT_TRUE(bitwise_equal(run({0, 1, 2, 3, 4, 5}), whole));
}

TEST(CpuBatchNorm, FusedActivationsGiveTheSameBits) {
  const BatchNormGeometry g{2, 3, 6};
  const Inputs<float> in(g, 51);
  expect_fused_forward_same_bits<float>(g.size(), [&](float* z, const FusedActivation<float>& f) {
    std::vector<float> mean(3), inv_std(3), rm = in.running_mean, rv = in.running_var;
    float tracked = 0;
    cpu::batch_norm_forward_training<float>(g, 0, g.c, BatchNormParams{}, in.x.data(),
                                            in.gamma.data(), in.beta.data(), z, f, mean.data(),
                                            inv_std.data(), rm.data(), rv.data(), &tracked);
  });
  expect_fused_forward_same_bits<float>(g.size(), [&](float* z, const FusedActivation<float>& f) {
    cpu::batch_norm_forward_inference<float>(g, 0, g.c, BatchNormParams{}, in.x.data(),
                                             in.gamma.data(), in.beta.data(),
                                             in.running_mean.data(), in.running_var.data(), z, f);
  });
  const std::vector<float> dout = random_vector<float>(g.size(), 53);
  const std::vector<float> mean = {0.5f, -0.25f, 1.0f}, inv_std = {1.5f, 0.75f, 2.0f};
  expect_fused_backward_same_bits<float>(
      g.size(), 55, [&](float* din, const FusedActivationGrad<float>& f) {
        cpu::batch_norm_backward_data<float>(g, 0, g.c, in.x.data(), dout.data(), in.gamma.data(),
                                             mean.data(), inv_std.data(), din, f);
      });
}

// --- The layer in a network -------------------------------------------------------------------

std::string model_file(const std::string& bn_fields) {
  return R"({"name": "bn", "input": [1, 6, 6], "classes": 3, "layers": [
    {"type": "conv2d", "filters": 2, "kernel": 3},
    {"type": "batch_norm")" +
         bn_fields + R"(}, {"type": "relu"}, {"type": "dense", "units": 3}]})";
}

TEST(BatchNormLayer, ModelFileFieldsAreChecked) {
  const Network good = network_from_json(model_file(R"(, "momentum": 0.25, "eps": 0.001)"), "m");
  EXPECT_EQ(good.layers()[1].name, "bn1");
  struct Case {
    const char* fields;
    const char* message;
  };
  for (const Case c : {Case{R"(, "momentum": 1.5)", "'momentum' must be a number from 0 to 1"},
                       Case{R"(, "momentum": -0.1)", "'momentum' must be a number from 0 to 1"},
                       Case{R"(, "momentum": "fast")", "'momentum' must be a number"},
                       Case{R"(, "eps": 0)", "'eps' must be greater than 0, got 0"},
                       Case{R"(, "eps": 1e-60)", "'eps' must be greater than 0"},
                       Case{R"(, "eps": -1)", "'eps' must be greater than 0, got -1"},
                       Case{R"(, "eps": "small")", "'eps' must be a number"}}) {
    SCOPED_TRACE(c.fields);
    const std::string message =
        error_message([&] { network_from_json(model_file(c.fields), "m"); });
    EXPECT_TRUE(contains(message, c.message));
    EXPECT_TRUE(contains(message, "layer"));
  }
}

Network bn_network() {
  Network network(SampleShape{2, 6, 6}, 3, "bn_net");
  network.conv2d(4, 3).batch_norm(0.2f).relu().max_pool(2, 2).dense(5).batch_norm().relu().dense(3);
  return network;
}

void train_steps(Model& model, int steps, std::uint64_t seed) {
  const int n = model.options().batch_size;
  model.set_optimizer(OptimizerParams{0.05f, 0.9f, 0.0f});
  for (int step = 0; step < steps; ++step) {
    const std::vector<float> images = random_vector<float>(
        std::size_t(n) * std::size_t(model.network().input().size()), seed + std::uint64_t(step));
    std::vector<std::int32_t> labels;
    for (int i = 0; i < n; ++i) labels.push_back((i * 7 + step) % 3);
    model.train_step(images.data(), labels.data(), n);
  }
}

TEST(BatchNormLayer, ParametersStateAndSummary) {
  Model model(bn_network(), cpu_options(4));
  EXPECT_EQ(model.parameter("bn1.weight"), std::vector<float>(4, 1.0f));
  EXPECT_EQ(model.parameter("bn1.bias"), std::vector<float>(4, 0.0f));
  std::vector<std::string> names;
  for (const ParameterInfo& p : model.state_tensors()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"bn1.running_mean", "bn1.running_var",
                                             "bn1.num_batches_tracked", "bn2.running_mean",
                                             "bn2.running_var", "bn2.num_batches_tracked"}));
  EXPECT_TRUE(model.state_tensors()[2].shape.empty());  // a scalar, as PyTorch's
  EXPECT_EQ(model.state("bn1.running_var"), std::vector<float>(4, 1.0f));
  const std::vector<LayerCost> costs = layer_costs(bn_network());
  EXPECT_EQ(costs[1].description, "batch norm m=0.2 eps=1e-05");
  EXPECT_EQ(costs[5].description, "batch norm");  // the defaults
  EXPECT_EQ(costs[5].flops, 2 * 5);
  EXPECT_EQ(costs[1].parameters, 8);
  EXPECT_EQ(costs[1].flops, 2 * 4 * 4 * 4);
}

TEST(BatchNormLayer, TrainingUpdatesRunningStatisticsAndEvaluationUsesThem) {
  Model model(bn_network(), cpu_options(4));
  train_steps(model, 3, 61);
  EXPECT_EQ(model.state("bn1.num_batches_tracked"), std::vector<float>{3.0f});
  const std::vector<float> rv = model.state("bn2.running_var");
  EXPECT_NE(rv, std::vector<float>(5, 1.0f));
  // Evaluation depends on the running statistics; training forward does not.
  const std::vector<float> images = random_vector<float>(4 * 72, 67);
  const std::vector<float> before = model.logits(images.data(), 4);
  std::vector<float> shifted = model.state("bn2.running_mean");
  for (float& v : shifted) v += 1.0f;
  model.set_state("bn2.running_mean", shifted);
  EXPECT_NE(model.logits(images.data(), 4), before);
}

TEST(BatchNormLayer, FusedAndUnfusedTrainTheSame) {
  CompileOptions fused = cpu_options(4), unfused = cpu_options(4);
  unfused.fuse_activations = false;
  Model a(bn_network(), fused), b(bn_network(), unfused);
  train_steps(a, 4, 71);
  train_steps(b, 4, 71);
  for (const ParameterInfo& p : a.parameters())
    EXPECT_EQ(a.parameter(p.name), b.parameter(p.name)) << p.name;
  for (const ParameterInfo& p : a.state_tensors())
    EXPECT_EQ(a.state(p.name), b.state(p.name)) << p.name;
  EXPECT_TRUE(any_nonzero(a.gradient("bn1.weight")));
}

// Inference on the fast CPU path folds bn1 into conv1 and bn2 into the dense layer before it:
// the folded layer's output is the batch norm's (one buffer), and the logits agree with the
// reference path's, which runs the batch norms as written, on the same trained weights.
TEST(BatchNormLayer, FastInferenceFoldsIntoTheLayerBefore) {
  Model trained(bn_network(), cpu_options(4));
  train_steps(trained, 3, 91);
  CompileOptions reference_options = cpu_options(4), unfused_options = cpu_options(4);
  reference_options.device = Device::reference;
  unfused_options.fuse_activations = false;  // no fusion: no folding either
  Model reference(bn_network(), reference_options), unfused(bn_network(), unfused_options);
  for (Model* m : {&reference, &unfused}) {
    for (const ParameterInfo& p : trained.parameters())
      m->set_parameter(p.name, trained.parameter(p.name));
    for (const ParameterInfo& p : trained.state_tensors())
      m->set_state(p.name, trained.state(p.name));
  }
  ASSERT_NE(trained.state("bn1.running_var"), std::vector<float>(4, 1.0f));
  const std::vector<float> images = random_vector<float>(4 * 72, 93);
  const std::vector<float> folded = trained.logits(images.data(), 4);
  const std::vector<float> expected = reference.logits(images.data(), 4);
  ASSERT_TRUE(any_nonzero(expected));
  EXPECT_TRUE(all_close(folded, expected, kFoldedLogits, "logits"));
  EXPECT_TRUE(
      all_close(unfused.logits(images.data(), 4), expected, kFoldedLogits, "unfused logits"));
  // Layers 0/1 are conv1/bn1, 4/5 the dense layer and bn2.
  EXPECT_EQ(trained.layer_output(0, 4), trained.layer_output(1, 4));
  EXPECT_EQ(trained.layer_output(4, 4), trained.layer_output(5, 4));
  EXPECT_NE(reference.layer_output(0, 4), reference.layer_output(1, 4));
  EXPECT_NE(unfused.layer_output(0, 4), unfused.layer_output(1, 4));
}

TEST(BatchNormLayer, OneValuePerChannelInTrainingIsAnError) {
  // bn2 follows a dense layer: a batch of one gives one value per feature.
  Model model(bn_network(), cpu_options(1));
  const std::vector<float> image = random_vector<float>(72, 73);
  const std::int32_t label = 0;
  expect_error([&] { model.train_step(image.data(), &label, 1); },
               {"bn2", "more than one value per channel", "batch of 1"});
  EXPECT_EQ(model.predict(image.data(), 1).size(), 1u);  // evaluation is fine
}

class BatchNormCheckpoint : public ScratchDirTest {
 protected:
  BatchNormCheckpoint() : ScratchDirTest("bn_ckpt") {}
};

TEST_F(BatchNormCheckpoint, StateRoundTripsUnderPyTorchNames) {
  Model source(bn_network(), cpu_options(4));
  train_steps(source, 2, 81);
  save_checkpoint(path("a.safetensors"), source, 1);
  const SafeTensors file = SafeTensors::load(path("a.safetensors"));
  for (const char* name :
       {"bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"})
    EXPECT_TRUE(file.contains(name)) << name;
  EXPECT_TRUE(file.get("bn1.num_batches_tracked").shape.empty());
  EXPECT_EQ(file.get("bn1.num_batches_tracked").as_floats(), std::vector<float>{2.0f});

  Model target(bn_network(), cpu_options(4, 9));
  load_checkpoint(path("a.safetensors"), target);
  for (const ParameterInfo& p : source.state_tensors())
    EXPECT_EQ(target.state(p.name), source.state(p.name)) << p.name;
  const std::vector<float> images = random_vector<float>(4 * 72, 83);
  EXPECT_EQ(target.logits(images.data(), 4), source.logits(images.data(), 4));
}

TEST_F(BatchNormCheckpoint, NegativeOrNaNRunningVarIsRefused) {
  Model source(bn_network(), cpu_options(4));
  train_steps(source, 1, 91);
  save_checkpoint(path("good.safetensors"), source, 1);
  for (const float bad : {-0.5f, std::nanf("")}) {
    SafeTensors file = SafeTensors::load(path("good.safetensors"));
    SafeTensors changed;
    changed.metadata = file.metadata;
    for (const std::string& name : file.names()) {
      if (name != "bn2.running_var") {
        changed.add(name, file.get(name));
        continue;
      }
      std::vector<float> values = file.get(name).as_floats();
      values[3] = bad;
      changed.add_f32(name, {5}, values.data());
    }
    changed.save(path("bad.safetensors"));
    Model target(bn_network(), cpu_options(4, 2));
    const std::vector<float> weight_before = target.parameter("conv1.weight");
    expect_error([&] { load_checkpoint(path("bad.safetensors"), target); },
                 {"bad.safetensors", "bn2.running_var", "index 3", "must be >= 0"});
    EXPECT_EQ(target.parameter("conv1.weight"), weight_before);  // nothing loaded
    expect_error([&] { target.set_state("bn2.running_var", std::vector<float>(5, bad)); },
                 {"bn2.running_var", "index 0"});
  }
}

}  // namespace
}  // namespace cnnrt
