// Compiled models on the CPU: parameter names and PyTorch shapes, the initialisation schemes
// against their formulas, seeding, parameter access, a whole forward pass and its loss and
// gradients against values computed by hand, SGD with momentum and weight decay against the
// update rule, and the errors for bad batches.
#include "cnnrt/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/network.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

// Float arithmetic in the backend against double arithmetic here.
constexpr test::Tolerance kFloatTol{1e-6, 1e-5};
// A loss of order 1 summed in float.
constexpr double kLossAtol = 1e-5;
// The uniform schemes' largest draw may exceed the bound by float rounding only.
constexpr double kBoundRounding = 1e-6;
// The sample standard deviation of thousands of draws is within a few percent of the formula.
constexpr double kStdRelTolerance = 0.05;

// One thread, and He-uniform unless a test names another scheme.
CompileOptions cpu_options(int batch, std::uint64_t seed = 1,
                           InitScheme init = InitScheme::he_uniform) {
  CompileOptions o = test::cpu_options(batch, seed, 1);
  o.init = init;
  return o;
}

TEST(ModelTest, LeNet5ParameterNamesShapesAndCount) {
  const Model model(load_network("lenet5"), cpu_options(2));
  struct Expected {
    const char* name;
    std::vector<std::int64_t> shape;
  };
  const std::vector<Expected> expected = {{"conv1.weight", {6, 1, 5, 5}},  {"conv1.bias", {6}},
                                          {"conv2.weight", {16, 6, 5, 5}}, {"conv2.bias", {16}},
                                          {"fc1.weight", {120, 400}},      {"fc1.bias", {120}},
                                          {"fc2.weight", {84, 120}},       {"fc2.bias", {84}},
                                          {"fc3.weight", {10, 84}},        {"fc3.bias", {10}}};
  const std::vector<ParameterInfo>& params = model.parameters();
  ASSERT_EQ(params.size(), expected.size());
  std::int64_t offset = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    SCOPED_TRACE(expected[i].name);
    EXPECT_EQ(params[i].name, expected[i].name);
    EXPECT_EQ(params[i].shape, expected[i].shape);
    std::int64_t count = 1;
    for (auto d : expected[i].shape) count *= d;
    EXPECT_EQ(params[i].count, count);
    EXPECT_EQ(params[i].offset, offset);  // one contiguous buffer in layer order
    offset += count;
  }
  // 6*25+6 + 16*150+16 + 400*120+120 + 120*84+84 + 84*10+10
  EXPECT_EQ(model.parameter_count(), 61706);
  EXPECT_EQ(&model.parameter_info("fc2.bias"), &params[7]);
  EXPECT_THROW(model.parameter_info("fc4.weight"), Error);
}

TEST(ModelTest, LayerShapesMatchTheNetwork) {
  const Network network = load_network("lenet5-classic");
  const Model model(network, cpu_options(3));
  const std::vector<SampleShape> compiled = model.layer_shapes();
  const std::vector<SampleShape> inferred = network.infer_shapes();
  ASSERT_EQ(compiled.size(), inferred.size());
  for (std::size_t i = 0; i < compiled.size(); ++i)
    EXPECT_EQ(compiled[i].to_string(), inferred[i].to_string());
  EXPECT_GT(model.arena_bytes(), std::size_t(3 * model.parameter_count()) * sizeof(float));
}

struct SampleStats {
  double mean = 0, std = 0, max_abs = 0;
  double fraction_beyond = 0;  // of |w| > threshold
};

SampleStats sample_stats(const std::vector<float>& w, double threshold) {
  SampleStats s;
  for (float v : w) s.mean += v;
  s.mean /= double(w.size());
  double beyond = 0;
  for (float v : w) {
    s.std += (v - s.mean) * (v - s.mean);
    s.max_abs = std::max(s.max_abs, double(std::fabs(v)));
    if (std::fabs(v) > threshold) ++beyond;
  }
  s.std = std::sqrt(s.std / double(w.size() - 1));
  s.fraction_beyond = beyond / double(w.size());
  return s;
}

