// max_pool and avg_pool (docs/math.md section 5): windows of window_h x window_w moved by the
// stride, no padding. Max pooling keeps the index of the first maximum for its backward pass.
// global_avg_pool (section 12): the mean of each channel's plane, [c, h, w] -> [c, 1, 1], run as
// average pooling with one window the size of the plane.
#include "kernels/cpu/pool.hpp"

#include <fmt/format.h>

#include <type_traits>

#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cpu/pool_fast.hpp"
#include "kernels/cuda/pool.cuh"

namespace cnnrt {

namespace {

class PoolUnit final : public LayerUnitOf<PoolUnit> {
 public:
  PoolUnit(const LayerSpec& spec, const LayerFields& f)
      : LayerUnitOf(spec.name), max_(spec.type == "max_pool") {
    std::tie(wh_, ww_) = f.int_pair("window", 2);
    std::tie(sh_, sw_) = f.int_pair("stride", wh_);
  }

  SampleShape output_shape(const SampleShape& in) const override {
    const Pool2dGeometry g = geometry(in, 1);
    return SampleShape{in.c, g.out_h, g.out_w};
  }
  std::vector<ScratchSpec> scratch(const ScratchQuery& q) const override {
    if (!max_) return {};
    return {ScratchSpec{"argmax",
                        std::size_t(q.batch) * std::size_t(q.out.size()) * sizeof(std::int32_t)}};
  }
  std::int64_t flops(const SampleShape&, const SampleShape& out) const override {
    return out.size() * wh_ * ww_;
  }
  std::string describe() const override {
    return fmt::format("{} {}x{} /{}", max_ ? "max pool" : "avg pool", wh_, ww_, sh_);
  }
  void write_fields(nlohmann::json& l) const override {
    l["window"] = {wh_, ww_};
    l["stride"] = {sh_, sw_};
  }
  bool runs_activation_grad_before() const override { return true; }
  bool export_onnx(OnnxGraph& graph, const SampleShape&) const override {
    graph.node(max_ ? "MaxPool" : "AveragePool", {graph.input(4)},
               {OnnxAttribute::integers("kernel_shape", {wh_, ww_}),
                OnnxAttribute::integers("strides", {sh_, sw_})},
               4);
    return true;
  }

  // in: [n, c, h, w] -> out (and argmax, max pooling): [n, c, out_h, out_w]
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const Pool2dGeometry g = geometry(p.in_shape, p.n);
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t o = std::size_t(first) * plane_out(g);
      const T* in = p.in + std::size_t(first) * plane_in(g);
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast()) {
          if (max_)
            return cpu::fast::max_pool_forward(slice(g, count), in, p.out + o, argmax(p) + o);
          return cpu::fast::avg_pool_forward(slice(g, count), in, p.out + o);
        }
      if (max_)
        cpu::max_pool_forward(slice(g, count), in, p.out + o, argmax(p) + o);
      else
        cpu::avg_pool_forward(slice(g, count), in, p.out + o);
    });
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    const Pool2dGeometry g = geometry(p.in_shape, p.n);
    if (max_)
      cuda::max_pool_forward(g, p.in, p.out, argmax(p), cuda.stream);
    else
      cuda::avg_pool_forward(g, p.in, p.out, cuda.stream);
  }

  // dout: [n, c, out_h, out_w] -> din: [n, c, h, w], through the fused activation's gradient
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const Pool2dGeometry g = geometry(p.in_shape, p.n);
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t o = std::size_t(first) * plane_out(g);
      const std::size_t i = std::size_t(first) * plane_in(g);
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast()) {
          if (max_)
            return cpu::fast::max_pool_backward(slice(g, count), p.dout + o, argmax(p) + o,
                                                p.din + i, offset_by(p.fused_grad, i));
          return cpu::fast::avg_pool_backward(slice(g, count), p.dout + o, p.din + i,
                                              offset_by(p.fused_grad, i));
        }
      if (max_)
        cpu::max_pool_backward(slice(g, count), p.dout + o, argmax(p) + o, p.din + i,
                               offset_by(p.fused_grad, i));
      else
        cpu::avg_pool_backward(slice(g, count), p.dout + o, p.din + i, offset_by(p.fused_grad, i));
    });
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    const Pool2dGeometry g = geometry(p.in_shape, p.n);
    if (max_)
      cuda::max_pool_backward(g, p.dout, argmax(p), p.din, p.fused_grad, cuda.stream);
    else
      cuda::avg_pool_backward(g, p.dout, p.din, p.fused_grad, cuda.stream);
  }

 private:
  Pool2dGeometry geometry(const SampleShape& in, int n) const {
    return make_pool2d_geometry(name().c_str(), n, in.c, in.h, in.w, wh_, ww_, sh_, sw_);
  }
  static Pool2dGeometry slice(Pool2dGeometry g, int count) {
    g.n = count;
    return g;
  }
  template <typename T>
  static std::int32_t* argmax(const LayerPass<T>& p) {
    return static_cast<std::int32_t*>(p.scratch[0]);
  }
  static std::size_t plane_in(const Pool2dGeometry& g) { return std::size_t(g.c) * g.h * g.w; }
  static std::size_t plane_out(const Pool2dGeometry& g) {
    return std::size_t(g.c) * g.out_h * g.out_w;
  }

  bool max_;
  int wh_ = 2, ww_ = 2, sh_ = 2, sw_ = 2;
};

class GlobalAvgPoolUnit final : public LayerUnitOf<GlobalAvgPoolUnit> {
 public:
  explicit GlobalAvgPoolUnit(const LayerSpec& spec) : LayerUnitOf(spec.name) {}

  SampleShape output_shape(const SampleShape& in) const override {
    geometry(in, 1);  // refuses an empty input
    return SampleShape{in.c, 1, 1};
  }
  std::int64_t flops(const SampleShape& in, const SampleShape&) const override { return in.size(); }
  std::string describe() const override { return "global avg pool"; }
  void write_fields(nlohmann::json&) const override {}
  bool runs_activation_grad_before() const override { return true; }
  bool export_onnx(OnnxGraph& graph, const SampleShape&) const override {
    graph.node("GlobalAveragePool", {graph.input(4)}, {}, 4);
    return true;
  }

  // in: [n, c, h, w] -> out: [n, c, 1, 1]
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext&) const {
    cpu::avg_pool_forward(geometry(p.in_shape, p.n), p.in, p.out);
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::avg_pool_forward(geometry(p.in_shape, p.n), p.in, p.out, cuda.stream);
  }
  // dout: [n, c, 1, 1] -> din: [n, c, h, w] = dout / (h * w), through the fused activation's
  // gradient
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext&) const {
    cpu::avg_pool_backward(geometry(p.in_shape, p.n), p.dout, p.din, p.fused_grad);
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::avg_pool_backward(geometry(p.in_shape, p.n), p.dout, p.din, p.fused_grad, cuda.stream);
  }

 private:
  Pool2dGeometry geometry(const SampleShape& in, int n) const {
    return make_pool2d_geometry(name().c_str(), n, in.c, in.h, in.w, in.h, in.w, in.h, in.w);
  }
};

}  // namespace

std::shared_ptr<const LayerUnit> make_global_avg_pool_unit(const LayerSpec& spec,
                                                           const std::string& where) {
  LayerFields(spec, where);  // fields that are not JSON are still refused
  return std::make_shared<GlobalAvgPoolUnit>(spec);
}

std::shared_ptr<const LayerUnit> make_pool_unit(const LayerSpec& spec, const std::string& where) {
  return std::make_shared<PoolUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
