#pragma once
// One layer kind, one unit. A unit owns everything a kind of layer is: its model-file fields and
// their validation, its shape rule, its parameters (names, shapes, fan-in), its non-parameter
// state, its cost for `cnnrt summary`, the activations it can run inside its own kernels, and its
// forward and backward calls onto a backend. Network, the executor, checkpoints and summary ask
// the unit; nothing else switches on the kind. A new kind is one file in host/layers/ and its line
// in host/layers/registry.cpp.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnnrt/network.hpp"
#include "host/backend.hpp"
#include "host/onnx_graph.hpp"
#include "kernels/ops.hpp"

namespace cnnrt {

// A parameter tensor "<layer>.<suffix>". Weights are drawn from the initialisation scheme with
// this fan-in and fan-out; the others start at `initial` (biases 0, batch norm's scale 1).
struct ParameterSpec {
  std::string suffix;  // "weight", "bias"
  std::vector<std::int64_t> shape;
  bool random_init = false;  // false: every value is `initial`
  double fan_in = 0, fan_out = 0;
  double initial = 0;
};

// The number of elements of a tensor of this shape.
inline std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t d : shape) count *= d;
  return count;
}

// A tensor a layer keeps that is not a parameter (batch norm's running statistics): it lives in
// the arena and the checkpoint, and the optimizer and weight decay never touch it.
struct StateSpec {
  std::string suffix;
  std::vector<std::int64_t> shape;
  double initial = 0;
  // A variance: a value set from outside (a checkpoint) must be >= 0 and not NaN.
  bool non_negative = false;
};

// What sizes a layer's scratch memory, which depends on the backend.
struct ScratchQuery {
  SampleShape in, out;
  int batch = 0;
  std::size_t scalar_bytes = sizeof(float);
  int cpu_threads = 0;    // > 0 on the CPU backend
  bool cpu_fast = false;  // the CPU backend's fast path (CpuContext::fast)
  bool cuda = false;
};

// Scratch for one batch that only this layer's own steps touch: argmax, a dropout mask, partial
// sums of a weight gradient.
struct ScratchSpec {
  std::string suffix;  // "argmax", "mask", "workspace"
  std::size_t bytes = 0;
};

// An activation a neighbouring layer can run inside its own kernel.
struct ActivationFn {
  Activation kind = Activation::none;
  float slope = 0.1f;
};

inline constexpr std::size_t kMaxLayerTensors = 4;  // parameters, state tensors or scratch regions

// Everything one call of a layer's pass sees. The executor fills it from the plan's buffers.
template <typename T>
struct LayerPass {
  Backend<T>* backend = nullptr;
  int n = 0;  // samples in this call (at most the compiled batch)
  bool training = true;
  std::size_t index = 0;   // the layer's position in the network
  std::uint64_t step = 0;  // training steps taken so far (dropout's stream offset)
  // The global batch position of sample 0 (a rank's share starts past 0; dropout draws there).
  std::uint64_t first_sample = 0;
  SampleShape in_shape, out_shape;
  const T* in = nullptr;    // [n, in_shape]
  T* out = nullptr;         // [n, out_shape]
  const T* dout = nullptr;  // backward: gradient at the output
  T* din = nullptr;         // backward: gradient at the input; nullptr for the first layer
  // Forward: the activation behind this layer, run inside it (FusedActivation{} for none).
  FusedActivation<T> fused;
  // Backward-data: the activation in front of this layer; din is then the gradient at the
  // activation's input (FusedActivationGrad{} for none).
  FusedActivationGrad<T> fused_grad;
  // Inference: the batch norm behind this layer, folded into its weight and bias (the plan does
  // this on the fast CPU path when the unit takes_batch_norm_fold); `fused` is then the
  // activation behind the batch norm.
  BatchNormFold<T> fold;
  std::array<T*, kMaxLayerTensors> params{}, grads{};  // in parameters() order
  std::array<T*, kMaxLayerTensors> state{};            // in state() order
  std::array<void*, kMaxLayerTensors> scratch{};       // in scratch() order

  std::size_t out_count() const { return std::size_t(n) * std::size_t(out_shape.size()); }
};

class LayerUnit {
 public:
  explicit LayerUnit(std::string name) : name_(std::move(name)) {}
  virtual ~LayerUnit() = default;
  LayerUnit(const LayerUnit&) = delete;
  LayerUnit& operator=(const LayerUnit&) = delete;

