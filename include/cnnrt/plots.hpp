#pragma once
// Small PNG pictures of a training run (`cnnrt train --plots DIR`), drawn into a pixel buffer here:
// line charts of per-epoch metrics, a grid of learned convolution kernels, and feature maps.
// Text uses a built-in 5x7 bitmap font (letters are drawn in upper case).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"
#include "cnnrt/image.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt {

// One line of a chart.
struct CNNRT_API PlotSeries {
  std::string name;                   // the legend's label
  std::vector<double> values;         // non-finite values are skipped
  std::array<std::uint8_t, 3> rgb{};  // line and legend colour
};

// A line chart with a title, axes labelled with the y range and the epochs, and a legend; values[i]
// of every series is plotted at epoch first_epoch + i. Throws when there is nothing to plot or the
// file cannot be written.
CNNRT_API void write_line_chart(const std::string& path, const std::string& title,
                                const std::vector<PlotSeries>& series, int first_epoch = 1);

// Convolution weights [k, c, kh, kw] as a grid (one row per input channel, one column per filter),
// each kernel normalised on its own min..max to black..white and upscaled to be visible.
CNNRT_API void write_kernel_grid(const std::string& path, const std::string& title,
                                 const std::vector<float>& weights, int k, int c, int kh, int kw);
// The same picture as RGB bytes (TensorBoard's kernel image).
CNNRT_API ByteImage draw_kernel_grid(const std::string& title, const std::vector<float>& weights,
                                     int k, int c, int kh, int kw);
// The model's first convolution's weights as draw_kernel_grid draws them (its first
// `max_kernels` filters; the title names the parameter and its shape), with the parameter's name
// ("conv1.weight"); nothing for a network without a convolution.
struct CNNRT_API KernelPicture {
  std::string parameter;
  ByteImage picture;
};
CNNRT_API std::optional<KernelPicture> draw_first_convolution(const Model& model,
                                                              int max_kernels = 32);

// One labelled row of maps [channels, height, width] (an input image, a layer's output).
struct CNNRT_API FeatureMapRow {
  std::string label;
  int channels = 0, height = 0, width = 0;
  std::vector<float> values;  // [channels, height, width]
};

// Each row's maps side by side under its label, each map normalised on its own min..max.
CNNRT_API void write_feature_maps(const std::string& path, const std::string& title,
                                  const std::vector<FeatureMapRow>& rows);

}  // namespace cnnrt