TEST(ModelTest, InitSchemesFollowTheirFormulas) {
  struct Scheme {
    InitScheme scheme;
    const char* name;
    bool uniform;
    double (*std_of)(double fan_in, double fan_out);
  };
  const Scheme schemes[] = {
      {InitScheme::he_uniform, "he-uniform", true,
       [](double in, double) { return std::sqrt(2 / in); }},
      {InitScheme::he_normal, "he-normal", false,
       [](double in, double) { return std::sqrt(2 / in); }},
      {InitScheme::xavier_uniform, "xavier-uniform", true,
       [](double in, double out) { return std::sqrt(2 / (in + out)); }},
      {InitScheme::xavier_normal, "xavier-normal", false,
       [](double in, double out) { return std::sqrt(2 / (in + out)); }},
      {InitScheme::lecun_uniform, "lecun-uniform", true,
       [](double in, double) { return std::sqrt(1 / in); }},
      {InitScheme::lecun_normal, "lecun-normal", false,
       [](double in, double) { return std::sqrt(1 / in); }},
  };
  struct Tensor {
    const char* name;
    double fan_in, fan_out;
  };
  // fc1: 400 -> 120 (48000 weights); conv2: 6x5x5 -> 16x5x5 (2400 weights).
  const Tensor tensors[] = {{"fc1.weight", 400, 120}, {"conv2.weight", 150, 400}};
  const Network network = load_network("lenet5");
  for (const Scheme& scheme : schemes) {
    SCOPED_TRACE(scheme.name);
    EXPECT_EQ(parse_init_scheme(scheme.name), scheme.scheme);
    const Model model(network, cpu_options(1, 7, scheme.scheme));
    for (const Tensor& t : tensors) {
      SCOPED_TRACE(t.name);
      const double std = scheme.std_of(t.fan_in, t.fan_out);
      const double bound = std::sqrt(3.0) * std;  // U(-b, b) has std b / sqrt(3)
      const std::vector<float> w = model.parameter(t.name);
      const SampleStats s = sample_stats(w, 2 * std);
      EXPECT_NEAR(s.std, std, kStdRelTolerance * std);
      EXPECT_NEAR(s.mean, 0.0, 5 * std / std::sqrt(double(w.size())));
      if (scheme.uniform) {
        EXPECT_LE(s.max_abs, bound * (1 + kBoundRounding));
        EXPECT_GE(s.max_abs, 0.95 * bound);  // fills the interval
        EXPECT_EQ(s.fraction_beyond, 0.0);   // 2 std > bound = 1.73 std
      } else {
        // A normal law puts 4.55% of its mass beyond 2 std; a uniform law none.
        EXPECT_GT(s.fraction_beyond, 0.03);
        EXPECT_LT(s.fraction_beyond, 0.065);
        EXPECT_GT(s.max_abs, bound);
      }
    }
    for (const ParameterInfo& p : model.parameters())
      if (p.shape.size() == 1) {
        EXPECT_FALSE(test::any_nonzero(model.parameter(p.name))) << p.name;
      }
  }
  EXPECT_THROW(parse_init_scheme("he"), Error);
}

TEST(ModelTest, SameSeedSameWeightsDifferentSeedDifferent) {
  const Network network = load_network("lenet5");
  const Model a(network, cpu_options(2, 11));
  const Model b(network, cpu_options(4, 11));  // the batch size does not change the weights
  const Model c(network, cpu_options(2, 12));
  for (const ParameterInfo& p : a.parameters()) {
    SCOPED_TRACE(p.name);
    EXPECT_EQ(a.parameter(p.name), b.parameter(p.name));
    if (p.shape.size() > 1) {
      EXPECT_NE(a.parameter(p.name), c.parameter(p.name));
    }
  }
}

