#pragma once
// Classic kernels applied to a grayscale image by the convolution the networks train with
// (cnnrt::cpu::conv2d_forward or cnnrt::cuda::conv2d_forward): cross-correlation, no flipping.
#include <vector>

#include "cnnrt/export.hpp"
#include "cnnrt/image.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/shape.hpp"

namespace cnnrt {

// image: [height, width] (*) kernel: [kh, kw] -> response: [out_h, out_w], raw (signed, unscaled)
// values. `padding` is same (output as large as the input, zeros outside) or valid (only where the
// kernel fits). Throws when the kernel is empty, its size disagrees with kh * kw, it does not fit
// the image, or `device` is cuda without a CUDA device.
CNNRT_API GrayImage apply_filter(const GrayImage& image, const std::vector<float>& kernel, int kh,
                                 int kw, Device device, Padding padding);

// How a filter response becomes 0..255 pixels for an image file.
enum class ResponseScaling {
  rescale,    // min..max -> 0..255
  magnitude,  // |v|, then min..max -> 0..255
  clamp,      // values as they are, clamped to 0..255
};

// The response mapped for display; clamp keeps the values (write_gray_image clamps and rounds).
CNNRT_API GrayImage scale_response(const GrayImage& response, ResponseScaling scaling);

}  // namespace cnnrt