  const std::string& name() const { return name_; }

  // The output shape for this input; throws cnnrt::Error naming the layer when it does not fit.
  virtual SampleShape output_shape(const SampleShape& in) const = 0;
  virtual std::vector<ParameterSpec> parameters(const SampleShape& in) const {
    (void)in;
    return {};
  }
  virtual std::vector<StateSpec> state(const SampleShape& in) const {
    (void)in;
    return {};
  }
  virtual std::vector<ScratchSpec> scratch(const ScratchQuery& q) const {
    (void)q;
    return {};
  }
  // Forward FLOPs of one sample (multiply and add counted apart), for `cnnrt summary`.
  virtual std::int64_t flops(const SampleShape& in, const SampleShape& out) const = 0;
  // A convolution's parameters if it were a dense layer between the same sizes; 0 otherwise.
  virtual std::int64_t dense_equivalent(const SampleShape& in, const SampleShape& out) const {
    (void)in, (void)out;
    return 0;
  }
  virtual std::string describe() const = 0;  // summary's kind column: "conv 5x5 /1 same"
  // The model-file fields, canonical (network_to_json): everything but "type" and "name".
  virtual void write_fields(nlohmann::json& layer) const = 0;

  // Fusion, decided when the plan is built. An activation layer says which it is; a layer whose
  // forward kernel can apply the activation behind it, or whose backward-data kernel can apply
  // the gradient of the activation in front of it, says so.
  virtual std::optional<ActivationFn> activation() const { return std::nullopt; }
  virtual bool runs_activation_after() const { return false; }
  virtual bool runs_activation_grad_before() const { return false; }
  // Inference folding: a batch norm says its eps (it is a per-channel scale and shift in
  // inference); a layer whose params are [weight [channels, ...], bias [channels]] and whose
  // inference forward applies LayerPass::fold says so.
  virtual std::optional<double> batch_norm_eps() const { return std::nullopt; }
  virtual bool takes_batch_norm_fold() const { return false; }
  // In inference the layer is the identity (dropout): the plan skips it.
  virtual bool identity_in_inference() const { return false; }
  // Its forward depends on the step number (dropout's mask): a captured step cannot be replayed.
  virtual bool varies_per_step() const { return false; }
  // It may be the last layer, producing one logit per class.
  virtual bool produces_logits() const { return false; }
  // Writes the layer's inference forward pass for input `in` into an ONNX graph; false when ONNX
  // cannot express it (export then fails naming the layer). Layers that are the identity in
  // inference are skipped without being asked.
  virtual bool export_onnx(OnnxGraph& graph, const SampleShape& in) const {
    (void)graph, (void)in;
    return false;
  }

  virtual void forward(const LayerPass<float>& p) const = 0;
  virtual void forward(const LayerPass<double>& p) const = 0;
  // Gradients of the parameters (only called when parameters() is not empty).
  virtual void backward_weights(const LayerPass<float>& p) const = 0;
  virtual void backward_weights(const LayerPass<double>& p) const = 0;
  // Gradient at the input (only called when din is not nullptr).
  virtual void backward_data(const LayerPass<float>& p) const = 0;
  virtual void backward_data(const LayerPass<double>& p) const = 0;

 private:
  std::string name_;
};

// The weight and bias a layer's forward multiplies with: its parameters, or with p.fold set, the
// batch norm behind it folded into them first (written to fold.weight and fold.bias). weight:
// [channels, per_channel], bias: [channels].
template <typename T>
std::pair<const T*, const T*> weight_and_bias(const LayerPass<T>& p, int channels,
                                              std::size_t per_channel);

// The base a unit derives from: `Unit` defines forward_cpu / backward_weights_cpu /
// backward_data_cpu as templates over the scalar (float and double, the reference kernels of
// kernels/cpu) and forward_cuda / ... over float (kernels/cuda); this routes each call.
template <typename Unit>
class LayerUnitOf : public LayerUnit {
 public:
  using LayerUnit::LayerUnit;

