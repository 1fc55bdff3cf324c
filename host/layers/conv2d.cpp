// conv2d (docs/math.md section 1): `filters` maps of kernel_h x kernel_w over the input, with a
// stride and padding; weight [filters, c, kh, kw] and bias [filters], PyTorch's layout.
#include <fmt/format.h>

#include <algorithm>
#include <type_traits>

#include "cnnrt/error.hpp"
#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cpu/conv_fast.hpp"
#include "kernels/cuda/conv.cuh"

namespace cnnrt {

namespace {

class Conv2dUnit final : public LayerUnitOf<Conv2dUnit> {
 public:
  Conv2dUnit(const LayerSpec& spec, const LayerFields& f) : LayerUnitOf(spec.name) {
    std::tie(kh_, kw_) = f.int_pair("kernel", 0);
    std::tie(sh_, sw_) = f.int_pair("stride", 1);
    padding_ = f.padding();
    filters_ = f.integer("filters");
  }

  SampleShape output_shape(const SampleShape& in) const override {
    if (filters_ <= 0)
      throw Error(fmt::format("{}: needs a positive number of filters, got {}", name(), filters_));
    const Conv2dGeometry g = geometry(in, 1);
    return SampleShape{filters_, g.out_h, g.out_w};
  }
  std::vector<ParameterSpec> parameters(const SampleShape& in) const override {
    const double window = double(kh_) * kw_;
    return {
        ParameterSpec{"weight", {filters_, in.c, kh_, kw_}, true, in.c * window, filters_ * window},
        ParameterSpec{"bias", {filters_}, false, 0, 0}};
  }
  std::vector<ScratchSpec> scratch(const ScratchQuery& q) const override {
    // The weight gradient's partial sums: per thread on the CPU, per block on CUDA; on the fast
    // CPU path, then each thread's unfolding buffer (cpu::fast::conv2d_col_floats).
    const Conv2dGeometry g = geometry(q.in, q.batch);
    if (q.cuda) return {ScratchSpec{"workspace", cuda::conv2d_backward_weights_workspace_bytes(g)}};
    const std::size_t cols = q.cpu_fast ? cpu::fast::conv2d_col_floats(g) : 0;
    return {ScratchSpec{"workspace",
                        std::size_t(q.cpu_threads) * (partial_size(g) + cols) * q.scalar_bytes}};
  }
  std::int64_t flops(const SampleShape& in, const SampleShape& out) const override {
    const std::int64_t window = std::int64_t(in.c) * kh_ * kw_;
    return 2 * window * out.size() + out.size();
  }
  std::int64_t dense_equivalent(const SampleShape& in, const SampleShape& out) const override {
    return in.size() * out.size() + out.size();
  }
  std::string describe() const override {
    return fmt::format("conv {}x{} /{} {}", kh_, kw_, sh_, padding_.to_string());
  }
  void write_fields(nlohmann::json& l) const override {
    l["filters"] = filters_;
    l["kernel"] = {kh_, kw_};
    l["stride"] = {sh_, sw_};
    if (padding_.mode == Padding::Mode::explicit_)
      l["padding"] = {padding_.h, padding_.w};
    else
      l["padding"] = padding_.to_string();
  }
  bool runs_activation_after() const override { return true; }
  bool takes_batch_norm_fold() const override { return true; }
  // Conv with explicit pads [top, left, bottom, right]: the bottom and right pads are what the
  // output size needs (cnnrt's "same" puts the odd extra row there).
  bool export_onnx(OnnxGraph& graph, const SampleShape& in) const override {
    const Conv2dGeometry g = geometry(in, 1);
    const auto after = [](int size, int kernel, int stride, int out, int before) {
      return std::max(0, (out - 1) * stride + kernel - size - before);
    };
    const int bottom = after(g.h, kh_, sh_, g.out_h, g.pad_top);
    const int right = after(g.w, kw_, sw_, g.out_w, g.pad_left);
    graph.node("Conv", {graph.input(4), graph.tensor("weight"), graph.tensor("bias")},
               {OnnxAttribute::integers("kernel_shape", {kh_, kw_}),
                OnnxAttribute::integers("strides", {sh_, sw_}),
                OnnxAttribute::integers("pads", {g.pad_top, g.pad_left, bottom, right})},
               4);
    return true;
  }

