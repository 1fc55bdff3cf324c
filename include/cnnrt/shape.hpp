#pragma once
#include <string>

#include "cnnrt/export.hpp"

namespace cnnrt {

// How a convolution pads its input (docs/math.md section 1).
//   valid:    no padding, out = ceil((in - k + 1) / stride)
//   same:     out = ceil(in / stride); total pad = max((out-1)*stride + k - in, 0), top/left get
//             floor(total/2), bottom/right the rest (TensorFlow's rule, the lecture's)
//   explicit: `h`/`w` zeros on every side, out = floor((in + 2p - k) / stride) + 1 (PyTorch's)
struct CNNRT_API Padding {
  enum class Mode { valid, same, explicit_ };
  Mode mode = Mode::valid;
  int h = 0;
  int w = 0;

  static Padding valid() { return {Mode::valid, 0, 0}; }
  static Padding same() { return {Mode::same, 0, 0}; }
  static Padding explicit_pad(int ph, int pw) { return {Mode::explicit_, ph, pw}; }
  std::string to_string() const;
};

// One spatial axis of a convolution: the output size and the padding before the first element.
// Returns out <= 0 when the window does not fit, or when the padded input is too large for the
// kernels' int indexing (callers turn that into an Error with context).
struct CNNRT_API AxisGeometry {
  int out = 0;
  int pad_before = 0;
};
CNNRT_API AxisGeometry conv_axis(int in, int kernel, int stride, Padding::Mode mode, int pad);

// Pooling has no padding: out = floor((in - window) / stride) + 1, or <= 0 if it does not fit.
CNNRT_API int pool_out_size(int in, int window, int stride);

}  // namespace cnnrt