TEST(ModelTest, SetAndGetParametersAndMomentum) {
  Model model(load_network("lenet5"), cpu_options(2));
  const std::vector<float> values = test::random_vector<float>(16 * 6 * 25, 3);
  model.set_parameter("conv2.weight", values);
  EXPECT_EQ(model.parameter("conv2.weight"), values);
  const std::vector<float> momentum = test::random_vector<float>(84, 4);
  model.set_momentum("fc2.bias", momentum);
  EXPECT_EQ(model.momentum("fc2.bias"), momentum);
  EXPECT_FALSE(test::any_nonzero(model.momentum("fc2.weight")));  // starts at zero

  const std::string message = test::error_message(
      [&] { model.set_parameter("conv2.weight", std::vector<float>(10, 1.0f)); });
  EXPECT_TRUE(test::contains(message, "conv2.weight"));
  EXPECT_TRUE(test::contains(message, "2400"));
  EXPECT_TRUE(test::contains(message, "10"));
  EXPECT_THROW(model.set_momentum("fc1.bias", std::vector<float>(121)), Error);
  EXPECT_TRUE(test::contains(test::error_message([&] { model.parameter("conv9.weight"); }),
                             "conv9.weight"));
  EXPECT_EQ(model.parameter("conv2.weight"), values);  // failed sets changed nothing
}

// Softmax cross-entropy of one row, in double.
double cross_entropy(const std::vector<double>& logits, int label) {
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (double z : logits) sum += std::exp(z - top);
  return -(logits[std::size_t(label)] - top - std::log(sum));
}

std::vector<double> softmax(const std::vector<double>& logits) {
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p;
  double sum = 0;
  for (double z : logits) sum += std::exp(z - top);
  for (double z : logits) p.push_back(std::exp(z - top) / sum);
  return p;
}

TEST(ModelTest, DenseOnlyForwardLossAndGradientsByHand) {
  // input 1x2x2 flattened to 4 values, one dense layer of 2 units.
  Network network(SampleShape{1, 2, 2}, 2, "tiny");
  network.dense(2);
  Model model(network, cpu_options(2));
  const std::vector<float> w = {0.5f, -1.0f, 0.25f, 2.0f, -0.75f, 0.5f, 1.5f, -0.25f};  // [2, 4]
  const std::vector<float> b = {0.1f, -0.2f};
  model.set_parameter("fc1.weight", w);
  model.set_parameter("fc1.bias", b);
  const std::vector<float> x = {1.0f, 2.0f, -1.0f, 0.5f, -0.5f, 0.0f, 3.0f, 1.0f};  // [2, 4]
  const std::vector<std::int32_t> labels = {1, 0};

  // Sample 0: z0 = 0.5 - 2 - 0.25 + 1 + 0.1 = -0.65; z1 = -0.75 + 1 - 1.5 - 0.125 - 0.2 = -1.575
  // Sample 1: z0 = -0.25 + 0 + 0.75 + 2 + 0.1 = 2.6;  z1 = 0.375 + 0 + 4.5 - 0.25 - 0.2 = 4.425
  const std::vector<double> expected_logits = {-0.65, -1.575, 2.6, 4.425};
  EXPECT_TRUE(test::all_close(model.logits(x.data(), 2), expected_logits, kFloatTol, "logits"));
  EXPECT_EQ(model.predict(x.data(), 2), (std::vector<int>{0, 1}));

  const double loss0 = cross_entropy({-0.65, -1.575}, 1);
  const double loss1 = cross_entropy({2.6, 4.425}, 0);
  const BatchStats eval = model.evaluate_batch(x.data(), labels.data(), 2);
  EXPECT_EQ(eval.samples, 2);
  EXPECT_EQ(eval.correct, 0);  // both predictions are wrong
  EXPECT_NEAR(eval.mean_loss(), (loss0 + loss1) / 2, kLossAtol);

  // dL/dz = (softmax - onehot) / N; dW = dz^T x; db = sum of dz.
  const BatchStats stats = model.forward_backward(x.data(), labels.data(), 2);
  EXPECT_NEAR(stats.loss_sum, loss0 + loss1, kLossAtol);
  const std::vector<std::vector<double>> probs = {softmax({-0.65, -1.575}), softmax({2.6, 4.425})};
  std::vector<double> dw(8, 0.0), db(2, 0.0);
  for (int n = 0; n < 2; ++n)
    for (int k = 0; k < 2; ++k) {
      const double dz = (probs[n][k] - (labels[n] == k ? 1.0 : 0.0)) / 2.0;
      db[k] += dz;
      for (int i = 0; i < 4; ++i) dw[k * 4 + i] += dz * x[n * 4 + i];
    }
  const std::vector<float> grad_w = model.gradient("fc1.weight");
  ASSERT_TRUE(test::any_nonzero(grad_w));
  EXPECT_TRUE(test::all_close(grad_w, dw, kFloatTol, "fc1.weight grad"));
  EXPECT_TRUE(test::all_close(model.gradient("fc1.bias"), db, kFloatTol, "fc1.bias grad"));
}