  // in: [n, c, h, w], weight [k, c, kh, kw], bias [k] -> out: [n, k, out_h, out_w]
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const Conv2dGeometry g = geometry(p.in_shape, p.n);
    // Plain pointers, not a structured binding: C++17 lambdas cannot capture those.
    const std::pair<const T*, const T*> folded =
        weight_and_bias(p, g.k, g.weight_size() / std::size_t(g.k));
    const T *weight = folded.first, *bias = folded.second;
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t o = std::size_t(first) * chw_out(g);
      const T* in = p.in + std::size_t(first) * chw_in(g);
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::conv2d_forward(slice(g, count), in, weight, bias, p.out + o,
                                           offset_by(p.fused, o), col_of(p, cpu, g, first));
      cpu::conv2d_forward(slice(g, count), in, weight, bias, p.out + o, offset_by(p.fused, o));
    });
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    // TF32 only when asked for (CompileOptions::conv_precision): no GPU has verified it yet.
    const auto forward = cuda.conv_tf32 ? cuda::conv2d_forward_tf32 : cuda::conv2d_forward;
    forward(geometry(p.in_shape, p.n), p.in, p.params[0], p.params[1], p.out, p.fused, cuda.stream);
  }

  // in: [n, c, h, w], dout: [n, k, out_h, out_w] -> dweight [k, c, kh, kw], dbias [k]
  template <typename T>
  void backward_weights_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    // Each slice writes its own partial gradient; the partials are summed in slice order.
    const Conv2dGeometry g = geometry(p.in_shape, p.n);
    const std::size_t wsize = g.weight_size(), bsize = std::size_t(g.k);
    T* partials = static_cast<T*>(p.scratch[0]);
    const int slices = cpu.for_batch_slices(g.n, [&](int first, int count) {
      T* mine = partials + std::size_t(cpu.slice_index(g.n, first)) * (wsize + bsize);
      const T* in = p.in + std::size_t(first) * chw_in(g);
      const T* dout = p.dout + std::size_t(first) * chw_out(g);
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::conv2d_backward_weights(slice(g, count), in, dout, mine, mine + wsize,
                                                    col_of(p, cpu, g, first));
      cpu::conv2d_backward_weights(slice(g, count), in, dout, mine, mine + wsize, nullptr);
    });
    sum_slice_partials(partials, slices, wsize + bsize, wsize, p.grads[0]);
    sum_slice_partials(partials + wsize, slices, wsize + bsize, bsize, p.grads[1]);
  }
  void backward_weights_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::conv2d_backward_weights(geometry(p.in_shape, p.n), p.in, p.dout, p.grads[0], p.grads[1],
                                  p.scratch[0], cuda.stream);
  }

  // dout: [n, k, out_h, out_w], weight [k, c, kh, kw] -> din: [n, c, h, w]
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext& cpu) const {
    const Conv2dGeometry g = geometry(p.in_shape, p.n);
    cpu.for_batch_slices(g.n, [&](int first, int count) {
      const T* dout = p.dout + std::size_t(first) * chw_out(g);
      T* din = p.din + std::size_t(first) * chw_in(g);
      if constexpr (std::is_same_v<T, float>)
        if (cpu.fast())
          return cpu::fast::conv2d_backward_data(slice(g, count), dout, p.params[0], din,
                                                 col_of(p, cpu, g, first));
      cpu::conv2d_backward_data(slice(g, count), dout, p.params[0], din);
    });
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::conv2d_backward_data(geometry(p.in_shape, p.n), p.dout, p.params[0], p.din, cuda.stream);
  }

 private:
  Conv2dGeometry geometry(const SampleShape& in, int n) const {
    return make_conv2d_geometry(name().c_str(), n, in.c, in.h, in.w, filters_, kh_, kw_, sh_, sw_,
                                padding_);
  }
  // A thread's weight and bias gradient partials.
  static std::size_t partial_size(const Conv2dGeometry& g) {
    return g.weight_size() + std::size_t(g.k);
  }
  // The fast path's unfolding buffer of the thread running the slice that starts at `first`:
  // after every thread's partials in the workspace.
  static float* col_of(const LayerPass<float>& p, const CpuContext& cpu, const Conv2dGeometry& g,
                       int first) {
    float* cols = static_cast<float*>(p.scratch[0]) + std::size_t(cpu.threads()) * partial_size(g);
    return cols + std::size_t(cpu.slice_index(g.n, first)) * cpu::fast::conv2d_col_floats(g);
  }
  static Conv2dGeometry slice(Conv2dGeometry g, int count) {
    g.n = count;
    return g;
  }
  static std::size_t chw_in(const Conv2dGeometry& g) { return std::size_t(g.c) * g.h * g.w; }
  static std::size_t chw_out(const Conv2dGeometry& g) {
    return std::size_t(g.k) * g.out_h * g.out_w;
  }

  int filters_ = 0, kh_ = 0, kw_ = 0, sh_ = 1, sw_ = 1;
  Padding padding_;
};

}  // namespace

std::shared_ptr<const LayerUnit> make_conv2d_unit(const LayerSpec& spec, const std::string& where) {
  return std::make_shared<Conv2dUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
