// cnnrt/filter.hpp: a kernel applied to one image by the training convolution on either device,
// and the response scaled for display (`cnnrt filter`'s library side). The kernels themselves:
// filter_kernels.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/filter.hpp"
#include "host/device_buffer.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/ops.hpp"

namespace cnnrt {

GrayImage apply_filter(const GrayImage& image, const std::vector<float>& kernel, int kh, int kw,
                       Device device, Padding padding) {
  if (kh <= 0 || kw <= 0 || kernel.size() != std::size_t(kh) * std::size_t(kw))
    throw Error(fmt::format("apply_filter: a {}x{} kernel needs {} values, got {}", kh, kw,
                            std::max(kh, 0) * std::max(kw, 0), kernel.size()));
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != std::size_t(image.width) * std::size_t(image.height))
    throw Error(fmt::format("apply_filter: image is {}x{} but holds {} pixels", image.width,
                            image.height, image.pixels.size()));
  // One image, one channel, one filter: the network's convolution at n = c = k = 1.
  const Conv2dGeometry g =
      make_conv2d_geometry("filter", 1, 1, image.height, image.width, 1, kh, kw, 1, 1, padding);
  GrayImage response;
  response.width = g.out_w;
  response.height = g.out_h;
  response.pixels.resize(g.out_size());
  if (device != Device::cuda) {  // one small filter: the plain loops on either CPU path
    cpu::conv2d_forward<float>(g, image.pixels.data(), kernel.data(), nullptr,
                               response.pixels.data(), {});
    return response;
  }
  if (!cuda_available()) {
    std::string why_none;
    cuda_devices(&why_none);
    throw Error(
        fmt::format("apply_filter: device cuda requested but there is none ({})", why_none));
  }
  DeviceBuffer<float> in(g.in_size()), weight(g.weight_size()), out(g.out_size());
  in.upload(image.pixels);
  weight.upload(kernel);
  cuda::conv2d_forward(g, in.data(), weight.data(), nullptr, out.data(), {}, nullptr);
  CNNRT_CUDA_CHECK(cudaDeviceSynchronize());
  response.pixels = out.download();
  return response;
}

GrayImage scale_response(const GrayImage& response, ResponseScaling scaling) {
  switch (scaling) {
    case ResponseScaling::rescale:
      return rescale_to_byte_range(response);
    case ResponseScaling::magnitude: {
      GrayImage magnitude = response;
      for (float& v : magnitude.pixels) v = std::fabs(v);
      return rescale_to_byte_range(magnitude);
    }
    case ResponseScaling::clamp: {
      GrayImage clamped = response;
      for (float& v : clamped.pixels) v = std::clamp(v, 0.0f, 255.0f);
      return clamped;
    }
  }
  return response;
}

}  // namespace cnnrt
