// Whole-network gradient checks: CPU backpropagation (in double) against central finite
// differences for the presets and for a network with every layer kind; the report's fields are
// checked to be meaningful (every tensor compared, non-zero gradients), and on a GPU the CUDA
// backend against the CPU backend.
#include "cnnrt/gradcheck.hpp"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

// Few points per tensor keep a whole-network check to a couple of seconds on one core.
constexpr int kFdPoints = 12;

GradcheckOptions fd_options(int batch, std::uint64_t seed) {
  GradcheckOptions o;
  o.reference = GradcheckOptions::Reference::fd;
  o.batch = batch;
  o.seed = seed;
  o.fd_points_per_tensor = kFdPoints;
  return o;
}

// Every parameter tensor of `network` appears once, each compared at a few points and passed.
void expect_sane_report(const GradcheckReport& report, const Network& network,
                        std::int64_t max_points) {
  std::vector<std::string> expected;
  for (const LayerSpec& s : network.layers())
    if (s.type == "conv2d" || s.type == "dense" || s.type == "batch_norm") {
      expected.push_back(s.name + ".weight");
      expected.push_back(s.name + ".bias");
    }
  ASSERT_EQ(report.tensors.size(), expected.size());
  EXPECT_TRUE(std::isfinite(report.loss));
  EXPECT_GT(report.loss, 0.0);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const TensorCheck& t = report.tensors[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, expected[i]);
    EXPECT_GT(t.max_abs_reference, 0.0);  // a zero gradient would pass any comparison
    EXPECT_GT(t.compared, 0);
    EXPECT_LE(t.compared + t.skipped, max_points);
    EXPECT_GE(t.compared, t.skipped);
    EXPECT_GE(t.max_abs_error, 0.0);
    EXPECT_TRUE(t.passed) << "max abs error " << t.max_abs_error << ", max rel error "
                          << t.max_rel_error << ", max |reference| " << t.max_abs_reference;
  }
  EXPECT_TRUE(report.passed);
}

TEST(GradcheckTest, FiniteDifferencesLeNet5) {
  const Network network = load_network("lenet5");
  const GradcheckReport report = gradcheck(network, fd_options(3, 5));
  EXPECT_EQ(report.reference, "cpu (double) vs finite differences");
  EXPECT_EQ(report.batch_source, "seeded random inputs");
  expect_sane_report(report, network, kFdPoints);
}

TEST(GradcheckTest, FiniteDifferencesLeNet5Classic) {
  const Network network = load_network("lenet5-classic");
  expect_sane_report(gradcheck(network, fd_options(2, 8)), network, kFdPoints);
}

TEST(GradcheckTest, FiniteDifferencesEveryLayerKind) {
  // Stride 2 with same padding, explicit padding, leaky ReLU, sigmoid, average and max pooling
  // and dropout (its mask is fixed within one check, so the loss stays differentiable).
  Network network(SampleShape{2, 11, 11}, 4, "mixed");
  network.conv2d(3, 3, 2, Padding::same()).leaky_relu(0.1f);        // 3x6x6
  network.conv2d(4, 3, 1, Padding::explicit_pad(1, 1)).sigmoid();   // 4x6x6
  network.avg_pool(2, 2).conv2d(5, 2, 1, Padding::valid()).relu();  // 4x3x3 -> 5x2x2
  network.max_pool(2, 1).dropout(0.3f).dense(6).leaky_relu(0.2f).dense(4);
  ASSERT_EQ(network.infer_shapes()[7].to_string(), "5x1x1");  // after max_pool(2, 1)
  expect_sane_report(gradcheck(network, fd_options(4, 3)), network, kFdPoints);
}

// Batch norm after convolutions (per channel) and after a dense layer (per feature), fused with
// the ReLU behind it, and global average pooling into the classifier.
Network batch_norm_network() {
  Network network(SampleShape{2, 8, 8}, 4, "bn_mixed");
  network.conv2d(3, 3, 1, Padding::same()).batch_norm().relu().max_pool(2, 2);  // 3x4x4
  network.conv2d(4, 3, 1, Padding::same()).batch_norm(0.3f, 1e-3f).relu();      // 4x4x4
  network.global_avg_pool().dense(5).batch_norm().relu().dense(4);
  return network;
}

TEST(GradcheckTest, FiniteDifferencesBatchNormAndGlobalPooling) {
  const Network network = batch_norm_network();
  ASSERT_EQ(network.infer_shapes()[7].to_string(), "4x1x1");  // after global_avg_pool
  expect_sane_report(gradcheck(network, fd_options(4, 12)), network, kFdPoints);
}

