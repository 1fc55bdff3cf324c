#pragma once
// The compiled network on one backend. build_plan() turns a Network into a Plan: the arena's
// buffers, each owned by one layer (or by the network: input, labels, the loss), and flat lists of
// steps, each naming the buffers it reads and writes. Fusion is decided there, once; nothing
// changes a plan after it is built. Executor<T> allocates the arena and runs the steps, written
// once over Backend<T>; Model (float) wraps it and gradient checks run it in double on the CPU.
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "host/backend.hpp"
#include "host/layer.hpp"

namespace cnnrt {

// No layer: the owner of the network's own buffers, and a step's `fused` when it runs none.
inline constexpr std::size_t kNoLayer = std::numeric_limits<std::size_t>::max();
inline constexpr std::size_t kNetworkOwned = kNoLayer;

// A region of the arena: "conv1.out", "pool1.argmax", "conv1.weight", "input", ...
struct Buffer {
  std::string name;
  std::size_t owner = kNetworkOwned;  // the layer whose steps alone write it
  std::size_t offset = 0, bytes = 0;  // in the arena
};

struct LayerPlan {
  std::shared_ptr<const LayerUnit> unit;
  SampleShape in_shape, out_shape;
  int out = -1;  // buffer: the layer's output
  int din = -1;  // buffer: the gradient at its input; -1 for the first layer
  std::vector<int> params, grads, state, scratch;  // buffers, in the unit's order
  // Run inside a neighbour's step (an activation layer): forward inside the layer in front,
  // backward inside the layer behind.
  bool forward_fused = false, backward_fused = false;
  // Inference folds the batch norm behind this layer into its weight and bias (written here:
  // [weight, bias] of the layer's own shapes); -1: no folding.
  int folded = -1;
};

enum class StepKind { forward, backward_weights, backward_data };

struct Step {
  StepKind kind = StepKind::forward;
  std::size_t layer = 0;                    // whose unit runs
  std::size_t fused = kNoLayer;             // the activation layer it runs as well, if any
  std::size_t folded = kNoLayer;            // inference: the batch norm folded into it, if any
  bool beside = false;                      // may run beside the main stream (weight gradients)
  int in = -1, out = -1, activated = -1;    // forward: input, output, the fused activation's output
  int dout = -1, din = -1, z = -1, a = -1;  // backward: gradients, the fused activation's z and a
  std::vector<int> reads, writes;  // every buffer the step touches (params, scratch included)
  std::string range;               // NVTX range: "<layer>/forward", "<layer>/backward"
};

struct Plan {
  int batch = 0;
  std::vector<Buffer> buffers;
  std::vector<LayerPlan> layers;
  std::vector<Step> training_forward, inference_forward, backward;
  // The value each layer's output holds after an inference pass (a skipped layer's is its
  // input's).
  std::vector<int> inference_out;
  std::vector<ParameterInfo> parameters, state;  // offsets into the parameter / state regions
  std::vector<double> initial_state;
  std::vector<bool> state_non_negative;  // per state tensor: StateSpec::non_negative
  std::int64_t parameter_count = 0, state_count = 0;
  // Network-owned regions.
  int params = -1, grads = -1, velocity = -1, state_values = -1;
  int input = -1, labels = -1, dlogits = -1, loss_sum = -1, correct = -1, batch_step = -1;
  std::size_t arena_bytes = 0;
  // A step depends on the step number (dropout): a captured step cannot be replayed.
  bool varies_per_step = false;
};

// What the arena's scratch is sized for: the scalar and the backend.
struct PlanTarget {
  std::size_t scalar_bytes = sizeof(float);
  int cpu_threads = 0;    // > 0: the CPU backend with this many threads
  bool cpu_fast = false;  // the CPU backend's fast path
  bool cuda = false;
};

// Plans `network` at `batch`; fuse: run activation layers inside their neighbours.
Plan build_plan(const Network& network, int batch, bool fuse, const PlanTarget& target);

// Initial parameter values (random weights, the rest their ParameterSpec::initial), the same on
// every backend for one seed: drawn in double, stored as T (AlexNet's 62M parameters would take
// 500 MB more as doubles).
template <typename T>
std::vector<T> initial_parameters(const Plan& plan, InitScheme scheme, std::uint64_t seed);

template <typename T>
class Executor {
 public:
  Executor(const Network& network, int batch, std::unique_ptr<Backend<T>> backend,
           bool fuse_activations = true);
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  Backend<T>& backend() { return *backend_; }
  // Runs each layer's weight gradient beside the rest of the backward pass (Backend side work;
  // on by default, the same bits either way); backward() waits for it before returning. Off is
  // for timing layers one by one.
  void set_overlap(bool on) { overlap_ = on; }
  const Plan& plan() const { return plan_; }
  const std::vector<LayerPlan>& layers() const { return plan_.layers; }
  const std::vector<ParameterInfo>& parameters() const { return plan_.parameters; }
  const std::vector<ParameterInfo>& state() const { return plan_.state; }
  int batch() const { return plan_.batch; }
  std::size_t arena_bytes() const { return plan_.arena_bytes; }
  std::int64_t parameter_count() const { return plan_.parameter_count; }
  std::int64_t state_count() const { return plan_.state_count; }
  // Whether whole steps may be captured and replayed: the backend has graphs and no step
  // depends on the step number.
  bool can_replay_steps() const { return backend_->supports_graphs() && !plan_.varies_per_step; }