TEST(ModelTest, ConvReluDenseForwardByHand) {
  // 1x3x3 input, one 2x2 valid filter -> 1x2x2, ReLU, dense 3.
  Network network(SampleShape{1, 3, 3}, 3);
  network.conv2d(1, 2).relu().dense(3);
  Model model(network, cpu_options(1));
  const std::vector<float> kernel = {1.0f, -1.0f, 0.5f, 2.0f};
  const float conv_bias = -0.5f;
  const std::vector<float> w = test::random_vector<float>(12, 21);
  const std::vector<float> b = {0.3f, -0.1f, 0.2f};
  model.set_parameter("conv1.weight", kernel);
  model.set_parameter("conv1.bias", {conv_bias});
  model.set_parameter("fc1.weight", w);
  model.set_parameter("fc1.bias", b);
  const std::vector<float> x = {0.5f, -1.0f, 2.0f, 1.5f, 0.0f, -0.5f, -2.0f, 1.0f, 0.25f};

  std::vector<double> hidden(4);
  for (int oy = 0; oy < 2; ++oy)
    for (int ox = 0; ox < 2; ++ox) {
      double sum = conv_bias;  // cross-correlation, as PyTorch's conv2d
      for (int ky = 0; ky < 2; ++ky)
        for (int kx = 0; kx < 2; ++kx) sum += kernel[ky * 2 + kx] * x[(oy + ky) * 3 + (ox + kx)];
      hidden[oy * 2 + ox] = std::max(sum, 0.0);
    }
  ASSERT_TRUE(test::any_nonzero(hidden));
  ASSERT_NE(std::count(hidden.begin(), hidden.end(), 0.0), 0);  // the ReLU cuts something
  std::vector<double> logits(3);
  for (int k = 0; k < 3; ++k) {
    logits[k] = b[k];
    for (int i = 0; i < 4; ++i) logits[k] += w[k * 4 + i] * hidden[i];
  }
  EXPECT_TRUE(test::all_close(model.logits(x.data(), 1), logits, kFloatTol, "logits"));
  const std::int32_t label = 2;
  EXPECT_NEAR(model.evaluate_batch(x.data(), &label, 1).mean_loss(), cross_entropy(logits, 2),
              kLossAtol);
}

// A fixed batch for lenet5: seeded inputs and labels.
struct FixedBatch {
  std::vector<float> images;
  std::vector<std::int32_t> labels;
};

FixedBatch lenet_batch(int n, std::uint64_t seed) {
  FixedBatch batch;
  batch.images = test::random_vector<float>(std::size_t(n) * 28 * 28, seed);
  for (int i = 0; i < n; ++i) batch.labels.push_back((i * 7 + 3) % 10);
  return batch;
}

TEST(ModelTest, TrainStepReducesLossOnAFixedBatch) {
  Model model(load_network("lenet5"), cpu_options(8, 5));
  model.set_optimizer(OptimizerParams{0.02f, 0.9f, 0.0f});
  const FixedBatch batch = lenet_batch(8, 9);
  const double first = model.train_step(batch.images.data(), batch.labels.data(), 8).mean_loss();
  double last = first;
  for (int step = 0; step < 15; ++step)
    last = model.train_step(batch.images.data(), batch.labels.data(), 8).mean_loss();
  const double after =
      model.evaluate_batch(batch.images.data(), batch.labels.data(), 8).mean_loss();
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_LT(last, 0.5 * first);
  EXPECT_LT(after, 0.5 * first);
  EXPECT_EQ(model.step_counter(), 16u);
}

