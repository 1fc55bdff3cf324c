// cnnrt/filters.hpp: the lecture's fixed kernels (docs/math.md section 9) and Haar-like rectangle
// features, as data. Applying one to an image: filter_apply.cpp.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <functional>
#include <map>

#include "cnnrt/error.hpp"
#include "cnnrt/filters.hpp"

namespace cnnrt {
namespace {

constexpr int kHaarSize = 6;  // divisible by 2 and 3: halves, thirds and quadrants are exact
constexpr float kMaxGaussianSigma = 16.0f;

struct Kernel {
  int kh;
  int kw;
  std::vector<float> values;
};

Kernel kernel3x3(std::vector<float> values) {
  return {3, 3, std::move(values)};
}

// A kHaarSize x kHaarSize kernel whose value at (row, column) is weight(row, column).
Kernel haar(const std::function<float(int, int)>& weight) {
  Kernel kernel{kHaarSize, kHaarSize, std::vector<float>(kHaarSize * kHaarSize)};
  for (int row = 0; row < kHaarSize; ++row)
    for (int column = 0; column < kHaarSize; ++column)
      kernel.values[row * kHaarSize + column] = weight(row, column);
  return kernel;
}

// -1 / +2 / -1 by thirds of the axis: a bright line between two dark bands responds.
float line_weight(int index) {
  const int third = index / (kHaarSize / 3);
  return third == 1 ? 2.0f : -1.0f;
}

Kernel gaussian(float sigma) {
  if (!(sigma > 0.0f) || sigma > kMaxGaussianSigma)
    throw Error(
        fmt::format("gaussian kernel: sigma {} is out of range (0, {}]", sigma, kMaxGaussianSigma));
  const int radius = static_cast<int>(std::ceil(3.0f * sigma));
  const int size = 2 * radius + 1;
  Kernel kernel{size, size, std::vector<float>(static_cast<std::size_t>(size) * size)};
  // Summed in double: the 1/(2 pi sigma^2) factor cancels in the normalisation.
  std::vector<double> weights(kernel.values.size());
  double total = 0.0;
  for (int y = -radius; y <= radius; ++y) {
    for (int x = -radius; x <= radius; ++x) {
      const double w = std::exp(-(x * x + y * y) / (2.0 * sigma * sigma));
      weights[(y + radius) * size + (x + radius)] = w;
      total += w;
    }
  }
  for (std::size_t i = 0; i < weights.size(); ++i)
    kernel.values[i] = static_cast<float>(weights[i] / total);
  return kernel;
}

const std::map<std::string, std::function<Kernel(float)>>& kernel_table() {
  static const std::map<std::string, std::function<Kernel(float)>> table = {
      {"sobel-x",
       [](float) {
         return kernel3x3({-1, 0, 1, -2, 0, 2, -1, 0, 1});
       }},
      {"sobel-y",
       [](float) {
         return kernel3x3({1, 2, 1, 0, 0, 0, -1, -2, -1});
       }},
      {"scharr-x",
       [](float) {
         return kernel3x3({-3, 0, 3, -10, 0, 10, -3, 0, 3});
       }},
      {"scharr-y",
       [](float) {
         return kernel3x3({-3, -10, -3, 0, 0, 0, 3, 10, 3});
       }},
      {"laplacian",
       [](float) {
         return kernel3x3({1, 1, 1, 1, -8, 1, 1, 1, 1});
       }},
      {"gaussian", [](float sigma) { return gaussian(sigma); }},
      {"edge1",
       [](float) {
         return kernel3x3({-1, -1, 5, -1, -1, 5, -1, -1, 5});
       }},
      {"edge2",
       [](float) {
         return kernel3x3({5, 5, 5, -1, -1, -1, -1, -1, -1});
       }},
      {"line",
       [](float) {
         return kernel3x3({-1, 5, -1, -1, 5, -1, -1, 5, -1});
       }},
      {"diagonal",
       [](float) {
         return kernel3x3({5, -1, -1, -1, 5, -1, -1, -1, 5});
       }},
      {"nine-top",
       [](float) {
         return kernel3x3({1, 1, 1, 1, -1, 1, 1, 1, 1});
       }},
      // Signs follow Sobel's: x responds to dark-left / bright-right, y to bright-top.
      {"haar-edge-x",
       [](float) { return haar([](int, int c) { return c < kHaarSize / 2 ? -1.0f : 1.0f; }); }},
      {"haar-edge-y",
       [](float) { return haar([](int r, int) { return r < kHaarSize / 2 ? 1.0f : -1.0f; }); }},
      {"haar-line-x", [](float) { return haar([](int, int c) { return line_weight(c); }); }},
      {"haar-line-y", [](float) { return haar([](int r, int) { return line_weight(r); }); }},
      {"haar-checker", [](float) {
         return haar([](int r, int c) {
           return (r < kHaarSize / 2) == (c < kHaarSize / 2) ? 1.0f : -1.0f;
         });
       }}};
  return table;
}

}  // namespace

std::vector<float> classic_kernel(const std::string& name, int* kh, int* kw, float sigma) {
  const auto& table = kernel_table();
  const auto it = table.find(name);
  if (it == table.end())
    throw Error(fmt::format("unknown kernel '{}'; known kernels: {}", name,
                            fmt::join(classic_kernel_names(), ", ")));
  Kernel kernel = it->second(sigma);
  if (kh != nullptr) *kh = kernel.kh;
  if (kw != nullptr) *kw = kernel.kw;
  return std::move(kernel.values);
}

std::vector<std::string> classic_kernel_names() {
  std::vector<std::string> names;
  for (const auto& entry : kernel_table()) names.push_back(entry.first);
  return names;
}

}  // namespace cnnrt
