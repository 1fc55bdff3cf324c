#pragma once
// Helpers for the suites that compile and train whole models on the CPU: compile options and a
// small learnable data set.
#include <cstdint>
#include <random>
#include <string>

#include "cnnrt/dataset.hpp"
#include "cnnrt/model.hpp"
#include "tests/test_util.hpp"

namespace cnnrt::test {

// A CPU model with a fixed batch, seed and thread count (the bits depend on the thread count:
// CompileOptions::cpu_threads).
inline CompileOptions cpu_options(int batch, std::uint64_t seed = 1, int threads = 2) {
  CompileOptions o;
  o.device = Device::cpu;
  o.batch_size = batch;
  o.seed = seed;
  o.cpu_threads = threads;
  return o;
}

// Noise images whose class is a bright bar at rows 2 * (label + 2) .. 2 * (label + 2) + 1, so
// that the loss moves within an epoch.
inline Dataset synthetic_set(int count, std::uint64_t seed) {
  Dataset data;
  data.count = count;
  data.channels = 1;
  data.height = data.width = 28;
  data.classes = 10;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pixel(0, 80);
  for (int i = 0; i < count; ++i) {
    const int label = int(rng() % 10);
    data.labels.push_back(std::uint8_t(label));
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        data.images.push_back(std::uint8_t(y / 2 == label + 2 ? 255 : pixel(rng)));
  }
  return data;
}

// An MNIST-format directory (plain IDX files) holding synthetic_set(train_count, 1) as the
// training split and synthetic_set(test_count, 2) as the test split, for runs of the tool.
inline void write_synthetic_mnist_dir(const std::string& dir, int train_count, int test_count) {
  const struct {
    const char* name;
    Dataset data;
  } splits[] = {{"train", synthetic_set(train_count, 1)}, {"t10k", synthetic_set(test_count, 2)}};
  for (const auto& split : splits) {
    const Dataset& d = split.data;
    write_idx_file(dir + "/" + split.name + "-images-idx3-ubyte", {d.count, d.height, d.width},
                   d.images);
    write_idx_file(dir + "/" + split.name + "-labels-idx1-ubyte", {d.count}, d.labels);
  }
}

// A few SGD steps on seeded data so that weights, momentum, the step counter and batch norm's
// running statistics are all non-trivial.
inline void train_a_little(Model& model, int steps) {
  const int n = model.options().batch_size;
  const SampleShape in = model.network().input();
  model.set_optimizer(OptimizerParams{0.01f, 0.9f, 1e-4f});
  for (int step = 0; step < steps; ++step) {
    const std::vector<float> images =
        random_vector<float>(std::size_t(n) * std::size_t(in.size()), 100 + step);
    std::vector<std::int32_t> labels;
    for (int i = 0; i < n; ++i) labels.push_back((i + step) % model.network().classes());
    model.train_step(images.data(), labels.data(), n);
  }
}

}  // namespace cnnrt::test
