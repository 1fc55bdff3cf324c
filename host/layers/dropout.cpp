// dropout (docs/math.md section 6): in training each element is zeroed with probability p and the
// rest scaled by 1 / (1 - p), the mask drawn from Philox; in inference the identity.
#include "kernels/cpu/dropout.hpp"

#include <fmt/format.h>

#include "cnnrt/error.hpp"
#include "host/cpu_backend.hpp"
#include "host/cuda_backend.hpp"
#include "host/layer.hpp"
#include "kernels/cuda/dropout.cuh"

namespace cnnrt {

namespace {

class DropoutUnit final : public LayerUnitOf<DropoutUnit> {
 public:
  DropoutUnit(const LayerSpec& spec, const LayerFields& f)
      : LayerUnitOf(spec.name), p_(f.number("p", 0.5f, 0.0, 1.0)) {}

  SampleShape output_shape(const SampleShape& in) const override {
    if (!(p_ >= 0.0f && p_ < 1.0f))
      throw Error(fmt::format("{}: dropout probability {} is outside [0, 1)", name(), p_));
    return in;
  }
  std::vector<ScratchSpec> scratch(const ScratchQuery& q) const override {
    return {ScratchSpec{"mask", std::size_t(q.batch) * std::size_t(q.out.size())}};
  }
  std::int64_t flops(const SampleShape&, const SampleShape& out) const override {
    return out.size();
  }
  std::string describe() const override { return fmt::format("dropout p={}", p_); }
  void write_fields(nlohmann::json& l) const override { l["p"] = p_; }
  bool identity_in_inference() const override { return true; }
  bool varies_per_step() const override { return true; }

  // in: [count] -> out, mask: [count]
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext&) const {
    cpu::dropout_forward(params(p), p.out_count(), p.in, p.out, mask(p));
  }
  void forward_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::dropout_forward(params(p), p.out_count(), p.in, p.out, mask(p), cuda.stream);
  }
  // dout, mask: [count] -> din: [count]
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext&) const {
    cpu::dropout_backward(params(p), p.out_count(), p.dout, mask(p), p.din);
  }
  void backward_data_cuda(const LayerPass<float>& p, CudaContext& cuda) const {
    cuda::dropout_backward(params(p), p.out_count(), p.dout, mask(p), p.din, cuda.stream);
  }

 private:
  // The Philox stream offset: distinct for every (step, layer) pair.
  template <typename T>
  DropoutParams params(const LayerPass<T>& p) const {
    return DropoutParams{p_, 0, (p.step << 8) | static_cast<std::uint64_t>(p.index & 0xFF),
                         p.first_sample * static_cast<std::uint64_t>(p.out_shape.size())};
  }
  template <typename T>
  static std::uint8_t* mask(const LayerPass<T>& p) {
    return static_cast<std::uint8_t*>(p.scratch[0]);
  }

  float p_;
};

}  // namespace

std::shared_ptr<const LayerUnit> make_dropout_unit(const LayerSpec& spec,
                                                   const std::string& where) {
  return std::make_shared<DropoutUnit>(spec, LayerFields(spec, where));
}

}  // namespace cnnrt
