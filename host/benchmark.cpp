#include "cnnrt/benchmark.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "cnnrt/error.hpp"
#include "host/cuda_backend.hpp"
#include "host/executor.hpp"
#include "kernels/cuda/check.hpp"

namespace cnnrt {

namespace {

// Fashion-MNIST as the training loop holds it: images and labels of both splits, as bytes.
constexpr std::uint64_t kFashionMnistBytes = 60000ull * 785 + 10000ull * 785;

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::uint64_t device_free_bytes() {
  std::size_t free = 0, total = 0;
  CNNRT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

std::uint64_t peak_rss() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return std::uint64_t(usage.ru_maxrss) * 1024;
}

}  // namespace

BenchReport benchmark_model(const Network& network, const CompileOptions& options, int warmup,
                            int repeats) {
  if (warmup < 0 || repeats <= 0)
    throw Error(
        fmt::format("bench: warmup {} and repeats {} must be >= 0 and > 0", warmup, repeats));
  const bool cuda = options.device == Device::cuda;
  const std::uint64_t free_before = cuda ? (cuda_backend_warm_up(), device_free_bytes()) : 0;
  const std::unique_ptr<Executor<float>> compiled = make_executor(network, options);
  Executor<float>& exec = *compiled;
  Backend<float>& b = exec.backend();
  const int n = options.batch_size;

  // Seeded weights (make_executor) and a random batch in the shape of the input (never zeros).
  const std::size_t sample = std::size_t(network.input().size());
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  std::uniform_int_distribution<int> label(0, network.classes() - 1);
  std::vector<float> images(std::size_t(n) * sample);
  for (float& v : images) v = pixel(rng);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (auto& l : labels) l = label(rng);
  exec.load_batch(images.data(), labels.data(), n);

  // The resident data set the training loop would hold, so the memory figure is the real one.
  BackendMemory<float> dataset(b, kFashionMnistBytes);
  b.fill_zero(dataset.get(), kFashionMnistBytes);
  const std::uint64_t free_after = cuda ? device_free_bytes() : 0;

  BenchReport report;
  report.model = network.name();
  report.device = to_string(options.device);
  report.batch = n;
  report.repeats = repeats;
  report.fused_activations = options.fuse_activations;
  report.overlapped_weight_gradients = options.overlap_weight_gradients;
  report.arena_bytes = exec.arena_bytes();
  report.dataset_bytes = kFashionMnistBytes;
  report.device_bytes_used = cuda ? free_before - free_after : 0;
  const OptimizerParams sgd{0.01f, 0.9f, 0.0f};
  // The step's scalars, in backend memory once: an update in the timed loop copies nothing.
  const StepScalars first_step = StepScalars::at(sgd, sgd.lr, 1);
  BackendMemory<float> scalars(b, sizeof(first_step));
  b.copy_to_backend(scalars.get(), &first_step, sizeof(first_step));
  const float* step_scalars = scalars.as<float>();

  auto time_ms = [&](auto&& work) {
    b.mark(0);
    work();
    b.mark(1);
    return b.elapsed_ms(0, 1);
  };
  auto full_step = [&] { exec.train_pass(n, sgd, step_scalars, nullptr); };
  for (int i = 0; i < warmup; ++i) full_step();

  const std::vector<LayerPlan>& layers = exec.layers();
  std::vector<std::vector<double>> fwd(layers.size()), bwd(layers.size());
  std::vector<double> loss, update, step;
  exec.set_overlap(false);  // each layer's backward time includes its weight gradient
  for (int r = 0; r < repeats; ++r) {
    for (std::size_t i = 0; i < layers.size(); ++i)
      fwd[i].push_back(time_ms([&] { exec.forward_layer(i, n, true); }));
    loss.push_back(time_ms([&] { exec.loss(n, true); }));
    for (std::size_t i = layers.size(); i-- > 0;)
      bwd[i].push_back(time_ms([&] { exec.backward_layer(i, n); }));
    update.push_back(time_ms([&] { exec.update(sgd, step_scalars, nullptr); }));
  }
  for (std::size_t i = 0; i < layers.size(); ++i)
    report.layers.push_back(LayerTiming{
        layers[i].unit->name(),
        // activations share one kind in reports, as before
        layers[i].unit->activation() ? "activation" : network.layers()[i].type, median(fwd[i]),
        median(bwd[i]), layers[i].forward_fused, layers[i].backward_fused});
  report.loss_ms = median(loss);
  report.update_ms = median(update);
  exec.set_overlap(options.overlap_weight_gradients);

  // Whole steps: several back-to-back steps per timing so launch gaps count as they do in training.
  constexpr int kStepsPerTiming = 10;
  for (int r = 0; r < std::max(3, repeats / 5); ++r)
    step.push_back(time_ms([&] {
                     for (int s = 0; s < kStepsPerTiming; ++s) full_step();
                   }) /
                   kStepsPerTiming);
  report.step_ms = median(step);
  double best = report.step_ms;
  if (replay_steps_as_graph(exec, options)) {
    b.begin_capture();
    full_step();
    b.end_capture();
    report.graph_nodes = b.captured_nodes();
    for (int i = 0; i < warmup; ++i) b.replay();
    std::vector<double> graph;
    for (int r = 0; r < std::max(3, repeats / 5); ++r)
      graph.push_back(time_ms([&] {
                        for (int s = 0; s < kStepsPerTiming; ++s) b.replay();
                      }) /
                      kStepsPerTiming);
    report.graph_step_ms = median(graph);
    best = std::min(best, report.graph_step_ms);
  }
  report.images_per_second = best > 0 ? n / (best / 1000.0) : 0;

  std::vector<double> inference;
  for (int i = 0; i < warmup; ++i) exec.forward(n, false);
  for (int r = 0; r < std::max(3, repeats / 5); ++r)
    inference.push_back(time_ms([&] {
                          for (int s = 0; s < kStepsPerTiming; ++s) exec.forward(n, false);
                        }) /
                        kStepsPerTiming);
  report.inference_ms = median(inference);
  report.inference_images_per_second =
      report.inference_ms > 0 ? n / (report.inference_ms / 1000.0) : 0;
  b.synchronize();
  dataset.reset();
  report.peak_rss_bytes = peak_rss();
  return report;
}

std::string bench_report_json(const BenchReport& r) {
  nlohmann::json j;
  j["model"] = r.model;
  j["device"] = r.device;
  j["batch"] = r.batch;
  j["repeats"] = r.repeats;
  j["fused_activations"] = r.fused_activations;
  j["overlapped_weight_gradients"] = r.overlapped_weight_gradients;
  j["layers"] = nlohmann::json::array();
  for (const auto& l : r.layers)
    j["layers"].push_back({{"name", l.name},
                           {"kind", l.kind},
                           {"forward_ms", l.forward_ms},
                           {"backward_ms", l.backward_ms},
                           {"forward_fused", l.forward_fused},
                           {"backward_fused", l.backward_fused}});
  j["loss_ms"] = r.loss_ms;
  j["update_ms"] = r.update_ms;
  j["step_ms"] = r.step_ms;
  j["inference_ms"] = r.inference_ms;
  j["inference_images_per_second"] = r.inference_images_per_second;
  j["graph_step_ms"] =
      r.graph_step_ms < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.graph_step_ms);
  j["graph_nodes"] = r.graph_nodes;
  j["images_per_second"] = r.images_per_second;
  j["arena_bytes"] = r.arena_bytes;
  j["dataset_bytes"] = r.dataset_bytes;
  j["device_bytes_used"] = r.device_bytes_used;
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  return j.dump(2);
}

}  // namespace cnnrt
