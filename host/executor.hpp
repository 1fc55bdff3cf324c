#pragma once
// The compiled network on one backend: the memory plan (one arena) and the forward, loss, backward
// and update passes, written once over Backend<T>. Model (float) wraps it; gradient checks run it
// in double on the CPU backend.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "host/backend.hpp"

namespace cnnrt {

struct LayerPlan {
  LayerSpec spec;
  SampleShape in_shape, out_shape;
  Conv2dGeometry conv;  // at the full batch size; n is replaced per call
  Pool2dGeometry pool;
  DenseGeometry dense;
  std::int64_t weight_offset = -1, bias_offset = -1;  // into the parameter buffer (elements)
  std::size_t out_offset = 0, grad_offset = 0;        // byte offsets into the arena
  std::size_t argmax_offset = 0, mask_offset = 0;
  std::string forward_range, backward_range;  // NVTX names, "<layer>/forward", built once
  // On an activation layer, with fusion on (Executor::set_fusion): its forward runs inside the
  // convolution or dense layer in front of it, its backward inside the pooling or dense layer
  // behind it (whichever of the two applies), and its own pass does nothing.
  bool forward_fused = false, backward_fused = false;
};

// Computes layer plans and parameter layout for `network` at `batch` (no memory touched).
std::vector<LayerPlan> plan_layers(const Network& network, int batch,
                                   std::vector<ParameterInfo>* parameters);

// Initial parameter values (biases zero), the same on every backend for one seed.
std::vector<double> initial_parameters(const std::vector<LayerPlan>& plans,
                                       const std::vector<ParameterInfo>& parameters,
                                       InitScheme scheme, std::uint64_t seed);

template <typename T>
class Executor {
 public:
  Executor(const Network& network, int batch, std::unique_ptr<Backend<T>> backend);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  Backend<T>& backend() { return *backend_; }
  // Runs each activation layer inside its neighbours where it can (on by default; the same bits
  // either way). Off is for per-op benchmarking and tests. Not to be changed during a capture.
  void set_fusion(bool on);
  // Runs each layer's weight gradient beside the rest of the backward pass (Backend side work;
  // on by default, the same bits either way); backward() waits for it before returning. Off is
  // for timing layers one by one.
  void set_overlap(bool on) { overlap_ = on; }
  const std::vector<LayerPlan>& plans() const { return plans_; }
  const std::vector<ParameterInfo>& parameters() const { return parameters_; }
  int batch() const { return batch_; }
  std::size_t arena_bytes() const { return arena_bytes_; }
  std::int64_t parameter_count() const { return parameter_count_; }

  // Backend pointers into the arena.
  T* params() { return params_; }
  T* grads() { return grads_; }
  T* velocity() { return velocity_; }
  T* input() { return input_; }
  std::int32_t* labels() { return labels_; }
  const T* output(int layer) const;  // last forward's output of that layer

  // Host <-> backend copies of parameter-sized buffers (host vectors in T).
  void upload(T* backend_buffer, const std::vector<T>& host);
  std::vector<T> download(const T* backend_buffer, std::size_t count);

  void load_batch(const T* images, const std::int32_t* labels, int n);  // host -> input
  void gather(const NormalizeParams& norm, const std::uint8_t* images, const std::uint8_t* labels,
              const std::int32_t* indices, int pixels, int n);  // resident set -> input
  // Batch number `batch step` (a counter in the arena) of a shuffled order -> input, and the
  // counter's reset and advance: the pieces of a step that a captured graph can replay.
  void gather_at_batch_step(const NormalizeParams& norm, const std::uint8_t* images,
                            const std::uint8_t* labels, const std::int32_t* order, int pixels,
                            int n);
  void reset_batch_step();
  void set_batch_step(int step);
  void advance_batch_step();

  // Passes over the batch in `input` / `labels`. forward() with training=false skips dropout.
  void forward(int n, bool training);
  void forward_layer(std::size_t layer, int n, bool training);
  void backward_layer(std::size_t layer, int n);
  void loss(int n, bool with_gradient);  // accumulates into the loss and correct counters
  void backward(int n);
  void update(const SgdParams& sgd);
  // One training pass over the batch in `input`: forward, loss with gradient, backward, update.
  void train_pass(int n, const SgdParams& sgd);

  void reset_counters();
  // Sets the counters to a previous read_counters() result (exact: the loss sum is held in T).
  void set_counters(const BatchStats& stats);
  BatchStats read_counters(std::int64_t samples);  // waits
  // Starts an asynchronous read of the counters; returns the last one that completed.
  bool poll_counters(double* loss_sum, std::int64_t* correct);

  std::uint64_t step_counter = 0;  // dropout stream offset, advanced by the caller per step

 private:
  std::unique_ptr<Backend<T>> backend_;
  int batch_;
  std::vector<LayerPlan> plans_;
  std::vector<ParameterInfo> parameters_;
  std::int64_t parameter_count_ = 0;
  bool overlap_ = true;
  std::size_t arena_bytes_ = 0;
  std::size_t workspace_bytes_ = 0;
  void* arena_ = nullptr;
  void* pinned_ = nullptr;  // two counters for asynchronous reads
  bool poll_started_ = false;
  std::vector<const T*> outputs_;
  T* params_ = nullptr;
  T* grads_ = nullptr;
  T* velocity_ = nullptr;
  T* input_ = nullptr;
  std::int32_t* labels_ = nullptr;
  T* loss_sum_ = nullptr;
  std::int32_t* correct_ = nullptr;
  std::int32_t* batch_step_ = nullptr;
  void* workspace_ = nullptr;        // the convolutions' weight gradients, but the first's
  void* first_workspace_ = nullptr;  // the first layer's, when it is a convolution

  T* at(std::size_t byte_offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(arena_) + byte_offset);
  }
};

extern template class Executor<float>;
extern template class Executor<double>;

}  // namespace cnnrt