TEST(ModelTest, SgdMomentumAndWeightDecayFollowTheUpdateRule) {
  Model model(load_network("lenet5"), cpu_options(4, 3));
  const OptimizerParams sgd{0.05f, 0.9f, 0.01f};
  model.set_optimizer(sgd);
  EXPECT_EQ(model.optimizer().momentum, 0.9f);
  const FixedBatch batch = lenet_batch(4, 13);
  std::vector<std::vector<float>> p0, g0;
  model.forward_backward(batch.images.data(), batch.labels.data(), 4);
  EXPECT_EQ(model.step_counter(), 0u);  // no update, no step
  for (const ParameterInfo& p : model.parameters()) {
    p0.push_back(model.parameter(p.name));
    g0.push_back(model.gradient(p.name));
  }
  // Step 1 from v = 0: v1 = g + wd * p0; p1 = p0 - lr * v1 (the same batch, so the same g).
  model.train_step(batch.images.data(), batch.labels.data(), 4);
  EXPECT_EQ(model.step_counter(), 1u);
  std::vector<std::vector<double>> v1(p0.size()), p1(p0.size());
  for (std::size_t t = 0; t < p0.size(); ++t) {
    const ParameterInfo& p = model.parameters()[t];
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(test::any_nonzero(g0[t]));
    for (std::size_t i = 0; i < p0[t].size(); ++i) {
      v1[t].push_back(double(g0[t][i]) + sgd.weight_decay * double(p0[t][i]));
      p1[t].push_back(double(p0[t][i]) - sgd.lr * v1[t][i]);
    }
    EXPECT_TRUE(test::all_close(model.momentum(p.name), v1[t], kFloatTol, "v1"));
    EXPECT_TRUE(test::all_close(model.parameter(p.name), p1[t], kFloatTol, "p1"));
  }
  // Step 2: v2 = momentum * v1 + g1 + wd * p1, where g1 (the gradient at p1) is what the gradient
  // buffer holds after the step.
  model.train_step(batch.images.data(), batch.labels.data(), 4);
  for (std::size_t t = 0; t < p0.size(); ++t) {
    const ParameterInfo& p = model.parameters()[t];
    SCOPED_TRACE(p.name);
    const std::vector<float> g1 = model.gradient(p.name);
    std::vector<double> v2, p2;
    for (std::size_t i = 0; i < g1.size(); ++i) {
      v2.push_back(sgd.momentum * v1[t][i] + g1[i] + sgd.weight_decay * p1[t][i]);
      p2.push_back(p1[t][i] - sgd.lr * v2[i]);
    }
    EXPECT_TRUE(test::all_close(model.momentum(p.name), v2, kFloatTol, "v2"));
    EXPECT_TRUE(test::all_close(model.parameter(p.name), p2, kFloatTol, "p2"));
  }
  EXPECT_THROW(model.set_optimizer(OptimizerParams{-0.1f, 0.0f, 0.0f}), Error);
}

