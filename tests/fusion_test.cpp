// Activation fusion (CompileOptions::fuse_activations) and the weight gradients on a second
// stream (overlap_weight_gradients) change which kernels run, and where, not what they
// compute: the fused kernels apply the same scalar rules to the same values, so a model trained
// with fusion on and with it off gives the same bits, on the CPU and on CUDA (both GEMM paths).
// The network below holds every pattern the executor fuses (conv or dense -> activation forward;
// activation -> max pool, avg pool or dense backward) and the ones it must leave alone (an
// activation first, or in front of a convolution or dropout); `cnnrt bench`'s report says which
// layers ran fused, checked against the patterns.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/benchmark.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

constexpr int kBatch = 6;
constexpr int kSteps = 4;

Network every_fusion_pattern() {
  Network n({1, 12, 12}, 10, "fusion-patterns");
  n.activation(Activation::sigmoid, 0.1f, "act_first");  // nothing in front: not fused
  n.conv2d(4, 3, 1, Padding::same()).activation(Activation::leaky_relu, 0.1f, "act_conv_conv");
  n.conv2d(6, 3).activation(Activation::relu, 0.1f, "act_conv_max").max_pool(2, 2);
  n.conv2d(6, 3, 1, Padding::same()).activation(Activation::sigmoid, 0.1f, "act_conv_avg");
  n.avg_pool(2, 1);
  n.dense(16).activation(Activation::relu, 0.1f, "act_dense_dropout").dropout(0.25f);
  n.dense(12).activation(Activation::leaky_relu, 0.1f, "act_dense_dense").dense(10);
  return n;
}

struct Expected {
  const char* layer;
  bool forward_fused, backward_fused;
};
const Expected kPatterns[] = {
    {"act_first", false, false},        {"act_conv_conv", true, false},
    {"act_conv_max", true, true},       {"act_conv_avg", true, true},
    {"act_dense_dropout", true, false}, {"act_dense_dense", true, true},
};

// The synthetic set cropped to side x side (the pattern network takes 12 x 12 images).
Dataset cropped_set(int count, int side, std::uint64_t seed) {
  const Dataset full = test::synthetic_set(count, seed);
  Dataset d = full;
  d.height = d.width = side;
  d.images.clear();
  for (int i = 0; i < count; ++i)
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x)
        d.images.push_back(full.images[std::size_t(i) * 784 + std::size_t(y) * 28 + x]);
  return d;
}

// A host batch of kBatch cropped images, scaled to [-1, 1].
struct Batch {
  std::vector<float> images;
  std::vector<std::int32_t> labels;
};
Batch fixed_batch(int side) {
  const Dataset data = cropped_set(kBatch, side, 3);
  Batch b;
  for (const std::uint8_t pixel : data.images) b.images.push_back(float(pixel) / 127.5f - 1.0f);
  for (const std::uint8_t label : data.labels) b.labels.push_back(label);
  return b;
}

struct Run {
  std::vector<float> parameters, momentum;
  std::vector<std::vector<float>> outputs;  // every layer's output of the last forward pass
};

Run train(const Network& network, const CompileOptions& options) {
  Model model(network, options);
  model.set_optimizer(OptimizerParams{0.05f, 0.9f, 0.0f});
  const Batch batch = fixed_batch(network.input().h);
  for (int step = 0; step < kSteps; ++step)
    model.train_step(batch.images.data(), batch.labels.data(), kBatch);
  // Then an epoch over a resident set: on CUDA its full batches replay a captured step (a network
  // without dropout), so the graph path runs too.
  model.upload_train_set(cropped_set(kSteps * kBatch + 2, network.input().h, 4));
  model.train_epoch(0);
  Run run;
  const Model::TrainingState state = model.training_state();
  run.parameters = state.parameters;
  run.momentum = state.momentum;
  model.evaluate_batch(batch.images.data(), batch.labels.data(), kBatch);
  for (int layer = 0; layer < int(network.layers().size()); ++layer)
    run.outputs.push_back(model.layer_output(layer, kBatch));
  return run;
}

// Trains `network` with `options` and with `change` applied to them: the same bits.
template <typename Change>
void expect_same_bits(const Network& network, const CompileOptions& options, Change change) {
  SCOPED_TRACE(network.name());
  CompileOptions changed = options;
  change(changed);
  const Run fused = train(network, options);
  const Run plain = train(network, changed);
  // Training moved every parameter tensor: the momentum (the summed gradients) is non-zero.
  ASSERT_TRUE(test::any_nonzero(plain.momentum));
  EXPECT_TRUE(fused.parameters == plain.parameters) << "parameters differ";
  EXPECT_TRUE(fused.momentum == plain.momentum) << "momentum differs";
  ASSERT_EQ(fused.outputs.size(), plain.outputs.size());
  for (std::size_t layer = 0; layer < plain.outputs.size(); ++layer) {
    ASSERT_TRUE(test::any_nonzero(plain.outputs[layer])) << network.layers()[layer].name;
    EXPECT_TRUE(fused.outputs[layer] == plain.outputs[layer])
        << "output of " << network.layers()[layer].name << " differs";
  }
}

