#pragma once
// A Network compiled for a device and a batch size: every shape inferred and checked once, one
// arena allocated for parameters, gradients, optimizer state, activations and scratch. Nothing is
// allocated inside a step.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/optimizer.hpp"

namespace cnnrt {

struct Dataset;
struct Augmentation;
class Communicator;  // cnnrt/distributed.hpp

enum class TestTimeAugment { none, flip };
// "none" or "flip"; throws cnnrt::Error naming the choices otherwise.
CNNRT_API TestTimeAugment parse_test_time_augment(const std::string& text);

// cpu: the fast CPU path; reference: the plain-loop kernels (float and double), the oracle the
// other paths are tested against; cuda: an NVIDIA GPU.
enum class Device { cpu, cuda, reference };
CNNRT_API const char* to_string(Device device);

// Weight initialisation; biases start at zero. fan_in = C*kh*kw (conv) or inputs (dense),
// fan_out = K*kh*kw or units.
//   he:     std = sqrt(2 / fan_in)            (uniform bound sqrt(6 / fan_in))
//   xavier: std = sqrt(2 / (fan_in + fan_out)) (uniform bound sqrt(6 / (fan_in + fan_out)))
//   lecun:  std = sqrt(1 / fan_in)            (uniform bound sqrt(3 / fan_in))
enum class InitScheme {
  he_uniform,
  he_normal,
  xavier_uniform,
  xavier_normal,
  lecun_uniform,
  lecun_normal
};
CNNRT_API InitScheme parse_init_scheme(const std::string& text);

// Dense layers on CUDA: the hand-written FP32 kernel, cuBLAS, or the hand-written tensor-core
// kernel in TF32 (each operand rounded to 10 mantissa bits; sums in float).
enum class GemmBackend { tiled, cublas, tf32 };
// "tiled", "cublas" or "tf32"; throws cnnrt::Error naming the choices otherwise.
CNNRT_API GemmBackend parse_gemm_backend(const std::string& text);
CNNRT_API const char* to_string(GemmBackend gemm);

// The arithmetic of the CUDA convolutions' forward pass: fp32 (the direct kernels, the default)
// or tf32 (an implicit-GEMM tensor-core kernel: operands rounded to TF32, sums in float; no GPU
// has verified it yet). Only ever what the caller asks for; backward passes stay FP32 and dense
// layers follow `gemm`. The CPU backends compute in FP32 and refuse tf32.
enum class ConvPrecision { fp32, tf32 };
// "fp32" or "tf32"; throws cnnrt::ValueError naming the choices otherwise.
CNNRT_API ConvPrecision parse_conv_precision(const std::string& text);
CNNRT_API const char* to_string(ConvPrecision precision);

struct CNNRT_API CompileOptions {
  Device device = Device::cpu;
  int batch_size = 256;
  std::uint64_t seed = 1;  // weights, dropout masks and shuffling all derive from it
  InitScheme init = InitScheme::lecun_uniform;
  GemmBackend gemm = GemmBackend::tiled;
  ConvPrecision conv_precision = ConvPrecision::fp32;
  // CPU backend: 0 = all hardware threads. Runs are bit-identical for one thread count; the
  // convolution weight gradients add per-thread partial sums, so another count rounds otherwise.
  int cpu_threads = 0;
  // CUDA: capture one training step as a CUDA graph and replay it for every full batch of an
  // epoch (networks without dropout; with dropout the per-step mask offset keeps steps eager).
  bool cuda_graphs = true;
  // Run each activation layer inside the convolution or dense layer in front of it (forward) and
  // the pooling or dense layer behind it (backward), saving its kernels and memory passes. The
  // results are the same bits either way; off is for per-op benchmarks.
  bool fuse_activations = true;
  // CUDA: run each layer's weight gradient on a second stream beside the rest of the backward
  // pass (joined before the pass ends; not with cuBLAS). The same bits either way.
  bool overlap_weight_gradients = true;
  // Data-parallel training (cnnrt/distributed.hpp): with more than one rank, batch_size is the
  // global batch. Each rank compiles for its share, takes its slice of every global batch in
  // train_epoch and evaluates its slice of the evaluation set; gradients are summed over the
  // ranks before every update (on CUDA through host memory), and the epoch's statistics once per
  // epoch. Batch norm normalises over each rank's share, and its running statistics are rank 0's
  // (copied to the others after every epoch), as PyTorch's DistributedDataParallel does. The
  // host-batch calls (train_step, forward_backward, evaluate_batch) act on this rank alone.
  std::shared_ptr<Communicator> communicator;
};

// Sums over the samples seen: mean loss = loss_sum / samples.
struct CNNRT_API BatchStats {
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  std::int64_t samples = 0;
  double mean_loss() const { return samples > 0 ? loss_sum / double(samples) : 0.0; }
  double accuracy() const { return samples > 0 ? double(correct) / double(samples) : 0.0; }
};

struct CNNRT_API ParameterInfo {
  std::string name;                 // "conv1.weight"
  std::vector<std::int64_t> shape;  // PyTorch's: [out, in, kh, kw], [out, in], [out]
  std::int64_t offset = 0;          // into the one contiguous parameter buffer
  std::int64_t count = 0;
};

class CNNRT_API Model {
 public:
  // Throws cnnrt::Error naming the layer and the shapes when they do not fit, or when `device` is
  // cuda and there is no CUDA device.
  Model(const Network& network, const CompileOptions& options);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Network& network() const;
  const CompileOptions& options() const;
  std::vector<SampleShape> layer_shapes() const;  // output of each layer
  std::size_t arena_bytes() const;                // the one allocation (device or host)