// Test-time flips: each image's class is the argmax of the mean of the softmax of its logits and
// of its mirror's, computed here by hand from the dense layer's weights; the loss is -log of that
// mean at the label. A batch of 2 over 5 images ends with a partial batch.
TEST(ModelTest, FlipTestTimeAugmentationAveragesTheTwoSoftmaxes) {
  constexpr int kC = 2, kH = 2, kW = 3, kPixels = kC * kH * kW, kClasses = 3, kCount = 5;
  Network network(SampleShape{kC, kH, kW}, kClasses, "tta");
  network.dense(kClasses);
  Model model(network, cpu_options(2, 11));
  std::vector<float> w(kClasses * kPixels);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = float(int(i * 5 % 13) - 6) * 0.125f;
  const std::vector<float> b = {0.1f, -0.2f, 0.05f};
  model.set_parameter("fc1.weight", w);
  model.set_parameter("fc1.bias", b);
  Dataset data;
  data.count = kCount, data.channels = kC, data.height = kH, data.width = kW, data.classes = 3;
  for (int i = 0; i < kCount * kPixels; ++i) data.images.push_back(std::uint8_t(i * 37 % 256));
  data.labels = {0, 1, 2, 1, 0};
  const float mean = 0.5f, std_dev = 0.25f;
  model.set_normalization(Normalization{{mean}, {std_dev}});
  model.upload_eval_set(data);

  double loss = 0, plain_loss = 0;
  std::int64_t correct = 0, plain_correct = 0;
  for (int s = 0; s < kCount; ++s) {
    std::vector<double> avg(kClasses, 0.0), plain;
    for (const bool mirror : {false, true}) {
      std::vector<double> z(b.begin(), b.end());
      for (int k = 0; k < kClasses; ++k)
        for (int c = 0; c < kC; ++c)
          for (int y = 0; y < kH; ++y)
            for (int x = 0; x < kW; ++x) {
              const int from = (c * kH + y) * kW + (mirror ? kW - 1 - x : x);
              const double v =
                  (data.images[std::size_t(s * kPixels + from)] / 255.0 - mean) / std_dev;
              z[k] += double(w[std::size_t(k * kPixels + (c * kH + y) * kW + x)]) * v;
            }
      const std::vector<double> p = softmax(z);
      if (!mirror) plain = z;
      for (int k = 0; k < kClasses; ++k) avg[k] += p[k] / 2;
    }
    const int label = data.labels[std::size_t(s)];
    loss -= std::log(avg[label]);
    correct += std::max_element(avg.begin(), avg.end()) - avg.begin() == label;
    plain_loss += cross_entropy(plain, label);
    plain_correct += std::max_element(plain.begin(), plain.end()) - plain.begin() == label;
  }
  const BatchStats tta = model.evaluate_resident(TestTimeAugment::flip);
  EXPECT_EQ(tta.samples, kCount);
  EXPECT_EQ(tta.correct, correct);
  EXPECT_NEAR(tta.loss_sum, loss, kLossAtol);
  const BatchStats none = model.evaluate_resident(TestTimeAugment::none);
  EXPECT_EQ(none.correct, plain_correct);
  EXPECT_NEAR(none.loss_sum, plain_loss, kLossAtol);
  EXPECT_GT(std::abs(tta.loss_sum - none.loss_sum), 10 * kLossAtol);  // the mirror mattered
  EXPECT_EQ(parse_test_time_augment("flip"), TestTimeAugment::flip);
  EXPECT_THROW(parse_test_time_augment("flop"), Error);
}

TEST(ModelTest, EvaluateBatchChangesNoParameter) {
  const Network network = load_network("lenet5-classic");
  Model model(network, cpu_options(4, 2));
  model.set_optimizer(OptimizerParams{0.1f, 0.9f, 0.0f});
  const FixedBatch batch = lenet_batch(4, 17);
  model.train_step(batch.images.data(), batch.labels.data(), 4);  // non-zero momentum
  std::vector<std::vector<float>> params, velocity, grads;
  for (const ParameterInfo& p : model.parameters()) {
    params.push_back(model.parameter(p.name));
    velocity.push_back(model.momentum(p.name));
    grads.push_back(model.gradient(p.name));
  }
  const BatchStats first = model.evaluate_batch(batch.images.data(), batch.labels.data(), 4);
  const BatchStats second = model.evaluate_batch(batch.images.data(), batch.labels.data(), 4);
  EXPECT_EQ(first.loss_sum, second.loss_sum);
  EXPECT_EQ(first.correct, second.correct);
  EXPECT_EQ(model.step_counter(), 1u);
  for (std::size_t t = 0; t < params.size(); ++t) {
    const std::string& name = model.parameters()[t].name;
    EXPECT_EQ(model.parameter(name), params[t]) << name;
    EXPECT_EQ(model.momentum(name), velocity[t]) << name;
    EXPECT_EQ(model.gradient(name), grads[t]) << name;
  }
}

TEST(ModelTest, PredictIsTheArgmaxOfTheLogits) {
  Model model(load_network("lenet5"), cpu_options(6, 4));
  const FixedBatch batch = lenet_batch(5, 23);  // a partial batch
  const std::vector<float> logits = model.logits(batch.images.data(), 5);
  ASSERT_EQ(logits.size(), 50u);
  const std::vector<int> predicted = model.predict(batch.images.data(), 5);
  ASSERT_EQ(predicted.size(), 5u);
  int correct = 0;
  for (int n = 0; n < 5; ++n) {
    int best = 0;
    for (int k = 1; k < 10; ++k)
      if (logits[n * 10 + k] > logits[n * 10 + best]) best = k;
    EXPECT_EQ(predicted[n], best) << "sample " << n;
    correct += best == batch.labels[n];
  }
  EXPECT_EQ(model.evaluate_batch(batch.images.data(), batch.labels.data(), 5).correct, correct);
}