  // Backend pointers into the arena.
  T* params() { return buffer(plan_.params); }
  T* grads() { return buffer(plan_.grads); }
  T* velocity() { return buffer(plan_.velocity); }
  T* state_values() { return buffer(plan_.state_values); }
  T* input() { return buffer(plan_.input); }
  std::int32_t* labels() { return reinterpret_cast<std::int32_t*>(buffer(plan_.labels)); }
  const T* output(int layer) const;  // last forward's output of that layer

  // Host <-> backend copies of parameter-sized buffers (host vectors in T).
  void upload(T* backend_buffer, const std::vector<T>& host);
  std::vector<T> download(const T* backend_buffer, std::size_t count);

  void load_batch(const T* images, const std::int32_t* labels, int n);  // host -> input
  // resident set -> input, augmented at (aug.step, aug.epoch)
  void gather(const NormalizeParams& norm, const AugmentParams& aug, const std::uint8_t* images,
              const std::uint8_t* labels, const std::int32_t* indices, int pixels, int n);
  // Batch number `batch step` (a counter in the arena, beside the epoch the augmentation draws
  // at) of a shuffled order -> input, and the counter's reset and advance: the pieces of a step
  // that a captured graph can replay.
  void gather_at_batch_step(const NormalizeParams& norm, const AugmentParams& aug,
                            const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* order, int pixels, int n);
  void reset_batch_step();
  void set_batch_step(int step);
  void set_batch_epoch(int epoch);
  void advance_batch_step();

  // Passes over the batch in `input` / `labels`. forward() with training=false skips dropout.
  void forward(int n, bool training);
  // The steps of one layer (for per-layer timing): nothing when it runs inside a neighbour.
  void forward_layer(std::size_t layer, int n, bool training);
  void backward_layer(std::size_t layer, int n);
  void loss(int n, bool with_gradient);  // accumulates into the loss and correct counters
  void backward(int n);
  // One optimizer step with this step's scalars (copied to the backend first).
  void update(const OptimizerParams& params, const StepScalars& step);
  // One optimizer step reading its scalars from backend memory: entry *index of `scalars`
  // ([entries, StepScalars::kCount] floats), entry 0 when index is nullptr. What a captured
  // graph replays: the host refills `scalars` between replays, the launches stay the same.
  void update(const OptimizerParams& params, const float* scalars, const std::int32_t* index);
  // One training pass over the batch in `input`: forward, loss with gradient, backward,
  // reduce_gradients (when set), update. n may be 0 (a rank with no samples in a step): the
  // gradients are then zero, and the reduction and update still run.
  void train_pass(int n, const OptimizerParams& params, const float* scalars,
                  const std::int32_t* index);
  // The counter gather_at_batch_step reads (backend memory): the index of the step in its epoch.
  const std::int32_t* batch_step() const {
    return reinterpret_cast<const std::int32_t*>(buffer(plan_.batch_step));
  }
  // Adam's second moment (a buffer of the parameters' size, allocated here on first use and
  // zeroed then); nullptr until then.
  void ensure_second_moment();
  T* second_moment() { return second_moment_.template as<T>(); }

  void reset_counters();
  // Sets the counters to a previous read_counters() result (exact: the loss sum is held in T).
  void set_counters(const BatchStats& stats);
  BatchStats read_counters(std::int64_t samples);  // waits
  // Starts an asynchronous read of the counters; returns the last one that completed.
  bool poll_counters(double* loss_sum, std::int64_t* correct);

  std::uint64_t step_counter = 0;     // dropout stream offset, advanced by the caller per step
  std::uint64_t optimizer_steps = 0;  // updates so far (Adam's t - 1), advanced by the caller
  // The training loss's label smoothing e (loss with gradient only; evaluation stays plain).
  float label_smoothing = 0.0f;
  // What the loss gradient divides by: 0 for the batch's own n; the global batch on a rank that
  // holds part of it.
  int loss_divisor = 0;
  // The global batch position of this batch's first sample (a rank's share): dropout draws there.
  std::uint64_t first_sample = 0;
  // Called by train_pass between backward and update with the gradient buffer (backend memory,
  // parameter_count() values): sums it over the ranks of a distributed run.
  std::function<void(T* grads, std::size_t count)> reduce_gradients;

 private:
  T* buffer(int id) const {
    return id < 0 ? nullptr
                  : reinterpret_cast<T*>(static_cast<char*>(arena_.get()) +
                                         plan_.buffers[std::size_t(id)].offset);
  }
  LayerPass<T> prepare(const Step& step) const;
  void run(const Step& step, const LayerPass<T>& prepared, int n, bool training);

  std::unique_ptr<Backend<T>> backend_;  // declared first: the memory below goes back to it
  Plan plan_;
  BackendMemory<T> arena_;
  BackendMemory<T> pinned_;  // two counters for asynchronous reads
  BackendMemory<T> second_moment_;
  BackendMemory<T> step_scalars_;  // one StepScalars entry for update(params, step)
  // Each step's pass with its pointers resolved, parallel to the plan's step lists.
  std::vector<LayerPass<T>> training_forward_, inference_forward_, backward_;
  bool overlap_ = true;
  bool last_forward_training_ = true;
  bool poll_started_ = false;
};

extern template class Executor<float>;
extern template class Executor<double>;

// The one way a model is made: the backend `options` ask for, the executor over it, and the
// seeded initial parameters uploaded.
std::unique_ptr<Executor<float>> make_executor(const Network& network,
                                               const CompileOptions& options);

// The one "replay steps from a captured graph?" decision: the options allow graphs and the
// executor can replay its steps.
inline bool replay_steps_as_graph(const Executor<float>& exec, const CompileOptions& options) {
  return options.cuda_graphs && exec.can_replay_steps();
}

}  // namespace cnnrt
