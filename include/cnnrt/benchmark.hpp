#pragma once
// `cnnrt bench` in the spirit of `caffe time`: per-layer forward and backward times, the whole
// training step (eager and, on CUDA, graph-replayed), images per second and memory.
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"

namespace cnnrt {

struct CNNRT_API LayerTiming {
  std::string name;
  std::string kind;
  double forward_ms = 0;   // median over the repeats
  double backward_ms = 0;  // weights and data gradients together
  // An activation run inside its neighbours (CompileOptions::fuse_activations): its time is in
  // the layer in front (forward) or behind (backward), its own is ~0.
  bool forward_fused = false, backward_fused = false;
};

struct CNNRT_API BenchReport {
  std::string model;
  std::string device;
  int batch = 0;
  int repeats = 0;
  bool fused_activations = false;
  bool overlapped_weight_gradients = false;  // in the whole-step times (never per layer)
  std::vector<LayerTiming> layers;
  double loss_ms = 0;             // fused softmax + cross-entropy + gradient
  double update_ms = 0;           // SGD over the one parameter buffer
  double step_ms = 0;             // gather + forward + loss + backward + update, launched op by op
  double graph_step_ms = -1;      // the same step replayed from a CUDA graph (-1: not available)
  std::uint64_t graph_nodes = 0;  // nodes of that graph: the step's kernels, memsets, event waits
  double images_per_second = 0;   // batch / the fastest step
  // Inference (what evaluate and predict run per batch): the forward pass in evaluation mode
  // (no dropout, batch norm's running statistics), op by op, and batch / that time.
  double inference_ms = 0;
  double inference_images_per_second = 0;
  std::uint64_t arena_bytes = 0;
  std::uint64_t dataset_bytes = 0;  // Fashion-MNIST train + test as bytes on the backend
  std::uint64_t device_bytes_used =
      0;                             // CUDA: device memory taken by model + data (cudaMemGetInfo)
  std::uint64_t peak_rss_bytes = 0;  // host: peak resident memory of the process
};

CNNRT_API BenchReport benchmark_model(const Network& network, const CompileOptions& options,
                                      int warmup, int repeats);
CNNRT_API std::string bench_report_json(const BenchReport& report);

}  // namespace cnnrt