TEST(Fusion, BenchReportNamesTheFusedActivations) {
  const Network network = every_fusion_pattern();
  CompileOptions options = test::cpu_options(kBatch, 1, 1);
  const BenchReport report = benchmark_model(network, options, 0, 1);
  EXPECT_TRUE(report.fused_activations);
  // The inference figure is timed, and its rate is the batch over that time.
  ASSERT_GT(report.inference_ms, 0.0);
  EXPECT_NEAR(report.inference_images_per_second, kBatch / (report.inference_ms / 1000.0),
              1e-6 * report.inference_images_per_second);
  for (const Expected& e : kPatterns) {
    SCOPED_TRACE(e.layer);
    bool found = false;
    for (const LayerTiming& l : report.layers) {
      if (l.name != e.layer) continue;
      found = true;
      EXPECT_EQ(l.forward_fused, e.forward_fused);
      EXPECT_EQ(l.backward_fused, e.backward_fused);
    }
    EXPECT_TRUE(found);
  }
  for (const LayerTiming& l : report.layers) {
    if (l.kind != "activation") {
      EXPECT_FALSE(l.forward_fused || l.backward_fused) << l.name;
    }
  }

  options.fuse_activations = false;
  const BenchReport plain = benchmark_model(network, options, 0, 1);
  EXPECT_FALSE(plain.fused_activations);
  for (const LayerTiming& l : plain.layers) EXPECT_FALSE(l.forward_fused || l.backward_fused);
}

void expect_fusion_changes_no_bit(const Network& network, const CompileOptions& options) {
  expect_same_bits(network, options, [](CompileOptions& o) { o.fuse_activations = false; });
}

TEST(Fusion, SameBitsOnTheCpu) {
  expect_fusion_changes_no_bit(every_fusion_pattern(), test::cpu_options(kBatch, 1, 2));
  expect_fusion_changes_no_bit(load_network("lenet5"), test::cpu_options(kBatch, 2, 2));
  expect_fusion_changes_no_bit(load_network("lenet5-classic"), test::cpu_options(kBatch, 3, 2));
}

TEST(Fusion, SameBitsOnCuda) {
  CNNRT_REQUIRE_GPU();
  for (const GemmBackend gemm : {GemmBackend::tiled, GemmBackend::cublas, GemmBackend::tf32}) {
    SCOPED_TRACE(to_string(gemm));
    for (const char* name : {"lenet5", "lenet5-classic"}) {
      CompileOptions options = test::cpu_options(kBatch, 4);
      options.device = Device::cuda;
      options.gemm = gemm;
      expect_fusion_changes_no_bit(load_network(name), options);
    }
    CompileOptions options = test::cpu_options(kBatch, 5);
    options.device = Device::cuda;
    options.gemm = gemm;
    expect_fusion_changes_no_bit(every_fusion_pattern(), options);
  }
}

// The step's CUDA graph with fusion holds 8 kernels fewer for LeNet-5: its 4 activation forwards
// and 4 activation backwards. (The tiled GEMM's bias add and bias gradient are in its epilogue
// either way.)
TEST(Fusion, LeNetStepHas8KernelsFewerOnCuda) {
  CNNRT_REQUIRE_GPU();
  CompileOptions options = test::cpu_options(64, 1);
  options.device = Device::cuda;
  options.overlap_weight_gradients = false;
  const BenchReport fused = benchmark_model(load_network("lenet5"), options, 1, 1);
  options.fuse_activations = false;
  const BenchReport plain = benchmark_model(load_network("lenet5"), options, 1, 1);
  ASSERT_GT(fused.graph_nodes, 0u);
  EXPECT_EQ(plain.graph_nodes - fused.graph_nodes, 8u)
      << plain.graph_nodes << " nodes unfused, " << fused.graph_nodes << " fused";
}

// The weight gradients on a second stream (CompileOptions::overlap_weight_gradients) against
// the same pass on one stream.
TEST(Fusion, WeightGradientsBesideTheBackwardPassSameBitsOnCuda) {
  CNNRT_REQUIRE_GPU();
  for (const char* name : {"lenet5", "lenet5-classic"}) {
    CompileOptions options = test::cpu_options(kBatch, 6);
    options.device = Device::cuda;
    expect_same_bits(load_network(name), options,
                     [](CompileOptions& o) { o.overlap_weight_gradients = false; });
  }
  CompileOptions options = test::cpu_options(kBatch, 7);
  options.device = Device::cuda;
  expect_same_bits(every_fusion_pattern(), options,
                   [](CompileOptions& o) { o.overlap_weight_gradients = false; });
}

}  // namespace
}  // namespace cnnrt
