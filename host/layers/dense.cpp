// dense (docs/math.md section 4): Z = b + A W over the flattened input; weight [units, in] and
// bias [units], PyTorch's layout. The last layer of every network, giving one logit per class.
#include "kernels/cpu/dense.hpp"

#include <fmt/format.h>

#include <type_traits>

#include "cnnrt/error.hpp"
#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cpu/dense_fast.hpp"
#include "kernels/cuda/dense.cuh"

namespace cnnrt {

namespace {

class DenseUnit final : public LayerUnitOf<DenseUnit> {
 public:
  DenseUnit(const LayerSpec& spec, const LayerFields& f)
      : LayerUnitOf(spec.name), units_(f.integer("units")) {}

  SampleShape output_shape(const SampleShape&) const override {
    if (units_ <= 0)
      throw Error(fmt::format("{}: needs a positive number of units, got {}", name(), units_));
    return SampleShape{units_, 1, 1};
  }
  std::vector<ParameterSpec> parameters(const SampleShape& in) const override {
    return {ParameterSpec{"weight", {units_, in.size()}, true, double(in.size()), double(units_)},
            ParameterSpec{"bias", {units_}, false, 0, 0}};
  }
  std::int64_t flops(const SampleShape& in, const SampleShape&) const override {
    return 2 * in.size() * units_ + units_;
  }
  std::string describe() const override { return "dense"; }
  void write_fields(nlohmann::json& l) const override { l["units"] = units_; }
  bool runs_activation_after() const override { return true; }
  bool runs_activation_grad_before() const override { return true; }
  bool produces_logits() const override { return true; }
  bool takes_batch_norm_fold() const override { return true; }
  // Gemm over the flattened input: Z = A W^T + b with W [units, in].
  bool export_onnx(OnnxGraph& graph, const SampleShape&) const override {
    graph.node("Gemm", {graph.input(2), graph.tensor("weight"), graph.tensor("bias")},
               {OnnxAttribute::integer("transB", 1)}, 2);
    return true;
  }

  // in: [n, in], weight [out, in], bias [out] -> out: [n, out]
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const DenseGeometry g = geometry(p);
    // Plain pointers, not a structured binding: C++17 lambdas cannot capture those.
    const std::pair<const T*, const T*> folded =
        weight_and_bias(p, g.out_features, std::size_t(g.in_features));
    const T *weight = folded.first, *bias = folded.second;
    if constexpr (std::is_same_v<T, float>)
      if (cpu.fast() && split_columns(g, g.out_features)) {
        cpu.for_batch_slices(g.out_features, [&](int first, int count) {
          cpu::fast::dense_forward(g, first, count, p.in, weight, bias, p.out, p.fused);
        });
        return;
      }
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t o = std::size_t(first) * g.out_features;
      const DenseGeometry mine{count, g.in_features, g.out_features};
      const T* in = p.in + std::size_t(first) * g.in_features;
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::dense_forward(mine, 0, g.out_features, in, weight, bias, p.out + o,
                                          offset_by(p.fused, o));
      cpu::dense_forward(mine, in, weight, bias, p.out + o, offset_by(p.fused, o));
    });
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::dense_forward(geometry(p), p.in, p.params[0], p.params[1], p.out, p.fused, cuda.gemm,
                        cuda.cublas, cuda.stream);
  }
  // in: [n, in], dout: [n, out] -> dweight [out, in], dbias [out]
  template <typename T>
  void backward_weights_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const DenseGeometry g = geometry(p);
    if constexpr (std::is_same_v<T, float>)
      if (cpu.fast()) {
        // Each thread owns a block of output units: whole rows of the gradient, no partials.
        cpu.for_batch_slices(g.out_features, [&](int first, int count) {
          cpu::fast::dense_backward_weights(g, first, count, p.in, p.dout, p.grads[0], p.grads[1]);
        });
        return;
      }
    cpu::dense_backward_weights(g, p.in, p.dout, p.grads[0], p.grads[1]);
  }
  void backward_weights_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::dense_backward_weights(geometry(p), p.in, p.dout, p.grads[0], p.grads[1], cuda.gemm,
                                 cuda.cublas, cuda.stream);
  }
  // dout: [n, out], weight [out, in] -> din: [n, in], through the fused activation's gradient
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const DenseGeometry g = geometry(p);
    if constexpr (std::is_same_v<T, float>)
      if (cpu.fast() && split_columns(g, g.in_features)) {
        cpu.for_batch_slices(g.in_features, [&](int first, int count) {
          cpu::fast::dense_backward_data(g, first, count, p.dout, p.params[0], p.din, p.fused_grad);
        });
        return;
      }
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t i = std::size_t(first) * g.in_features;
      const DenseGeometry mine{count, g.in_features, g.out_features};
      const T* dout = p.dout + std::size_t(first) * g.out_features;
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::dense_backward_data(mine, 0, g.in_features, dout, p.params[0],
                                                p.din + i, offset_by(p.fused_grad, i));
      cpu::dense_backward_data(mine, dout, p.params[0], p.din + i, offset_by(p.fused_grad, i));
    });
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::dense_backward_data(geometry(p), p.dout, p.params[0], p.din, p.fused_grad, cuda.gemm,
                              cuda.cublas, cuda.stream);
  }

 private:
  // Split across threads by the result's columns (`columns` of them) rather than by the batch:
  // under a batch split every thread reads the whole weight matrix, which for a large one (more
  // than fits a core's cache) is the time, while a column split reads it once and the batch's
  // rows once per thread.
  static bool split_columns(const DenseGeometry& g, int columns) {
    constexpr std::size_t kLargeWeightFloats = std::size_t(1) << 20;
    return std::size_t(g.in_features) * std::size_t(g.out_features) >= kLargeWeightFloats &&
           columns > g.n;
  }
  template <typename T>
  DenseGeometry geometry(const LayerPass<T>& p) const {
    return DenseGeometry{p.n, static_cast<int>(p.in_shape.size()), units_};
  }

  int units_;
};

}  // namespace

std::shared_ptr<const LayerUnit> make_dense_unit(const LayerSpec& spec, const std::string& where) {
  return std::make_shared<DenseUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