TEST(ModelTest, BadBatchesAreRejected) {
  Model model(load_network("lenet5"), cpu_options(4));
  const FixedBatch batch = lenet_batch(5, 29);
  const std::string too_big =
      test::error_message([&] { model.train_step(batch.images.data(), batch.labels.data(), 5); });
  EXPECT_TRUE(test::contains(too_big, "5"));
  EXPECT_TRUE(test::contains(too_big, "4"));
  EXPECT_THROW(model.logits(batch.images.data(), 5), Error);
  EXPECT_THROW(model.evaluate_batch(batch.images.data(), batch.labels.data(), 0), Error);

  std::vector<std::int32_t> labels = {1, 2, 10, 3};
  const std::string bad_label =
      test::error_message([&] { model.forward_backward(batch.images.data(), labels.data(), 4); });
  EXPECT_TRUE(test::contains(bad_label, "label 10"));
  EXPECT_TRUE(test::contains(bad_label, "[0, 10)"));
  labels[2] = -1;
  EXPECT_TRUE(test::contains(
      test::error_message([&] { model.evaluate_batch(batch.images.data(), labels.data(), 4); }),
      "label -1"));
  EXPECT_EQ(model.step_counter(), 0u);
}

TEST(ModelTest, ResidentSetsMustFitTheClassesAndShape) {
  Network network(SampleShape{1, 4, 4}, 5, "five");
  network.dense(5);
  Model model(network, cpu_options(4));
  Dataset data;
  data.count = 3;
  data.height = data.width = 4;
  data.images.assign(3 * 16, 128);
  data.labels = {1, 7, 2};  // 7 is not one of the model's 5 classes
  for (int eval = 0; eval < 2; ++eval) {
    const std::string message = test::error_message([&] {
      if (eval != 0) {
        model.upload_eval_set(data);
      } else {
        model.upload_train_set(data);
      }
    });
    EXPECT_TRUE(test::contains(message, "label 7"));
    EXPECT_TRUE(test::contains(message, "sample 1"));
    EXPECT_TRUE(test::contains(message, "5 classes"));
  }
  data.labels[1] = 4;
  model.upload_train_set(data);
  model.set_optimizer(OptimizerParams{0.1f, 0.0f, 0.0f});
  EXPECT_EQ(model.train_epoch(0).samples, 3);

  Dataset wrong_shape = data;
  wrong_shape.width = 3;
  wrong_shape.images.resize(3 * 12);
  EXPECT_TRUE(
      test::contains(test::error_message([&] { model.upload_eval_set(wrong_shape); }), "1x4x3"));
  Dataset short_images = data;
  short_images.images.resize(2 * 16);  // 3 samples announced, 2 present
  EXPECT_TRUE(
      test::contains(test::error_message([&] { model.upload_train_set(short_images); }), "32"));
}

TEST(ModelTest, CompileErrorsNameTheLayer) {
  Network network(SampleShape{1, 4, 4}, 10);
  network.conv2d(2, 5).dense(10);
  EXPECT_TRUE(
      test::contains(test::error_message([&] { Model(network, cpu_options(2)); }), "conv1"));
  EXPECT_THROW(Model(load_network("lenet5"), cpu_options(0)), Error);
}

// Compiling for CUDA works on a GPU (same layout as on the CPU) and throws without one, saying why.
TEST(ModelTest, CudaCompilesOnADeviceAndThrowsWithoutOne) {
  CompileOptions o = cpu_options(2);
  o.device = Device::cuda;
  if (!cuda_available()) {
    // The library's words, not the tool's (no "--device"): the reason comes from cuda_devices.
    std::string why_none;
    ASSERT_TRUE(cuda_devices(&why_none).empty());
    EXPECT_EQ(test::error_message([&] { Model(load_network("lenet5"), o); }),
              "no CUDA device (" + why_none + ")");
    return;
  }
  const Model gpu(load_network("lenet5"), o);
  const Model cpu(load_network("lenet5"), cpu_options(2));
  EXPECT_EQ(gpu.parameter_count(), 61706);
  EXPECT_EQ(gpu.parameter("conv1.weight"), cpu.parameter("conv1.weight"));
}

}  // namespace
}  // namespace cnnrt
