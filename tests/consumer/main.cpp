// A program written the way a user of the installed library writes one: only <cnnrt/cnnrt.hpp>,
// only the public API. It trains a small network on the CPU backend on synthetic data and exits 1
// unless the loss falls, or unless the installed LeNet-5 preset loads with its layers and
// parameters; it also checks that cnnrt::Error thrown inside libcnnrt.so is caught here by type
// (the exception's type information must be exported from the shared library).
#include <cnnrt/cnnrt.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace {

constexpr int kClasses = 10;
constexpr int kSide = 8;
constexpr int kBatch = 32;
constexpr int kSteps = 30;
// Training on one fixed batch must at least halve its loss; an untrained net starts near ln(10).
constexpr double kRequiredLossRatio = 0.5;
// LeNet-5 (tools/presets/lenet5.json): 2 convolutions, 2 pools, 3 dense layers and 4 ReLUs;
// 6*25+6 + 16*6*25+16 + 400*120+120 + 120*84+84 + 84*10+10 parameters.
constexpr std::size_t kLeNet5Layers = 11;
constexpr long long kLeNet5Parameters = 61706;

// Uniform in [0, 1) from the raw mt19937 output, which (unlike std's distributions) is the same on
// every standard library.
float unit(std::mt19937& rng) {
  return float(rng() >> 8) / float(1u << 24);
}

}  // namespace

int main() {
  std::printf("cnnrt %s (%s)\n", cnnrt::version(), cnnrt::build_type());

  cnnrt::Network network({1, kSide, kSide}, kClasses, "consumer");
  network.conv2d(4, 3, 1, cnnrt::Padding::same()).relu().max_pool(2, 2).dense(kClasses);

  cnnrt::CompileOptions options;
  options.device = cnnrt::Device::cpu;
  options.batch_size = kBatch;
  options.seed = 7;
  cnnrt::Model model(network, options);
  model.set_optimizer(cnnrt::OptimizerParams{0.05f, 0.9f, 0.0f});
  std::printf("network %s: %lld parameters, output %s\n", network.name().c_str(),
              static_cast<long long>(model.parameter_count()),
              model.layer_shapes().back().to_string().c_str());

  // Synthetic classes: one random prototype image per class plus a little noise per sample.
  std::mt19937 rng(12345);
  const int pixels = kSide * kSide;
  std::vector<float> prototypes(std::size_t(kClasses) * pixels);
  for (float& v : prototypes) v = unit(rng);
  std::vector<float> images(std::size_t(kBatch) * pixels);
  std::vector<std::int32_t> labels(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    labels[i] = i % kClasses;
    for (int p = 0; p < pixels; ++p)
      images[std::size_t(i) * pixels + p] =
          prototypes[std::size_t(labels[i]) * pixels + p] + 0.1f * (unit(rng) - 0.5f);
  }

  const double before = model.evaluate_batch(images.data(), labels.data(), kBatch).mean_loss();
  for (int step = 0; step < kSteps; ++step) model.train_step(images.data(), labels.data(), kBatch);
  const cnnrt::BatchStats after = model.evaluate_batch(images.data(), labels.data(), kBatch);
  std::printf("loss before %.4f, after %d steps %.4f (accuracy %.3f)\n", before, kSteps,
              after.mean_loss(), after.accuracy());
  if (!(after.mean_loss() < kRequiredLossRatio * before)) {
    std::fprintf(stderr, "FAIL: the loss did not fall below %.2f x its starting value\n",
                 kRequiredLossRatio);
    return 1;
  }

  // The presets are installed with the library and found next to it, wherever the tree was
  // installed (run.sh installs under a prefix other than the configured one, and renames the
  // installed LeNet-5 so that the output tells it from the source tree's).
  const cnnrt::Network lenet = cnnrt::load_network("lenet5");
  cnnrt::CompileOptions lenet_options = options;
  lenet_options.batch_size = 1;
  const long long lenet_parameters = cnnrt::Model(lenet, lenet_options).parameter_count();
  std::printf("preset lenet5: %s, %zu layers, %lld parameters\n", lenet.name().c_str(),
              lenet.layers().size(), lenet_parameters);
  if (lenet.layers().size() != kLeNet5Layers || lenet_parameters != kLeNet5Parameters) {
    std::fprintf(stderr, "FAIL: lenet5 should have %zu layers and %lld parameters\n", kLeNet5Layers,
                 kLeNet5Parameters);
    return 1;
  }

  // A kernel that does not fit its input must surface as cnnrt::Error, caught by type.
  try {
    cnnrt::Network too_small({1, 2, 2}, kClasses, "too_small");
    too_small.conv2d(1, 5).dense(kClasses);
    cnnrt::Model broken(too_small, options);
    std::fprintf(stderr, "FAIL: a 5x5 kernel on a 2x2 input compiled without an error\n");
    return 1;
  } catch (const cnnrt::Error& error) {
    std::printf("expected error: %s\n", error.what());
  }
  std::printf("OK\n");
  return 0;
}
