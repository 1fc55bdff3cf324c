// CPU reference dropout (docs/math.md section 6): the mask bits come from the Philox stream
// described in DropoutParams, so the CUDA kernel draws exactly the same mask.
#include "kernels/cpu/dropout.hpp"

#include <fmt/format.h>

#include "cnnrt/error.hpp"
#include "kernels/philox.hpp"

namespace cnnrt::cpu {

namespace {

void check_probability(const char* where, float p) {
  if (!(p >= 0.0f && p < 1.0f))  // also rejects NaN
    throw Error(fmt::format("{}: dropout probability p = {} must be in [0, 1)", where, p));
}

}  // namespace

// in: [count] -> out: [count], mask: [count]
template <typename T>
void dropout_forward(const DropoutParams& params, std::size_t count, const T* in, T* out,
                     std::uint8_t* mask) {
  check_probability("dropout_forward", params.p);
  const T keep_scale = T(1) / (T(1) - T(params.p));  // survivors carry the dropped mass
  for (std::size_t i = 0; i < count; ++i) {
    const bool keep = philox_uniform(params.seed, params.offset, params.first + i) >= params.p;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? in[i] * keep_scale : T(0);
  }
}

// dout, mask: [count] -> din: [count]
template <typename T>
void dropout_backward(const DropoutParams& params, std::size_t count, const T* dout,
                      const std::uint8_t* mask, T* din) {
  check_probability("dropout_backward", params.p);
  const T keep_scale = T(1) / (T(1) - T(params.p));
  for (std::size_t i = 0; i < count; ++i) din[i] = mask[i] ? dout[i] * keep_scale : T(0);
}

template void dropout_forward<float>(const DropoutParams&, std::size_t, const float*, float*,
                                     std::uint8_t*);
template void dropout_forward<double>(const DropoutParams&, std::size_t, const double*, double*,
                                      std::uint8_t*);
template void dropout_backward<float>(const DropoutParams&, std::size_t, const float*,
                                      const std::uint8_t*, float*);
template void dropout_backward<double>(const DropoutParams&, std::size_t, const double*,
                                       const std::uint8_t*, double*);

}  // namespace cnnrt::cpu
