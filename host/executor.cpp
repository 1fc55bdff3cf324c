#include "host/executor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "cnnrt/error.hpp"
#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/profiling.hpp"

namespace cnnrt {

namespace {

constexpr std::size_t kArenaAlignment = 256;  // keeps every region aligned for vector loads

std::size_t align_up(std::size_t bytes) {
  return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// Ops issued while one lives are the backend's side work (Backend::begin_side_work), also when
// one of them throws.
template <typename T>
class SideWork {
 public:
  SideWork(Backend<T>& backend, bool on) : backend_(backend), on_(on) {
    if (on_) backend_.begin_side_work();
  }
  ~SideWork() {
    if (on_) backend_.end_side_work();
  }
  SideWork(const SideWork&) = delete;
  SideWork& operator=(const SideWork&) = delete;

 private:
  Backend<T>& backend_;
  bool on_;
};

// Lays out the arena in order: every region aligned, views into regions added as buffers too.
class PlanBuilder {
 public:
  explicit PlanBuilder(Plan& plan) : plan_(plan) {}

  int region(std::string name, std::size_t owner, std::size_t bytes) {
    const int id = view(std::move(name), owner, size_, bytes);
    size_ += align_up(bytes);
    return id;
  }
  int view(std::string name, std::size_t owner, std::size_t offset, std::size_t bytes) {
    plan_.buffers.push_back(Buffer{std::move(name), owner, offset, bytes});
    return static_cast<int>(plan_.buffers.size()) - 1;
  }
  std::size_t offset(int id) const { return plan_.buffers[std::size_t(id)].offset; }
  std::size_t size() const { return size_; }

 private:
  Plan& plan_;
  std::size_t size_ = 0;
};

void add_unique(std::vector<int>& ids, int id) {
  if (id < 0) return;
  for (int existing : ids)
    if (existing == id) return;
  ids.push_back(id);
}

// Fills a step's reads and writes from its roles and its layer's buffers.
void list_buffers(Step& s, const LayerPlan& layer) {
  for (int id : {s.in, s.dout, s.z, s.a}) add_unique(s.reads, id);
  if (s.kind == StepKind::backward_data && s.out >= 0) add_unique(s.reads, s.out);
  if (s.kind != StepKind::backward_weights)
    for (int id : layer.params) add_unique(s.reads, id);
  for (int id : layer.state) add_unique(s.reads, id);
  if (s.kind == StepKind::forward) {
    for (int id : layer.state) add_unique(s.writes, id);  // running statistics, in training
    add_unique(s.writes, s.out);
    add_unique(s.writes, s.activated);
    if (s.activated >= 0) add_unique(s.reads, s.out);  // the activation reads z back
  }
  if (s.kind == StepKind::backward_data) add_unique(s.writes, s.din);
  if (s.kind == StepKind::backward_weights)
    for (int id : layer.grads) add_unique(s.writes, id);
  for (int id : layer.scratch) add_unique(s.writes, id);
}

}  // namespace

Plan build_plan(const Network& network, int batch, bool fuse, const PlanTarget& target) {
  if (batch <= 0) throw Error(fmt::format("batch size must be positive, got {}", batch));
  const std::vector<SampleShape> shapes = network.infer_shapes();
  const auto& units = network.units();
  const std::size_t count = units.size();
  const std::size_t scalar = target.scalar_bytes;
  Plan plan;
  plan.batch = batch;
  plan.layers.resize(count);

  // Parameters and state first: each kind is one contiguous region, so the update is one kernel.
  std::vector<std::vector<ParameterSpec>> parameter_specs(count);
  std::vector<std::vector<StateSpec>> state_specs(count);
  SampleShape in = network.input();
  for (std::size_t i = 0; i < count; ++i) {
    LayerPlan& layer = plan.layers[i];
    layer.unit = units[i];
    layer.in_shape = in;
    layer.out_shape = shapes[i];
    parameter_specs[i] = units[i]->parameters(in);
    state_specs[i] = units[i]->state(in);
    if (parameter_specs[i].size() > kMaxLayerTensors || state_specs[i].size() > kMaxLayerTensors)
      throw Error(fmt::format("{}: more than {} parameter or state tensors", units[i]->name(),
                              kMaxLayerTensors));
    for (const ParameterSpec& p : parameter_specs[i]) {
      const std::int64_t n = element_count(p.shape);
      plan.parameters.push_back(
          ParameterInfo{units[i]->name() + "." + p.suffix, p.shape, plan.parameter_count, n});
      plan.parameter_count += n;
    }
    for (const StateSpec& s : state_specs[i]) {
      const std::int64_t n = element_count(s.shape);
      plan.state.push_back(
          ParameterInfo{units[i]->name() + "." + s.suffix, s.shape, plan.state_count, n});
      plan.initial_state.insert(plan.initial_state.end(), std::size_t(n), s.initial);
      plan.state_non_negative.push_back(s.non_negative);
      plan.state_count += n;
    }
    in = shapes[i];
  }

  // Inference on the fast CPU path folds a batch norm into the convolution or dense layer in front
  // of it: the layer's forward scales its weight and bias once a pass (per channel) instead of the
  // batch norm rescaling every output value. The reference path stays the formulas as written.
  const auto folds_batch_norm = [&](std::size_t i) {
    return fuse && target.cpu_fast && i + 1 < count && units[i]->takes_batch_norm_fold() &&
           units[i + 1]->batch_norm_eps().has_value();
  };

  PlanBuilder arena(plan);
  const std::size_t param_bytes = std::size_t(plan.parameter_count) * scalar;
  plan.params = arena.region("params", kNetworkOwned, param_bytes);
  plan.grads = arena.region("grads", kNetworkOwned, param_bytes);
  plan.velocity = arena.region("velocity", kNetworkOwned, param_bytes);
  plan.state_values = arena.region("state", kNetworkOwned, std::size_t(plan.state_count) * scalar);
  plan.input = arena.region("input", kNetworkOwned,
                            std::size_t(batch) * std::size_t(network.input().size()) * scalar);
  plan.labels = arena.region("labels", kNetworkOwned, std::size_t(batch) * sizeof(std::int32_t));
  plan.loss_sum = arena.region("loss_sum", kNetworkOwned, scalar);
  plan.correct = arena.region("correct", kNetworkOwned, sizeof(std::int32_t));
  // {batch in the epoch, epoch}: the gather's position, read on the backend (see AugmentParams)
  plan.batch_step = arena.region("batch_step", kNetworkOwned, 2 * sizeof(std::int32_t));

  // Views of each layer's parameters, gradients and state inside those regions.
  {
    std::size_t p = 0, s = 0;
    for (std::size_t i = 0; i < count; ++i) {
      LayerPlan& layer = plan.layers[i];
      for (std::size_t k = 0; k < parameter_specs[i].size(); ++k, ++p) {
        const ParameterInfo& info = plan.parameters[p];
        const std::size_t at = std::size_t(info.offset) * scalar;
        const std::size_t bytes = std::size_t(info.count) * scalar;
        layer.params.push_back(arena.view(info.name, i, arena.offset(plan.params) + at, bytes));
        layer.grads.push_back(
            arena.view(info.name + ".grad", i, arena.offset(plan.grads) + at, bytes));
      }
      for (std::size_t k = 0; k < state_specs[i].size(); ++k, ++s) {
        const ParameterInfo& info = plan.state[s];
        layer.state.push_back(arena.view(
            info.name, i, arena.offset(plan.state_values) + std::size_t(info.offset) * scalar,
            std::size_t(info.count) * scalar));
      }
    }
  }

  // Each layer's output, the gradient at its input, and its scratch.
  for (std::size_t i = 0; i < count; ++i) {
    LayerPlan& layer = plan.layers[i];
    const std::string& name = units[i]->name();
    layer.out = arena.region(name + ".out", i,
                             std::size_t(batch) * std::size_t(layer.out_shape.size()) * scalar);
    if (i > 0)
      layer.din = arena.region(name + ".din", i,
                               std::size_t(batch) * std::size_t(layer.in_shape.size()) * scalar);
    ScratchQuery q;
    q.in = layer.in_shape, q.out = layer.out_shape, q.batch = batch;
    q.scalar_bytes = scalar, q.cpu_threads = target.cpu_threads, q.cuda = target.cuda;
    q.cpu_fast = target.cpu_fast;
    const std::vector<ScratchSpec> scratch = units[i]->scratch(q);
    if (scratch.size() > kMaxLayerTensors)
      throw Error(fmt::format("{}: more than {} scratch regions", name, kMaxLayerTensors));
    for (const ScratchSpec& s : scratch)
      layer.scratch.push_back(arena.region(name + "." + s.suffix, i, s.bytes));
    if (folds_batch_norm(i)) {
      std::size_t floats = 0;
      for (const ParameterSpec& p : parameter_specs[i])
        floats += std::size_t(element_count(p.shape));
      layer.folded = arena.region(name + ".folded", i, floats * scalar);
    }
    plan.varies_per_step = plan.varies_per_step || units[i]->varies_per_step();
  }
  plan.dlogits =
      arena.region("loss.dlogits", kNetworkOwned,
                   std::size_t(batch) * std::size_t(plan.layers.back().out_shape.size()) * scalar);
  plan.arena_bytes = arena.size();

  // Fusion: an activation runs inside the layer in front of it (forward) and the layer behind it
  // (backward), where those layers' kernels can.
  for (std::size_t i = 1; fuse && i < count; ++i) {
    if (!units[i]->activation()) continue;
    plan.layers[i].forward_fused = units[i - 1]->runs_activation_after();
    plan.layers[i].backward_fused = i + 1 < count && units[i + 1]->runs_activation_grad_before();
  }

  auto value_in = [&](std::size_t i, const std::vector<int>& out) {
    return i == 0 ? plan.input : out[i - 1];
  };
  // Forward, in training and in inference (where layers that are then the identity are skipped
  // and the next reads their input).
  std::vector<int> training_out(count);
  for (std::size_t i = 0; i < count; ++i) training_out[i] = plan.layers[i].out;
  plan.inference_out = training_out;
  for (bool training : {true, false}) {
    std::vector<Step>& steps = training ? plan.training_forward : plan.inference_forward;
    std::vector<int>& out = training ? training_out : plan.inference_out;
    for (std::size_t i = 0; i < count; ++i) {
      const LayerPlan& layer = plan.layers[i];
      if (!training && units[i]->identity_in_inference()) {
        out[i] = value_in(i, out);
        continue;
      }
      if (layer.forward_fused) continue;  // run by layer i - 1
      Step s;
      s.kind = StepKind::forward;
      s.layer = i;
      s.in = value_in(i, out);
      s.out = layer.out;
      // The layer whose fused activation this step runs: the one behind the folded batch norm.
      std::size_t next = i + 1;
      if (!training && layer.folded >= 0) {
        s.folded = i + 1;
        out[i + 1] = layer.out;  // the batch norm's output is this step's
        next = i + 2;
      }
      if (next < count && plan.layers[next].forward_fused) {
        s.fused = next;
        s.activated = plan.layers[next].out;
      }
      s.range = units[i]->name() + "/forward";
      list_buffers(s, layer);
      if (s.folded != kNoLayer) {
        const LayerPlan& bn = plan.layers[s.folded];
        for (int id : bn.params) add_unique(s.reads, id);
        for (int id : bn.state) add_unique(s.reads, id);
        add_unique(s.writes, layer.folded);
        ++i;  // the batch norm runs inside this step
      }
      steps.push_back(std::move(s));
    }
  }

  // Backward, from the loss down. A weight gradient reads only its layer's input and output
  // gradient, which nothing later in the pass writes: it may run beside the data gradients of
  // the layers below. The first layer has nothing below it and keeps the main stream.
  for (std::size_t i = count; i-- > 0;) {
    const LayerPlan& layer = plan.layers[i];
    if (layer.backward_fused) continue;  // run by layer i + 1
    Step base;
    base.layer = i;
    base.in = value_in(i, training_out);
    base.out = layer.out;
    base.dout = i + 1 == count ? plan.dlogits : plan.layers[i + 1].din;
    base.range = units[i]->name() + "/backward";
    if (!layer.params.empty()) {
      Step s = base;
      s.kind = StepKind::backward_weights;
      s.beside = i > 0;
      s.out = -1;
      list_buffers(s, layer);
      plan.backward.push_back(std::move(s));
    }
    if (i == 0) continue;
    Step s = base;
    s.kind = StepKind::backward_data;
    s.din = layer.din;
    if (plan.layers[i - 1].backward_fused) {
      // din skips the activation's output gradient: the gradient at the activation's input.
      s.fused = i - 1;
      s.din = plan.layers[i - 1].din;
      s.z = value_in(i - 1, training_out);
      s.a = plan.layers[i - 1].out;
    }
    list_buffers(s, layer);
    plan.backward.push_back(std::move(s));
  }
  return plan;
}

template <typename T>
std::vector<T> initial_parameters(const Plan& plan, InitScheme scheme, std::uint64_t seed) {
  std::vector<T> values(static_cast<std::size_t>(plan.parameter_count), T(0));
  std::mt19937_64 rng(seed);
  std::size_t p = 0;
  for (const LayerPlan& layer : plan.layers) {
    for (const ParameterSpec& spec : layer.unit->parameters(layer.in_shape)) {
      const ParameterInfo& info = plan.parameters[p++];
      if (!spec.random_init) {
        std::fill_n(values.begin() + info.offset, info.count, T(spec.initial));
        continue;
      }
      double variance = 0;
      bool uniform = true;
      switch (scheme) {
        case InitScheme::he_uniform:
        case InitScheme::he_normal:
          variance = 2.0 / spec.fan_in;
          uniform = scheme == InitScheme::he_uniform;
          break;
        case InitScheme::xavier_uniform:
        case InitScheme::xavier_normal:
          variance = 2.0 / (spec.fan_in + spec.fan_out);
          uniform = scheme == InitScheme::xavier_uniform;
          break;
        case InitScheme::lecun_uniform:
        case InitScheme::lecun_normal:
          variance = 1.0 / spec.fan_in;
          uniform = scheme == InitScheme::lecun_uniform;
          break;
      }
      T* w = values.data() + info.offset;
      if (uniform) {
        const double bound = std::sqrt(3.0 * variance);  // U(-b, b) has variance b^2 / 3
        std::uniform_real_distribution<double> dist(-bound, bound);
        for (std::int64_t i = 0; i < info.count; ++i) w[i] = T(dist(rng));
      } else {
        std::normal_distribution<double> dist(0.0, std::sqrt(variance));
        for (std::int64_t i = 0; i < info.count; ++i) w[i] = T(dist(rng));
      }
    }
  }
  return values;
}
template std::vector<float> initial_parameters<float>(const Plan&, InitScheme, std::uint64_t);

namespace {

template <typename T>
PlanTarget target_of(Backend<T>& backend) {
  PlanTarget target;
  target.scalar_bytes = sizeof(T);
  target.cpu_threads = backend.cpu() != nullptr ? backend.cpu()->threads() : 0;
  target.cpu_fast = backend.cpu() != nullptr && backend.cpu()->fast() && sizeof(T) == sizeof(float);
  target.cuda = backend.cuda() != nullptr;
  return target;
}

}  // namespace

template <typename T>
Executor<T>::Executor(const Network& network, int batch, std::unique_ptr<Backend<T>> backend,
                      bool fuse_activations)
    : backend_(std::move(backend)),
      plan_(build_plan(network, batch, fuse_activations, target_of(*backend_))) {
  try {
    arena_ = BackendMemory<T>(*backend_, plan_.arena_bytes);
  } catch (const Error& e) {
    throw Error(fmt::format("{} at batch {}: {}; a smaller batch needs less", network.name(), batch,
                            e.what()));
  }
  backend_->fill_zero(arena_.get(), plan_.arena_bytes);
  pinned_ = BackendMemory<T>(*backend_, sizeof(double) * 2, BackendMemory<T>::Kind::pinned_host);
  if (plan_.state_count > 0)
    upload(state_values(), std::vector<T>(plan_.initial_state.begin(), plan_.initial_state.end()));
  for (const Step& s : plan_.training_forward) training_forward_.push_back(prepare(s));
  for (const Step& s : plan_.inference_forward) inference_forward_.push_back(prepare(s));
  for (const Step& s : plan_.backward) backward_.push_back(prepare(s));
}

template <typename T>
LayerPass<T> Executor<T>::prepare(const Step& step) const {
  const LayerPlan& layer = plan_.layers[step.layer];
  LayerPass<T> p;
  p.backend = backend_.get();
  p.index = step.layer;
  p.in_shape = layer.in_shape;
  p.out_shape = layer.out_shape;
  p.in = buffer(step.in);
  p.out = buffer(step.out);
  p.dout = buffer(step.dout);
  p.din = buffer(step.din);
  if (step.fused != kNoLayer) {
    const ActivationFn fn = *plan_.layers[step.fused].unit->activation();
    if (step.kind == StepKind::forward)
      p.fused = FusedActivation<T>{fn.kind, T(fn.slope), buffer(step.activated)};
    else
      p.fused_grad = FusedActivationGrad<T>{fn.kind, T(fn.slope), buffer(step.z), buffer(step.a)};
  }
  for (std::size_t k = 0; k < layer.params.size(); ++k) {
    p.params[k] = buffer(layer.params[k]);
    p.grads[k] = buffer(layer.grads[k]);
  }
  for (std::size_t k = 0; k < layer.state.size(); ++k) p.state[k] = buffer(layer.state[k]);
  for (std::size_t k = 0; k < layer.scratch.size(); ++k) p.scratch[k] = buffer(layer.scratch[k]);
  if (step.folded != kNoLayer) {
    const LayerPlan& bn = plan_.layers[step.folded];
    T* folded = buffer(layer.folded);
    p.fold =
        BatchNormFold<T>{buffer(bn.params[0]),
                         buffer(bn.params[1]),
                         buffer(bn.state[0]),
                         buffer(bn.state[1]),
                         *bn.unit->batch_norm_eps(),
                         folded,
                         folded + plan_.buffers[std::size_t(layer.params[0])].bytes / sizeof(T)};
  }
  return p;
}

template <typename T>
void Executor<T>::run(const Step& step, const LayerPass<T>& prepared, int n, bool training) {
  ScopedRange range(step.range);
  LayerPass<T> p = prepared;
  p.n = n;
  p.training = training;
  p.step = step_counter;
  p.first_sample = first_sample;
  const LayerUnit& unit = *plan_.layers[step.layer].unit;
  switch (step.kind) {
    case StepKind::forward:
      unit.forward(p);
      break;
    case StepKind::backward_weights: {
      SideWork<T> side(*backend_, overlap_ && step.beside);
      unit.backward_weights(p);
      break;
    }
    case StepKind::backward_data:
      unit.backward_data(p);
      break;
  }
}

template <typename T>
const T* Executor<T>::output(int layer) const {
  const std::size_t i = static_cast<std::size_t>(layer);
  return buffer(last_forward_training_ ? plan_.layers.at(i).out : plan_.inference_out.at(i));
}

template <typename T>
void Executor<T>::upload(T* backend_buffer, const std::vector<T>& host) {
  backend_->copy_to_backend(backend_buffer, host.data(), host.size() * sizeof(T));
}

template <typename T>
std::vector<T> Executor<T>::download(const T* backend_buffer, std::size_t count) {
  std::vector<T> host(count);
  backend_->copy_to_host(host.data(), backend_buffer, count * sizeof(T));
  return host;
}

template <typename T>
void Executor<T>::load_batch(const T* images, const std::int32_t* labels, int n) {
  if (n <= 0 || n > batch())
    throw Error(
        fmt::format("batch of {} samples does not fit the compiled batch size {}", n, batch()));
  const int classes = plan_.layers.back().out_shape.c;
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw Error(fmt::format("label {} of sample {} is outside [0, {})", labels[i], i, classes));
  const std::size_t sample = std::size_t(plan_.layers.front().in_shape.size());
  backend_->copy_to_backend(input(), images, std::size_t(n) * sample * sizeof(T));
  backend_->copy_to_backend(this->labels(), labels, std::size_t(n) * sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::gather(const NormalizeParams& norm, const AugmentParams& aug,
                         const std::uint8_t* images, const std::uint8_t* labels,
                         const std::int32_t* indices, int pixels, int n) {
  backend_->gather_batch(norm, aug, n, pixels, images, labels, indices, input(), this->labels());
}

template <typename T>
void Executor<T>::gather_at_batch_step(const NormalizeParams& norm, const AugmentParams& aug,
                                       const std::uint8_t* images, const std::uint8_t* labels,
                                       const std::int32_t* order, int pixels, int n) {
  backend_->gather_batch_at_step(norm, aug, n, pixels, images, labels, order,
                                 reinterpret_cast<std::int32_t*>(buffer(plan_.batch_step)), input(),
                                 this->labels());
}

template <typename T>
void Executor<T>::reset_batch_step() {
  backend_->fill_zero(buffer(plan_.batch_step), sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::set_batch_step(int step) {
  const std::int32_t value = step;
  backend_->copy_to_backend(buffer(plan_.batch_step), &value, sizeof(value));
}

template <typename T>
void Executor<T>::set_batch_epoch(int epoch) {
  const std::int32_t value = epoch;
  backend_->copy_to_backend(reinterpret_cast<std::int32_t*>(buffer(plan_.batch_step)) + 1, &value,
                            sizeof(value));
}

template <typename T>
void Executor<T>::advance_batch_step() {
  backend_->advance_counter(reinterpret_cast<std::int32_t*>(buffer(plan_.batch_step)));
}

template <typename T>
void Executor<T>::forward(int n, bool training) {
  const std::vector<Step>& steps = training ? plan_.training_forward : plan_.inference_forward;
  const std::vector<LayerPass<T>>& passes = training ? training_forward_ : inference_forward_;
  for (std::size_t k = 0; k < steps.size(); ++k) run(steps[k], passes[k], n, training);
  last_forward_training_ = training;
}

template <typename T>
void Executor<T>::forward_layer(std::size_t layer, int n, bool training) {
  const std::vector<Step>& steps = training ? plan_.training_forward : plan_.inference_forward;
  const std::vector<LayerPass<T>>& passes = training ? training_forward_ : inference_forward_;
  for (std::size_t k = 0; k < steps.size(); ++k)
    if (steps[k].layer == layer) run(steps[k], passes[k], n, training);
  last_forward_training_ = training;
}

template <typename T>
void Executor<T>::loss(int n, bool with_gradient) {
  backend_->softmax_cross_entropy(
      n, plan_.layers.back().out_shape.c, output(static_cast<int>(plan_.layers.size()) - 1),
      labels(), with_gradient ? label_smoothing : 0.0f, with_gradient ? loss_divisor : 0,
      with_gradient ? buffer(plan_.dlogits) : nullptr, buffer(plan_.loss_sum),
      reinterpret_cast<std::int32_t*>(buffer(plan_.correct)));
}

template <typename T>
void Executor<T>::backward(int n) {
  for (std::size_t k = 0; k < plan_.backward.size(); ++k)
    run(plan_.backward[k], backward_[k], n, true);
  backend_->join_side_work();
}

template <typename T>
void Executor<T>::backward_layer(std::size_t layer, int n) {
  for (std::size_t k = 0; k < plan_.backward.size(); ++k)
    if (plan_.backward[k].layer == layer) run(plan_.backward[k], backward_[k], n, true);
}

template <typename T>
void Executor<T>::ensure_second_moment() {
  if (second_moment_.get() != nullptr) return;
  const std::size_t bytes = std::size_t(plan_.parameter_count) * sizeof(T);
  second_moment_ = BackendMemory<T>(*backend_, std::max<std::size_t>(bytes, sizeof(T)));
  backend_->fill_zero(second_moment_.get(), bytes);
}

template <typename T>
void Executor<T>::update(const OptimizerParams& params, const StepScalars& step) {
  if (step_scalars_.get() == nullptr)
    step_scalars_ = BackendMemory<T>(*backend_, sizeof(StepScalars));
  backend_->copy_to_backend(step_scalars_.get(), &step, sizeof(step));
  update(params, step_scalars_.template as<float>(), nullptr);
}

template <typename T>
void Executor<T>::update(const OptimizerParams& opt, const float* scalars,
                         const std::int32_t* index) {
  if (opt.uses_second_moment() && second_moment() == nullptr)
    throw Error(fmt::format("{} needs its second moment: call ensure_second_moment() first",
                            to_string(opt.kind)));
  T* second = opt.uses_second_moment() ? second_moment() : nullptr;
  if (opt.decay_norm_bias || opt.weight_decay == 0.0f) {
    backend_->optimizer_update(opt, scalars, index, std::size_t(plan_.parameter_count), params(),
                               grads(), velocity(), second);
    return;
  }
  // Tensors of rank <= 1 (biases, batch norm's scale and shift) without weight decay: one launch
  // per run of neighbouring tensors that agree.
  OptimizerParams undecayed = opt;
  undecayed.weight_decay = 0.0f;
  const std::vector<ParameterInfo>& tensors = plan_.parameters;
  for (std::size_t first = 0; first < tensors.size();) {
    const bool decayed = tensors[first].shape.size() > 1;
    std::size_t last = first + 1;
    while (last < tensors.size() && (tensors[last].shape.size() > 1) == decayed) ++last;
    const std::size_t at = std::size_t(tensors[first].offset);
    const std::size_t count = std::size_t(tensors[last - 1].offset + tensors[last - 1].count) - at;
    backend_->optimizer_update(decayed ? opt : undecayed, scalars, index, count, params() + at,
                               grads() + at, velocity() + at,
                               second != nullptr ? second + at : nullptr);
    first = last;
  }
}

template <typename T>
void Executor<T>::train_pass(int n, const OptimizerParams& params, const float* scalars,
                             const std::int32_t* index) {
  if (n > 0) {
    forward(n, true);
    loss(n, true);
    backward(n);
  } else {
    backend_->fill_zero(grads(), std::size_t(plan_.parameter_count) * sizeof(T));
  }
  if (reduce_gradients) reduce_gradients(grads(), std::size_t(plan_.parameter_count));
  update(params, scalars, index);
}

template <typename T>
void Executor<T>::reset_counters() {
  backend_->fill_zero(buffer(plan_.loss_sum), sizeof(T));
  backend_->fill_zero(buffer(plan_.correct), sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::set_counters(const BatchStats& stats) {
  const T loss_sum = static_cast<T>(stats.loss_sum);
  const auto correct = static_cast<std::int32_t>(stats.correct);
  backend_->copy_to_backend(buffer(plan_.loss_sum), &loss_sum, sizeof(T));
  backend_->copy_to_backend(buffer(plan_.correct), &correct, sizeof(std::int32_t));
}

template <typename T>
BatchStats Executor<T>::read_counters(std::int64_t samples) {
  T loss_sum{};
  std::int32_t correct = 0;
  backend_->copy_to_host(&loss_sum, buffer(plan_.loss_sum), sizeof(T));
  backend_->copy_to_host(&correct, buffer(plan_.correct), sizeof(std::int32_t));
  return BatchStats{double(loss_sum), correct, samples};
}

template <typename T>
bool Executor<T>::poll_counters(double* loss_sum, std::int64_t* correct) {
  // pinned_ holds [T loss | int32 correct] of the last completed asynchronous read.
  auto* bytes = pinned_.template as<unsigned char>();
  bool have = false;
  if (poll_started_ && backend_->async_copy_ready()) {
    T loss{};
    std::int32_t count = 0;
    std::memcpy(&loss, bytes, sizeof(T));
    std::memcpy(&count, bytes + sizeof(T), sizeof(std::int32_t));
    *loss_sum = double(loss);
    *correct = count;
    have = true;
    poll_started_ = false;
  }
  if (!poll_started_) {
    backend_->copy_to_host_async(bytes, buffer(plan_.loss_sum), sizeof(T));
    backend_->copy_to_host_async(bytes + sizeof(T), buffer(plan_.correct), sizeof(std::int32_t));
    poll_started_ = true;
  }
  return have;
}

template class Executor<float>;
template class Executor<double>;

std::unique_ptr<Executor<float>> make_executor(const Network& network,
                                               const CompileOptions& options) {
  if (options.conv_precision != ConvPrecision::fp32 && options.device != Device::cuda)
    throw ValueError(fmt::format(
        "convolution precision {}: runs on the CUDA device only (the CPU computes in fp32)",
        to_string(options.conv_precision)));
  std::unique_ptr<Backend<float>> backend =
      options.device == Device::cuda
          ? make_cuda_backend(options.gemm, options.conv_precision)
          : make_cpu_backend<float>(options.cpu_threads, options.device == Device::cpu);
  auto exec = std::make_unique<Executor<float>>(network, options.batch_size, std::move(backend),
                                                options.fuse_activations);
  exec->set_overlap(options.overlap_weight_gradients);
  exec->upload(exec->params(), initial_parameters<float>(exec->plan(), options.init, options.seed));
  return exec;
}

}  // namespace cnnrt
