#include "host/executor.hpp"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include "cnnrt/error.hpp"
#include "host/profiling.hpp"

namespace cnnrt {

namespace {

constexpr std::size_t kArenaAlignment = 256;  // keeps every region aligned for vector loads

std::size_t align_up(std::size_t bytes) {
  return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment;
}

// Byte layout of the arena, filled in order.
class ArenaPlanner {
 public:
  std::size_t take(std::size_t bytes) {
    const std::size_t offset = size_;
    size_ += align_up(bytes);
    return offset;
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

// A layer's geometry, planned at the full batch, for a call over n samples.
template <typename Geometry>
Geometry at_batch(Geometry g, int n) {
  g.n = n;
  return g;
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

// Dropout's Philox offset: distinct for every (step, layer) pair.
std::uint64_t dropout_offset(std::uint64_t step, std::size_t layer) {
  return (step << 8) | static_cast<std::uint64_t>(layer & 0xFF);
}

}  // namespace

std::vector<LayerPlan> plan_layers(const Network& network, int batch,
                                   std::vector<ParameterInfo>* parameters) {
  if (batch <= 0) throw Error(fmt::format("batch size must be positive, got {}", batch));
  const std::vector<SampleShape> shapes = network.infer_shapes();
  std::vector<LayerPlan> plans;
  std::int64_t offset = 0;
  auto add_parameter = [&](const std::string& name, std::vector<std::int64_t> shape) {
    ParameterInfo info;
    info.name = name;
    info.count = 1;
    for (auto d : shape) info.count *= d;
    info.shape = std::move(shape);
    info.offset = offset;
    offset += info.count;
    parameters->push_back(info);
    return info.offset;
  };
  SampleShape in = network.input();
  for (std::size_t i = 0; i < network.layers().size(); ++i) {
    LayerPlan plan;
    plan.spec = network.layers()[i];
    plan.forward_range = plan.spec.name + "/forward";
    plan.backward_range = plan.spec.name + "/backward";
    plan.in_shape = in;
    plan.out_shape = shapes[i];
    const LayerSpec& s = plan.spec;
    const char* name = s.name.c_str();
    switch (s.kind) {
      case LayerKind::conv2d:
        plan.conv = make_conv2d_geometry(name, batch, in.c, in.h, in.w, s.filters, s.kernel_h,
                                         s.kernel_w, s.stride_h, s.stride_w, s.padding);
        plan.weight_offset =
            add_parameter(s.name + ".weight", {s.filters, in.c, s.kernel_h, s.kernel_w});
        plan.bias_offset = add_parameter(s.name + ".bias", {s.filters});
        break;
      case LayerKind::max_pool:
      case LayerKind::avg_pool:
        plan.pool = make_pool2d_geometry(name, batch, in.c, in.h, in.w, s.kernel_h, s.kernel_w,
                                         s.stride_h, s.stride_w);
        break;
      case LayerKind::dense:
        plan.dense = DenseGeometry{batch, static_cast<int>(in.size()), s.units};
        plan.weight_offset = add_parameter(s.name + ".weight", {s.units, in.size()});
        plan.bias_offset = add_parameter(s.name + ".bias", {s.units});
        break;
      case LayerKind::activation:
      case LayerKind::dropout:
        break;
    }
    plans.push_back(plan);
    in = shapes[i];
  }
  return plans;
}

std::vector<double> initial_parameters(const std::vector<LayerPlan>& plans,
                                       const std::vector<ParameterInfo>& parameters,
                                       InitScheme scheme, std::uint64_t seed) {
  std::int64_t total = 0;
  for (const auto& p : parameters) total += p.count;
  std::vector<double> values(static_cast<std::size_t>(total), 0.0);
  std::mt19937_64 rng(seed);
  for (const LayerPlan& plan : plans) {
    if (plan.weight_offset < 0) continue;
    const LayerSpec& s = plan.spec;
    double fan_in = 0, fan_out = 0;
    std::int64_t count = 0;
    if (s.kind == LayerKind::conv2d) {
      const double window = double(s.kernel_h) * s.kernel_w;
      fan_in = plan.in_shape.c * window;
      fan_out = s.filters * window;
      count = std::int64_t(s.filters) * plan.in_shape.c * s.kernel_h * s.kernel_w;
    } else {
      fan_in = double(plan.in_shape.size());
      fan_out = s.units;
      count = std::int64_t(s.units) * plan.in_shape.size();
    }
    double variance = 0;
    bool uniform = true;
    switch (scheme) {
      case InitScheme::he_uniform:
      case InitScheme::he_normal:
        variance = 2.0 / fan_in;
        uniform = scheme == InitScheme::he_uniform;
        break;
      case InitScheme::xavier_uniform:
      case InitScheme::xavier_normal:
        variance = 2.0 / (fan_in + fan_out);
        uniform = scheme == InitScheme::xavier_uniform;
        break;
      case InitScheme::lecun_uniform:
      case InitScheme::lecun_normal:
        variance = 1.0 / fan_in;
        uniform = scheme == InitScheme::lecun_uniform;
        break;
    }
    double* w = values.data() + plan.weight_offset;
    if (uniform) {
      const double bound = std::sqrt(3.0 * variance);  // U(-b, b) has variance b^2 / 3
      std::uniform_real_distribution<double> dist(-bound, bound);
      for (std::int64_t i = 0; i < count; ++i) w[i] = dist(rng);
    } else {
      std::normal_distribution<double> dist(0.0, std::sqrt(variance));
      for (std::int64_t i = 0; i < count; ++i) w[i] = dist(rng);
    }
  }
  return values;
}

template <typename T>
Executor<T>::Executor(const Network& network, int batch, std::unique_ptr<Backend<T>> backend)
    : backend_(std::move(backend)), batch_(batch) {
  plans_ = plan_layers(network, batch, &parameters_);
  for (const auto& p : parameters_) parameter_count_ += p.count;

  ArenaPlanner arena;
  const std::size_t param_bytes = std::size_t(parameter_count_) * sizeof(T);
  const std::size_t params_at = arena.take(param_bytes);
  const std::size_t grads_at = arena.take(param_bytes);
  const std::size_t velocity_at = arena.take(param_bytes);
  const std::size_t input_at =
      arena.take(std::size_t(batch) * std::size_t(network.input().size()) * sizeof(T));
  const std::size_t labels_at = arena.take(std::size_t(batch) * sizeof(std::int32_t));
  const std::size_t loss_at = arena.take(sizeof(T));
  const std::size_t correct_at = arena.take(sizeof(std::int32_t));
  const std::size_t batch_step_at = arena.take(sizeof(std::int32_t));
  for (LayerPlan& plan : plans_) {
    const std::size_t out_bytes =
        std::size_t(batch) * std::size_t(plan.out_shape.size()) * sizeof(T);
    plan.out_offset = arena.take(out_bytes);
    plan.grad_offset = arena.take(out_bytes);
    const std::size_t elements = std::size_t(batch) * std::size_t(plan.out_shape.size());
    if (plan.spec.kind == LayerKind::max_pool)
      plan.argmax_offset = arena.take(elements * sizeof(std::int32_t));
    if (plan.spec.kind == LayerKind::dropout)
      plan.mask_offset = arena.take(elements * sizeof(std::uint8_t));
    if (plan.spec.kind == LayerKind::conv2d && &plan != &plans_.front())
      workspace_bytes_ = std::max(workspace_bytes_, backend_->conv_workspace_bytes(plan.conv));
  }
  const std::size_t workspace_at = arena.take(workspace_bytes_);
  // The first layer's weight gradient runs on the main stream while the layers above may still be
  // using theirs beside it (backward_layer): a scratch region of its own.
  const std::size_t first_workspace_bytes =
      plans_.front().spec.kind == LayerKind::conv2d
          ? backend_->conv_workspace_bytes(plans_.front().conv)
          : 0;
  const std::size_t first_workspace_at = arena.take(first_workspace_bytes);
  arena_bytes_ = arena.size();

  try {
    arena_ = backend_->allocate(arena_bytes_);
  } catch (const Error& e) {
    throw Error(fmt::format("{} at batch {}: {}; a smaller batch needs less", network.name(), batch,
                            e.what()));
  }
  backend_->fill_zero(arena_, arena_bytes_);
  pinned_ = backend_->allocate_pinned_host(sizeof(double) * 2);
  params_ = at(params_at);
  grads_ = at(grads_at);
  velocity_ = at(velocity_at);
  input_ = at(input_at);
  labels_ = reinterpret_cast<std::int32_t*>(at(labels_at));
  loss_sum_ = at(loss_at);
  correct_ = reinterpret_cast<std::int32_t*>(at(correct_at));
  batch_step_ = reinterpret_cast<std::int32_t*>(at(batch_step_at));
  workspace_ = workspace_bytes_ > 0 ? static_cast<void*>(at(workspace_at)) : nullptr;
  first_workspace_ =
      first_workspace_bytes > 0 ? static_cast<void*>(at(first_workspace_at)) : nullptr;
  outputs_.assign(plans_.size(), nullptr);
  set_fusion(true);
}

template <typename T>
void Executor<T>::set_fusion(bool on) {
  for (std::size_t i = 0; i < plans_.size(); ++i) {
    LayerPlan& plan = plans_[i];
    plan.forward_fused = plan.backward_fused = false;
    if (!on || plan.spec.kind != LayerKind::activation || i == 0) continue;
    const LayerKind before = plans_[i - 1].spec.kind;
    plan.forward_fused = before == LayerKind::conv2d || before == LayerKind::dense;
    if (i + 1 < plans_.size()) {
      const LayerKind after = plans_[i + 1].spec.kind;
      plan.backward_fused =
          after == LayerKind::max_pool || after == LayerKind::avg_pool || after == LayerKind::dense;
    }
  }
}

template <typename T>
Executor<T>::~Executor() {
  backend_->release_pinned_host(pinned_);
  backend_->release(arena_);
}

template <typename T>
const T* Executor<T>::output(int layer) const {
  return outputs_.at(static_cast<std::size_t>(layer));
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
  if (n <= 0 || n > batch_)
    throw Error(
        fmt::format("batch of {} samples does not fit the compiled batch size {}", n, batch_));
  const int classes = plans_.back().out_shape.c;
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      throw Error(fmt::format("label {} of sample {} is outside [0, {})", labels[i], i, classes));
  const std::size_t sample = std::size_t(plans_.front().in_shape.size());
  backend_->copy_to_backend(input_, images, std::size_t(n) * sample * sizeof(T));
  backend_->copy_to_backend(labels_, labels, std::size_t(n) * sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::gather(const NormalizeParams& norm, const std::uint8_t* images,
                         const std::uint8_t* labels, const std::int32_t* indices, int pixels,
                         int n) {
  backend_->gather_batch(norm, n, pixels, images, labels, indices, input_, labels_);
}

template <typename T>
void Executor<T>::gather_at_batch_step(const NormalizeParams& norm, const std::uint8_t* images,
                                       const std::uint8_t* labels, const std::int32_t* order,
                                       int pixels, int n) {
  backend_->gather_batch_at_step(norm, n, pixels, images, labels, order, batch_step_, input_,
                                 labels_);
}

template <typename T>
void Executor<T>::reset_batch_step() {
  backend_->fill_zero(batch_step_, sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::set_batch_step(int step) {
  const std::int32_t value = step;
  backend_->copy_to_backend(batch_step_, &value, sizeof(value));
}

template <typename T>
void Executor<T>::advance_batch_step() {
  backend_->advance_counter(batch_step_);
}

template <typename T>
void Executor<T>::forward(int n, bool training) {
  for (std::size_t i = 0; i < plans_.size(); ++i) forward_layer(i, n, training);
}

template <typename T>
void Executor<T>::forward_layer(std::size_t i, int n, bool training) {
  Backend<T>& b = *backend_;
  const T* in = i == 0 ? input_ : outputs_[i - 1];
  const LayerPlan& plan = plans_[i];
  if (plan.forward_fused) return;  // run by layer i - 1, which set outputs_[i]
  ScopedRange range(plan.forward_range);
  const LayerSpec& s = plan.spec;
  T* out = at(plan.out_offset);
  const std::size_t count = std::size_t(n) * std::size_t(plan.out_shape.size());
  // The activation behind this layer, when it runs here.
  FusedActivation<T> fused;
  if (i + 1 < plans_.size() && plans_[i + 1].forward_fused) {
    const LayerPlan& next = plans_[i + 1];
    fused = FusedActivation<T>{next.spec.activation, T(next.spec.leaky_slope), at(next.out_offset)};
    outputs_[i + 1] = fused.activated;
  }
  switch (s.kind) {
    case LayerKind::conv2d: {
      const Conv2dGeometry g = at_batch(plan.conv, n);
      b.conv2d_forward(g, in, params_ + plan.weight_offset, params_ + plan.bias_offset, out, fused);
      break;
    }
    case LayerKind::activation:
      b.activation_forward(s.activation, T(s.leaky_slope), count, in, out);
      break;
    case LayerKind::max_pool: {
      const Pool2dGeometry g = at_batch(plan.pool, n);
      b.max_pool_forward(g, in, out, reinterpret_cast<std::int32_t*>(at(plan.argmax_offset)));
      break;
    }
    case LayerKind::avg_pool: {
      const Pool2dGeometry g = at_batch(plan.pool, n);
      b.avg_pool_forward(g, in, out);
      break;
    }
    case LayerKind::dense: {
      const DenseGeometry g = at_batch(plan.dense, n);
      b.dense_forward(g, in, params_ + plan.weight_offset, params_ + plan.bias_offset, out, fused);
      break;
    }
    case LayerKind::dropout:
      if (!training) {
        out = const_cast<T*>(in);  // evaluation: the identity, no copy
        break;
      }
      b.dropout_forward(DropoutParams{s.dropout_p, 0, dropout_offset(step_counter, i)}, count, in,
                        out, reinterpret_cast<std::uint8_t*>(at(plan.mask_offset)));
      break;
  }
  outputs_[i] = out;
}

template <typename T>
void Executor<T>::loss(int n, bool with_gradient) {
  const LayerPlan& last = plans_.back();
  backend_->softmax_cross_entropy(n, last.out_shape.c, outputs_.back(), labels_,
                                  with_gradient ? at(last.grad_offset) : nullptr, loss_sum_,
                                  correct_);
}

template <typename T>
void Executor<T>::backward(int n) {
  for (std::size_t layer = plans_.size(); layer-- > 0;) backward_layer(layer, n);
  backend_->join_side_work();
}

template <typename T>
void Executor<T>::backward_layer(std::size_t layer, int n) {
  Backend<T>& b = *backend_;
  const LayerPlan& plan = plans_[layer];
  if (plan.backward_fused) return;  // run by layer + 1
  ScopedRange range(plan.backward_range);
  const LayerSpec& s = plan.spec;
  const T* in = layer == 0 ? input_ : outputs_[layer - 1];
  const T* dout = at(plan.grad_offset);
  T* din = layer == 0 ? nullptr : at(plans_[layer - 1].grad_offset);
  const std::size_t count = std::size_t(n) * std::size_t(plan.out_shape.size());
  // The activation in front of this layer, when its backward runs here: din then skips the
  // activation's output gradient and becomes the gradient at its input.
  FusedActivationGrad<T> fused;
  if (layer >= 2 && plans_[layer - 1].backward_fused) {
    const LayerPlan& activation = plans_[layer - 1];
    fused = FusedActivationGrad<T>{activation.spec.activation, T(activation.spec.leaky_slope),
                                   outputs_[layer - 2], outputs_[layer - 1]};
    din = at(plans_[layer - 2].grad_offset);
  }
  switch (s.kind) {
    case LayerKind::conv2d: {
      const Conv2dGeometry g = at_batch(plan.conv, n);
      // The weight gradient reads only this layer's input and output gradient, which nothing
      // later in the pass writes: it may run beside the data gradient and the layers below. The
      // first layer has nothing below it: its weight gradient takes the main stream (and its own
      // scratch), beside the weight gradients of the layers above.
      {
        SideWork<T> side(b, overlap_ && din != nullptr);
        b.conv2d_backward_weights(g, in, dout, grads_ + plan.weight_offset,
                                  grads_ + plan.bias_offset, din ? workspace_ : first_workspace_);
      }
      if (din) b.conv2d_backward_data(g, dout, params_ + plan.weight_offset, din);
      break;
    }
    case LayerKind::dense: {
      const DenseGeometry g = at_batch(plan.dense, n);
      {
        SideWork<T> side(b, overlap_ && din != nullptr);  // as for the convolution
        b.dense_backward_weights(g, in, dout, grads_ + plan.weight_offset,
                                 grads_ + plan.bias_offset);
      }
      if (din) b.dense_backward_data(g, dout, params_ + plan.weight_offset, din, fused);
      break;
    }
    case LayerKind::activation:
      if (din)
        b.activation_backward(s.activation, T(s.leaky_slope), count, in, outputs_[layer], dout,
                              din);
      break;
    case LayerKind::max_pool: {
      const Pool2dGeometry g = at_batch(plan.pool, n);
      if (din)
        b.max_pool_backward(g, dout, reinterpret_cast<const std::int32_t*>(at(plan.argmax_offset)),
                            din, fused);
      break;
    }
    case LayerKind::avg_pool: {
      const Pool2dGeometry g = at_batch(plan.pool, n);
      if (din) b.avg_pool_backward(g, dout, din, fused);
      break;
    }
    case LayerKind::dropout:
      if (din)
        b.dropout_backward(DropoutParams{s.dropout_p, 0, dropout_offset(step_counter, layer)},
                           count, dout, reinterpret_cast<const std::uint8_t*>(at(plan.mask_offset)),
                           din);
      break;
  }
}

template <typename T>
void Executor<T>::update(const SgdParams& sgd) {
  backend_->sgd_update(sgd, std::size_t(parameter_count_), params_, grads_, velocity_);
}

template <typename T>
void Executor<T>::train_pass(int n, const SgdParams& sgd) {
  forward(n, true);
  loss(n, true);
  backward(n);
  update(sgd);
}

template <typename T>
void Executor<T>::reset_counters() {
  backend_->fill_zero(loss_sum_, sizeof(T));
  backend_->fill_zero(correct_, sizeof(std::int32_t));
}

template <typename T>
void Executor<T>::set_counters(const BatchStats& stats) {
  const T loss_sum = static_cast<T>(stats.loss_sum);
  const auto correct = static_cast<std::int32_t>(stats.correct);
  backend_->copy_to_backend(loss_sum_, &loss_sum, sizeof(T));
  backend_->copy_to_backend(correct_, &correct, sizeof(std::int32_t));
}

template <typename T>
BatchStats Executor<T>::read_counters(std::int64_t samples) {
  T loss_sum{};
  std::int32_t correct = 0;
  backend_->copy_to_host(&loss_sum, loss_sum_, sizeof(T));
  backend_->copy_to_host(&correct, correct_, sizeof(std::int32_t));
  return BatchStats{double(loss_sum), correct, samples};
}

template <typename T>
bool Executor<T>::poll_counters(double* loss_sum, std::int64_t* correct) {
  // pinned_ holds [T loss | int32 correct] of the last completed asynchronous read.
  auto* bytes = static_cast<unsigned char*>(pinned_);
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
    backend_->copy_to_host_async(bytes, loss_sum_, sizeof(T));
    backend_->copy_to_host_async(bytes + sizeof(T), correct_, sizeof(std::int32_t));
    poll_started_ = true;
  }
  return have;
}

template class Executor<float>;
template class Executor<double>;

}  // namespace cnnrt