TEST(GradcheckTest, CudaAgainstCpuBatchNorm) {
  CNNRT_REQUIRE_GPU();
  const Network network = batch_norm_network();
  GradcheckOptions o;
  o.reference = GradcheckOptions::Reference::cpu;
  o.batch = 16;
  o.seed = 13;
  expect_sane_report(gradcheck(network, o), network, 1 << 20);
}

TEST(GradcheckTest, SmallTensorsAreCheckedWhole) {
  // fc2.bias has 3 elements: fewer than the points asked for, so each is compared (or skipped).
  Network network(SampleShape{1, 3, 3}, 3, "small");
  network.dense(5).sigmoid().dense(3);
  GradcheckOptions o = fd_options(2, 4);
  o.fd_points_per_tensor = 100;
  const GradcheckReport report = gradcheck(network, o);
  ASSERT_EQ(report.tensors.size(), 4u);
  EXPECT_EQ(report.tensors[0].compared + report.tensors[0].skipped, 45);  // fc1.weight 5x9
  EXPECT_EQ(report.tensors[3].compared, 3);  // fc2.bias: sigmoid has no kinks to skip
  EXPECT_TRUE(report.passed);
}

TEST(GradcheckTest, FiniteDifferencesAreSeeded) {
  const Network network = load_network("lenet5-classic");
  const GradcheckReport a = gradcheck(network, fd_options(2, 6));
  const GradcheckReport b = gradcheck(network, fd_options(2, 6));
  const GradcheckReport c = gradcheck(network, fd_options(2, 7));
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_NE(a.loss, c.loss);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i)
    EXPECT_EQ(a.tensors[i].max_abs_error, b.tensors[i].max_abs_error) << a.tensors[i].name;
}

TEST(GradcheckTest, AllZeroGradientsFail) {
  // fc1's biases far below zero: the ReLU passes nothing, so fc1's and fc2.weight's gradients are
  // exactly zero. Finite differences agree with zero, yet the check must not count that a pass.
  Network network(SampleShape{1, 3, 3}, 3, "dead");
  network.dense(6).relu().dense(3);
  CompileOptions compile;
  compile.batch_size = 2;
  Model model(network, compile);
  model.set_parameter("fc1.bias", std::vector<float>(6, -1000.0f));
  const std::string weights =
      (std::filesystem::temp_directory_path() /
       ("cnnrt_gradcheck_dead_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  save_checkpoint(weights, model, 0);
  GradcheckOptions o = fd_options(2, 1);
  o.weights_path = weights;
  const GradcheckReport report = gradcheck(network, o);
  std::filesystem::remove(weights);
  ASSERT_EQ(report.tensors.size(), 4u);
  EXPECT_FALSE(report.passed);
  for (int dead : {0, 1, 2}) {
    SCOPED_TRACE(report.tensors[dead].name);
    EXPECT_EQ(report.tensors[dead].max_abs_reference, 0.0);
    EXPECT_FALSE(report.tensors[dead].passed);
  }
  EXPECT_EQ(report.tensors[3].name, "fc2.bias");  // softmax - onehot: alive
  EXPECT_GT(report.tensors[3].max_abs_reference, 0.0);
  EXPECT_TRUE(report.tensors[3].passed);
}

TEST(GradcheckTest, RejectsABadBatch) {
  GradcheckOptions o = fd_options(0, 1);
  EXPECT_THROW(gradcheck(load_network("lenet5"), o), Error);
}

TEST(GradcheckTest, CudaAgainstCpuLeNet5) {
  CNNRT_REQUIRE_GPU();
  const Network network = load_network("lenet5");
  GradcheckOptions o;
  o.reference = GradcheckOptions::Reference::cpu;
  o.batch = 8;
  o.seed = 3;
  const GradcheckReport report = gradcheck(network, o);
  EXPECT_EQ(report.reference, "cuda vs cpu");
  for (const TensorCheck& t : report.tensors) {
    EXPECT_GT(t.max_abs_reference, 0.0) << t.name;
    EXPECT_GT(t.compared, 0) << t.name;
  }
  expect_sane_report(report, network, 1 << 20);
}

TEST(GradcheckTest, CudaAgainstCpuLeNet5Classic) {
  CNNRT_REQUIRE_GPU();
  const Network network = load_network("lenet5-classic");
  GradcheckOptions o;
  o.reference = GradcheckOptions::Reference::cpu;
  o.batch = 8;
  o.seed = 4;
  expect_sane_report(gradcheck(network, o), network, 1 << 20);
}

}  // namespace
}  // namespace cnnrt