  // --- Host-memory batches: images [n, C, H, W] float32, labels [n] in [0, classes), n <= batch.
  // Forward, softmax cross-entropy and backward; parameter gradients are overwritten.
  BatchStats forward_backward(const float* images, const std::int32_t* labels, int n);
  // forward_backward, then one optimizer step.
  BatchStats train_step(const float* images, const std::int32_t* labels, int n);
  // Evaluation mode (dropout off): loss and correct count only.
  BatchStats evaluate_batch(const float* images, const std::int32_t* labels, int n);
  std::vector<float> logits(const float* images, int n);  // [n, classes]
  std::vector<int> predict(const float* images, int n);   // [n]
  // The last forward pass's output of layer `layer` (an index into layer_shapes()) for the first
  // `n` samples of that batch: [n, C, H, W] of layer_shapes()[layer]. Throws when layer or n is out
  // of range; n must not exceed the samples that forward pass ran on. After an inference pass on
  // the fast CPU path, a convolution or dense layer with a batch norm behind it holds the batch
  // norm's output: the batch norm is folded into its weights there.
  std::vector<float> layer_output(int layer, int n);

  // --- Data sets resident in the backend's memory (uploaded once; on CUDA, as bytes).
  // Normalisation x = (byte / 255 - mean[c]) / std[c] is applied when a batch is gathered (one
  // value for all channels, or one per channel; throws when it does not fit the input). The IDX
  // default until set. Checkpoints record it with the class names.
  void set_normalization(const Normalization& normalization);
  const Normalization& normalization() const;
  // The names of the output classes (empty: unnamed), as checkpoints record and predict prints
  // them; throws unless empty or one per class.
  void set_class_names(const std::vector<std::string>& names);
  const std::vector<std::string>& class_names() const;
  // Augmentation of training batches (see Augmentation); throws when the crop padding does not
  // fit the network's input. Evaluation never augments (but see TestTimeAugment).
  void set_augmentation(const Augmentation& augmentation);
  void upload_train_set(const Dataset& data);
  void upload_eval_set(const Dataset& data);
  // One pass over the resident training set in an order shuffled from (seed, epoch); the last
  // batch may be partial. `progress(step, steps, running)` is called after each step on the host
  // with the latest statistics that reached the host without waiting (may lag on CUDA).
  using Progress = std::function<void(int step, int steps, const BatchStats& running)>;
  BatchStats train_epoch(int epoch, const Progress& progress = {});
  // Where an epoch pass starts and what ends it early: resuming inside an epoch, stopping on a
  // request between steps, and finding the step where the loss stopped being finite.
  struct EpochControl {
    int first_step = 0;  // steps of this epoch already taken (a run stopped inside the epoch)
    BatchStats done;     // their loss sum and correct count, carried on exactly
    // Read on the host before each step (no device synchronisation): when set, the pass ends
    // with the steps taken so far.
    const std::atomic<bool>* stop = nullptr;
    // Read the counters after every step (waits for the device) and end the pass after the first
    // step whose running loss sum is not finite.
    bool stop_on_nonfinite = false;
    // Called on the host after each step is issued (step is 1-based); unlike Progress it reads no
    // counters, so it adds no copy from the device to a step.
    std::function<void(int step, int steps)> after_step;
    // The learning rate of each step of the epoch (one per step, those before first_step
    // unused); empty: the optimizer's lr for every step.
    std::vector<float> step_lr;
  };
  struct EpochPass {
    BatchStats stats;    // over every step of the epoch taken so far, control.done included
    int steps_done = 0;  // 0..steps (the first step is 1)
    int steps = 0;       // in a whole epoch
  };
  EpochPass train_epoch(int epoch, const EpochControl& control, const Progress& progress = {});
  // The order train_epoch(epoch) visits the resident training set in (the same on every rank;
  // each takes its rank_slice of every batch of it).
  std::vector<std::int32_t> epoch_order(int epoch) const;
  BatchStats evaluate_resident();  // the whole resident evaluation set
  // The same with test-time augmentation: `flip` classifies each image by the mean of the softmax
  // probabilities of the image and its horizontal mirror; the loss is -log of that mean at the
  // label.
  BatchStats evaluate_resident(TestTimeAugment tta);
  // Nsight: bracket training steps first..last (0-based, counted over the run) with
  // cudaProfilerStart/Stop. Those steps run eagerly (no graph replay) so every kernel sits inside
  // its layer's NVTX range ("conv1/forward").
  void set_profile_steps(std::int64_t first, std::int64_t last);
  // Whether the last train_epoch replayed a captured graph for its full batches.
  bool last_epoch_used_graph() const;

