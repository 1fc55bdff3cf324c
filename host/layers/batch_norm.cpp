// batch_norm (docs/math.md section 11): each channel normalised over the batch and the plane (per
// feature after a dense layer, whose output is [units, 1, 1]), then scaled by weight and shifted
// by bias. Training normalises with the batch's statistics and folds them into running_mean and
// running_var (PyTorch's momentum rule, the unbiased variance); evaluation uses the running ones.
// num_batches_tracked, PyTorch's int64 counter, is kept as a float state tensor of shape []: exact
// up to 2^24 batches, and cnnrt reads it nowhere.
#include "kernels/cpu/batch_norm.hpp"

#include <fmt/format.h>

#include <limits>
#include <type_traits>

#include "cnnrt/error.hpp"
#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cpu/batch_norm_fast.hpp"
#include "kernels/cuda/batch_norm.cuh"

namespace cnnrt {

namespace {

class BatchNormUnit final : public LayerUnitOf<BatchNormUnit> {
 public:
  BatchNormUnit(const LayerSpec& spec, const LayerFields& f)
      : LayerUnitOf(spec.name), momentum_(f.number("momentum", 0.1f, 0.0, 1.0)) {
    // eps has no upper bound; a number <= 0 gets its own message rather than a range up to
    // FLT_MAX. LayerFields has parsed every field already, so the text is valid JSON.
    const std::string text = spec.field("eps");
    if (!text.empty()) {
      const nlohmann::json value = nlohmann::json::parse(text);
      if (value.is_number() && !(value.get<double>() > 0.0))
        throw ValueError(fmt::format("{}: 'eps' must be greater than 0, got {}", f.where(), text));
    }
    eps_ = f.number("eps", 1e-5f, 0.0, std::numeric_limits<float>::max());
    if (!(eps_ > 0.0f))  // positive, but too small for a float
      throw ValueError(
          fmt::format("{}: 'eps' must be greater than 0, got {} (0 as a float)", f.where(), text));
  }

  SampleShape output_shape(const SampleShape& in) const override { return in; }
  std::vector<ParameterSpec> parameters(const SampleShape& in) const override {
    ParameterSpec weight{"weight", {in.c}, false, 0, 0};
    weight.initial = 1.0;
    return {weight, ParameterSpec{"bias", {in.c}, false, 0, 0}};
  }
  std::vector<StateSpec> state(const SampleShape& in) const override {
    StateSpec running_var{"running_var", {in.c}, 1.0};
    running_var.non_negative = true;
    return {StateSpec{"running_mean", {in.c}, 0.0}, running_var,
            StateSpec{"num_batches_tracked", {}, 0.0}};
  }
  std::vector<ScratchSpec> scratch(const ScratchQuery& q) const override {
    // The training forward's per-channel statistics, for the backward pass.
    const std::size_t bytes = std::size_t(q.in.c) * q.scalar_bytes;
    return {ScratchSpec{"mean", bytes}, ScratchSpec{"inv_std", bytes}};
  }
  std::int64_t flops(const SampleShape& in, const SampleShape&) const override {
    return 2 * in.size();  // inference: one multiply and one add per value
  }
  std::string describe() const override {  // PyTorch's defaults go unsaid
    if (momentum_ == 0.1f && eps_ == 1e-5f) return "batch norm";
    return fmt::format("batch norm m={} eps={}", momentum_, eps_);
  }
  void write_fields(nlohmann::json& l) const override {
    l["momentum"] = nlohmann::json::parse(field_text(momentum_));
    l["eps"] = nlohmann::json::parse(field_text(eps_));
  }
  bool runs_activation_after() const override { return true; }
  bool runs_activation_grad_before() const override { return true; }
  std::optional<double> batch_norm_eps() const override { return eps_; }
  // Inference mode: the running statistics; channels are axis 1 of [N, C, H, W] and [N, units].
  bool export_onnx(OnnxGraph& graph, const SampleShape&) const override {
    graph.node("BatchNormalization",
               {graph.input(OnnxGraph::kAnyRank), graph.tensor("weight"), graph.tensor("bias"),
                graph.tensor("running_mean"), graph.tensor("running_var")},
               {OnnxAttribute::number("epsilon", eps_)}, OnnxGraph::kAnyRank);
    return true;
  }

