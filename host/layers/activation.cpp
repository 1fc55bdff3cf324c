// relu, leaky_relu and sigmoid (docs/math.md section 2). Element-wise; the neighbours run them
// inside their own kernels where they can (host/executor.cpp decides when it builds the plan).
#include "kernels/cpu/activation.hpp"

#include <fmt/format.h>

#include <type_traits>

#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cpu/activation_fast.hpp"
#include "kernels/cuda/activation.cuh"

namespace cnnrt {

namespace {

class ActivationUnit final : public LayerUnitOf<ActivationUnit> {
 public:
  ActivationUnit(const LayerSpec& spec, const LayerFields& f) : LayerUnitOf(spec.name) {
    if (spec.type == "relu") {
      fn_.kind = Activation::relu;
    } else if (spec.type == "sigmoid") {
      fn_.kind = Activation::sigmoid;
    } else {
      fn_.kind = Activation::leaky_relu;
      // Any sensible slope lies well inside this range; the bound keeps the float finite.
      fn_.slope = f.number("slope", 0.1f, -100, 100);
    }
  }

  SampleShape output_shape(const SampleShape& in) const override { return in; }
  std::int64_t flops(const SampleShape&, const SampleShape& out) const override {
    return out.size() * (fn_.kind == Activation::sigmoid ? 4 : 1);
  }
  std::string describe() const override { return to_string(fn_.kind); }
  void write_fields(nlohmann::json& l) const override {
    if (fn_.kind == Activation::leaky_relu) l["slope"] = fn_.slope;
  }
  std::optional<ActivationFn> activation() const override { return fn_; }
  bool export_onnx(OnnxGraph& graph, const SampleShape&) const override {
    const std::string x = graph.input(OnnxGraph::kAnyRank);
    if (fn_.kind == Activation::relu)
      graph.node("Relu", {x}, {}, OnnxGraph::kAnyRank);
    else if (fn_.kind == Activation::sigmoid)
      graph.node("Sigmoid", {x}, {}, OnnxGraph::kAnyRank);
    else
      graph.node("LeakyRelu", {x}, {OnnxAttribute::number("alpha", fn_.slope)},
                 OnnxGraph::kAnyRank);
    return true;
  }

  // z: [count] -> a: [count], a slice of the batch per thread (element-wise: the same bits for
  // any split)
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const std::size_t sample = std::size_t(p.out_shape.size());
    cpu.for_batch_slices(p.n, [&](int first, int count) {
      const std::size_t at = std::size_t(first) * sample;
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())  // the rule the fast path's fused activations follow
          return cpu::fast::activation_forward(fn_.kind, fn_.slope, std::size_t(count) * sample,
                                               p.in + at, p.out + at);
      cpu::activation_forward(fn_.kind, T(fn_.slope), std::size_t(count) * sample, p.in + at,
                              p.out + at);
    });
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::activation_forward(fn_.kind, fn_.slope, p.out_count(), p.in, p.out, cuda.stream);
  }
  // z, a, da: [count] -> dz: [count]
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const std::size_t sample = std::size_t(p.out_shape.size());
    cpu.for_batch_slices(p.n, [&](int first, int count) {
      const std::size_t at = std::size_t(first) * sample;
      cpu::activation_backward(fn_.kind, T(fn_.slope), std::size_t(count) * sample, p.in + at,
                               p.out + at, p.dout + at, p.din + at);
    });
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::activation_backward(fn_.kind, fn_.slope, p.out_count(), p.in, p.out, p.dout, p.din,
                              cuda.stream);
  }

 private:
  ActivationFn fn_;
};

}  // namespace

std::shared_ptr<const LayerUnit> make_activation_unit(const LayerSpec& spec,
                                                      const std::string& where) {
  return std::make_shared<ActivationUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