  // --- Optimizer. Throws cnnrt::Error naming the setting when one is out of range
  // (OptimizerParams::check). Another kind than the current one starts from zero state (momentum,
  // moments, step count); the same kind keeps it. lr is the rate of train_step and of
  // train_epoch's steps unless EpochControl::step_lr gives them.
  void set_optimizer(const OptimizerParams& params);
  const OptimizerParams& optimizer() const;
  // The training loss's label smoothing e in [0, 1) (0 by default): the target is (1 - e) one-hot
  // + e / classes. Evaluation reports the plain cross-entropy.
  void set_label_smoothing(float epsilon);
  float label_smoothing() const;

  // --- Parameters, in one contiguous buffer; gradients and the optimizer's state mirror its
  // layout. momentum: SGD's momentum buffer, or Adam's first moment; second_moment: Adam's
  // (throws for an optimizer without one).
  const std::vector<ParameterInfo>& parameters() const;
  const ParameterInfo& parameter_info(const std::string& name) const;  // throws if unknown
  std::vector<float> parameter(const std::string& name) const;
  void set_parameter(const std::string& name, const std::vector<float>& values);
  std::vector<float> gradient(const std::string& name) const;
  std::vector<float> momentum(const std::string& name) const;
  void set_momentum(const std::string& name, const std::vector<float>& values);
  std::vector<float> second_moment(const std::string& name) const;
  void set_second_moment(const std::string& name, const std::vector<float>& values);
  // Updates taken so far (Adam's step count t before the next update); saved in checkpoints.
  std::uint64_t optimizer_steps() const;
  void set_optimizer_steps(std::uint64_t steps);
  std::int64_t parameter_count() const;

  // --- Layer state that is not a parameter (batch norm's running statistics): saved in
  // checkpoints, never touched by the optimizer or weight decay. Empty when no layer keeps any.
  const std::vector<ParameterInfo>& state_tensors() const;
  std::vector<float> state(const std::string& name) const;
  // Throws cnnrt::Error naming the tensor when `values` cannot be its value (a variance holding a
  // negative or NaN value); set_state checks this too.
  void check_state(const std::string& name, const std::vector<float>& values) const;
  void set_state(const std::string& name, const std::vector<float>& values);

  // Dropout masks and step-dependent randomness advance with this counter (saved in checkpoints).
  std::uint64_t step_counter() const;
  void set_step_counter(std::uint64_t steps);

  // Everything a checkpoint restores (all parameters, the optimizer's state, the layers' state,
  // the step counters) as one host copy, for going back to an earlier point of a run without a
  // file. second_moment is empty unless the optimizer keeps one.
  struct TrainingState {
    std::vector<float> parameters, momentum, second_moment, state;
    std::uint64_t step_counter = 0;
    std::uint64_t optimizer_steps = 0;
  };
  TrainingState training_state() const;
  void restore_training_state(const TrainingState& state);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cnnrt