  // in: [n, c, h, w], weight, bias, running stats: [c] -> out: [n, c, h, w] (and the fused
  // activation's output); training also writes mean, inv_std and the running statistics.
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const BatchNormGeometry g = geometry(p);
    cpu.for_batch_slices(g.c, [&](int first, int count) {
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast()) {
          if (p.training)
            return cpu::fast::batch_norm_forward_training(
                g, first, first + count, params(), p.in, p.params[0], p.params[1], p.out, p.fused,
                scratch<T>(p, 0), scratch<T>(p, 1), p.state[0], p.state[1], p.state[2]);
          return cpu::fast::batch_norm_forward_inference(g, first, first + count, params(), p.in,
                                                         p.params[0], p.params[1], p.state[0],
                                                         p.state[1], p.out, p.fused);
        }
      if (p.training)
        cpu::batch_norm_forward_training(g, first, first + count, params(), p.in, p.params[0],
                                         p.params[1], p.out, p.fused, scratch<T>(p, 0),
                                         scratch<T>(p, 1), p.state[0], p.state[1], p.state[2]);
      else
        cpu::batch_norm_forward_inference(g, first, first + count, params(), p.in, p.params[0],
                                          p.params[1], p.state[0], p.state[1], p.out, p.fused);
    });
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    const BatchNormGeometry g = geometry(p);
    if (p.training)
      cuda::batch_norm_forward_training(g, params(), p.in, p.params[0], p.params[1], p.out, p.fused,
                                        scratch<float>(p, 0), scratch<float>(p, 1), p.state[0],
                                        p.state[1], p.state[2], cuda.stream);
    else
      cuda::batch_norm_forward_inference(g, params(), p.in, p.params[0], p.params[1], p.state[0],
                                         p.state[1], p.out, p.fused, cuda.stream);
  }

  // in, dout: [n, c, h, w], mean, inv_std: [c] -> dweight, dbias: [c]
  template <typename T>
  void backward_weights_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const BatchNormGeometry g = geometry(p);
    cpu.for_batch_slices(g.c, [&](int first, int count) {
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::batch_norm_backward_weights(g, first, first + count, p.in, p.dout,
                                                        scratch<T>(p, 0), scratch<T>(p, 1),
                                                        p.grads[0], p.grads[1]);
      cpu::batch_norm_backward_weights(g, first, first + count, p.in, p.dout, scratch<T>(p, 0),
                                       scratch<T>(p, 1), p.grads[0], p.grads[1]);
    });
  }
  void backward_weights_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::batch_norm_backward_weights(geometry(p), p.in, p.dout, scratch<float>(p, 0),
                                      scratch<float>(p, 1), p.grads[0], p.grads[1], cuda.stream);
  }
  // in, dout: [n, c, h, w], weight, mean, inv_std: [c] -> din: [n, c, h, w], through the fused
  // activation's gradient
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const BatchNormGeometry g = geometry(p);
    cpu.for_batch_slices(g.c, [&](int first, int count) {
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::batch_norm_backward_data(g, first, first + count, p.in, p.dout,
                                                     p.params[0], scratch<T>(p, 0),
                                                     scratch<T>(p, 1), p.din, p.fused_grad);
      cpu::batch_norm_backward_data(g, first, first + count, p.in, p.dout, p.params[0],
                                    scratch<T>(p, 0), scratch<T>(p, 1), p.din, p.fused_grad);
    });
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::batch_norm_backward_data(geometry(p), p.in, p.dout, p.params[0], scratch<float>(p, 0),
                                   scratch<float>(p, 1), p.din, p.fused_grad, cuda.stream);
  }

 private:
  template <typename T>
  BatchNormGeometry geometry(const LayerPass<T>& p) const {
    const BatchNormGeometry g{p.n, p.in_shape.c, p.in_shape.h * p.in_shape.w};
    // One value per channel has no variance to normalise by (PyTorch refuses it as well).
    if (p.training && g.per_channel() < 2)
      throw Error(fmt::format(
          "{}: batch norm in training needs more than one value per channel, got {} (a batch of "
          "{} over [{}]); train with a batch of at least 2",
          name(), g.per_channel(), p.n, p.in_shape.to_string()));
    return g;
  }
  BatchNormParams params() const { return BatchNormParams{momentum_, eps_}; }
  template <typename T>
  static T* scratch(const LayerPass<T>& p, std::size_t k) {
    return static_cast<T*>(p.scratch[k]);
  }

  float momentum_, eps_ = 1e-5f;
};

}  // namespace

std::shared_ptr<const LayerUnit> make_batch_norm_unit(const LayerSpec& spec,
                                                      const std::string& where) {
  return std::make_shared<BatchNormUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