  void forward(const LayerPass<float>& p) const final {
    if (CudaContext* cuda = p.backend->cuda())
      self().forward_cuda(p, *cuda);
    else
      self().forward_cpu(p, *p.backend->cpu());
  }
  void forward(const LayerPass<double>& p) const final { self().forward_cpu(p, *p.backend->cpu()); }
  void backward_weights(const LayerPass<float>& p) const final {
    if (CudaContext* cuda = p.backend->cuda())
      self().backward_weights_cuda(p, *cuda);
    else
      self().backward_weights_cpu(p, *p.backend->cpu());
  }
  void backward_weights(const LayerPass<double>& p) const final {
    self().backward_weights_cpu(p, *p.backend->cpu());
  }
  void backward_data(const LayerPass<float>& p) const final {
    if (CudaContext* cuda = p.backend->cuda())
      self().backward_data_cuda(p, *cuda);
    else
      self().backward_data_cpu(p, *p.backend->cpu());
  }
  void backward_data(const LayerPass<double>& p) const final {
    self().backward_data_cpu(p, *p.backend->cpu());
  }

  // For layers without parameters: the plan never asks them for weight gradients.
  template <typename T>
  void backward_weights_cpu(const LayerPass<T>&, CpuContext&) const {}
  void backward_weights_cuda(const LayerPass<float>&, CudaContext&) const {}

 private:
  const Unit& self() const { return static_cast<const Unit&>(*this); }
};

// A fused activation's arrays from element `first` on (one slice of a batch).
template <typename T>
FusedActivation<T> offset_by(FusedActivation<T> fused, std::size_t first) {
  if (fused.activated != nullptr) fused.activated += first;
  return fused;
}
template <typename T>
FusedActivationGrad<T> offset_by(FusedActivationGrad<T> fused, std::size_t first) {
  if (fused.z != nullptr) fused.z += first, fused.a += first;
  return fused;
}

// A model file nests four levels: the object, its layers, a layer, a pair such as its kernel.
// Deeper input is refused while it is parsed: errors quote values with dump(), which recurses once
// per level (100,000 nested arrays overflowed the stack).
inline constexpr int kMaxModelFileDepth = 16;
// Parses `text`, throwing cnnrt::Error "<too_deep> 16 levels" past kMaxModelFileDepth (and
// nlohmann's exceptions for invalid JSON).
nlohmann::json parse_model_json(const std::string& text, const std::string& too_deep);

// A JSON value for a message: its text, cut short when long.
std::string json_brief(const nlohmann::json& value);
// A JSON integer that fits an int, nothing else (a float or a number past int's range is refused
// rather than converted); messages name `key` and start with `where`.
int json_int(const nlohmann::json& value, const char* key, const std::string& where);

// Reads a layer's fields (LayerSpec::fields, JSON texts); messages start with `where`.
class LayerFields {
 public:
  LayerFields(const LayerSpec& spec, std::string where);
  const std::string& where() const { return where_; }
  // A JSON integer that fits an int, required.
  int integer(const char* key) const;
  // An integer or a pair [a, b]; `fallback` twice when absent.
  std::pair<int, int> int_pair(const char* key, int fallback) const;
  std::pair<int, int> int_pair(const char* key, std::pair<int, int> fallback) const;
  // A finite number in [lo, hi], or `fallback` when absent.
  float number(const char* key, float fallback, double lo, double hi) const;
  // "valid", "same", P or [ph, pw]; valid when absent.
  Padding padding() const;

 private:
  nlohmann::json fields_;
  std::string where_;
};

// The JSON text of a field, for the builders of Network.
template <typename Value>
std::string field_text(const Value& value) {
  return nlohmann::json(value).dump();
}
std::string field_text(float value);  // shortest text that reads back as the same float

// What every unit factory gets: the spec (named already) and how errors name the layer.
using LayerUnitFactory = std::shared_ptr<const LayerUnit> (*)(const LayerSpec& spec,
                                                              const std::string& where);

// A registered layer type (host/layers/registry.cpp).
struct LayerType {
  const char* type;     // the model file's "type"
  const char* counter;  // default names count per counter: relu1, sigmoid2 share "activation"
  const char* prefix;   // default names are <prefix><count>
  LayerUnitFactory make;
};
const std::vector<LayerType>& layer_types();
// Adds a type after the built-in ones (for layers defined outside the library, and tests); throws
// cnnrt::Error when the type is taken. Not thread-safe: register before building networks.
void register_layer_type(const LayerType& type);
// The registered type `type`; throws cnnrt::Error listing the known ones.
const LayerType& find_layer_type(const std::string& type, const std::string& where);

}  // namespace cnnrt
