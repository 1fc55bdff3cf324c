// Training pictures: the plot writers on known data, and `cnnrt train --plots` end to end on the
// CPU.
#include "cnnrt/plots.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/image.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

// Pictures are read back as grey; a grey RGB pixel (v, v, v) reads back as exactly v.
long count_pixels(const GrayImage& image, float value) {
  return std::count(image.pixels.begin(), image.pixels.end(), value);
}

bool varies(const GrayImage& image) {
  const auto [lo, hi] = std::minmax_element(image.pixels.begin(), image.pixels.end());
  return *lo != *hi;
}

TEST(Plots, KernelGridNormalisesEachKernel) {
  test::ScratchDir dir("plots_grid");
  // Two 2x2 kernels with values 0..3 in different orders and scales: each normalised on its own
  // range gives the grey levels 0, 85, 170, 255, one 2x2 block each per kernel.
  const std::vector<float> weights = {0, 1, 2, 3, 30, 20, 10, 0};
  write_kernel_grid(dir.file("grid.png"), "k", weights, 2, 1, 2, 2);
  const GrayImage grid = read_gray_image(dir.file("grid.png"));
  const int scale = 48 / 2;  // each weight becomes a 24x24 block
  EXPECT_EQ(count_pixels(grid, 85.0f), 2L * scale * scale);
  EXPECT_EQ(count_pixels(grid, 170.0f), 2L * scale * scale);
}

TEST(Plots, RejectsInconsistentInput) {
  test::ScratchDir dir("plots_reject");
  EXPECT_THROW(write_kernel_grid(dir.file("a.png"), "k", std::vector<float>(7), 2, 1, 2, 2), Error);
  EXPECT_THROW(write_line_chart(dir.file("b.png"), "empty", {}), Error);
  EXPECT_THROW(write_feature_maps(dir.file("c.png"), "maps",
                                  {FeatureMapRow{"x", 2, 3, 3, std::vector<float>(9)}}),
               Error);
}

TEST(Plots, LineChartDrawsTheSeries) {
  test::ScratchDir dir("plots_chart");
  const PlotSeries rising{"up", {0.1, 0.5, 0.9}, {0, 0, 0}};
  write_line_chart(dir.file("chart.png"), "chart", {rising});
  const GrayImage chart = read_gray_image(dir.file("chart.png"));
  EXPECT_EQ(chart.width, 480);
  EXPECT_EQ(chart.height, 320);
  EXPECT_TRUE(varies(chart));
}

// The legend sits under the axis: the rising series' line into its last point, in the plot's
// top-right corner, stays visible, and the series' colour key (10x5 pixels) is in the picture's
// bottom rows.
TEST(Plots, LegendHidesNoPoint) {
  test::ScratchDir dir("plots_legend");
  constexpr float kGrey = 100.0f;  // the series' colour, (100, 100, 100), reads back as this
  const PlotSeries rising{"rising series", {0.1, 0.5, 0.9}, {100, 100, 100}};
  write_line_chart(dir.file("chart.png"), "chart", {rising});
  const GrayImage chart = read_gray_image(dir.file("chart.png"));
  ASSERT_EQ(chart.width, 480);
  auto count_in = [&](int x0, int x1, int y0, int y1) {
    long n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) n += chart.pixels[std::size_t(y) * chart.width + x] == kGrey;
    return n;
  };
  // The last stretch of the line (2 pixels thick) into the last point, at the plot's top right,
  // where a legend inside the plot would sit.
  EXPECT_GE(count_in(448, 462, 30, 56), 2L * 14);
  constexpr int kLegendRows = 14;
  EXPECT_EQ(count_in(0, chart.width, chart.height - kLegendRows, chart.height), 10L * 5);
}

TEST(TrainPlots, ShortCpuRunWritesFourPictures) {
  const std::string data = test::fashion_mnist_dir();
  if (!std::filesystem::exists(data)) GTEST_SKIP() << "no Fashion-MNIST at " << data;
  test::ScratchDir dir("train_plots");
  const std::string plots = dir.file("plots");
  const test::ToolRun run = test::run_tool(
      "train --device cpu --epochs 2 --train-limit 512 --test-limit 128 --batch 64 --data '" +
      data + "' --plots '" + plots + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;

  for (const char* name : {"loss.png", "accuracy.png", "kernels.png", "feature_maps.png"}) {
    const std::string path = (std::filesystem::path(plots) / name).string();
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    const GrayImage image = read_gray_image(path);
    EXPECT_GE(image.width, 100) << name;
    EXPECT_LE(image.width, 2000) << name;
    EXPECT_GE(image.height, 50) << name;
    EXPECT_LE(image.height, 2000) << name;
    EXPECT_TRUE(varies(image)) << name;
  }
  // LeNet-5's conv1 is [6, 1, 5, 5]: beyond the white background and the black title, the grid
  // holds intermediate grey levels from the learned weights.
  const GrayImage kernels =
      read_gray_image((std::filesystem::path(plots) / "kernels.png").string());
  const long extremes = count_pixels(kernels, 0.0f) + count_pixels(kernels, 255.0f);
  EXPECT_GT(long(kernels.pixels.size()) - extremes, 6L * 5 * 5) << "kernel grid has no grey levels";
}

}  // namespace
}  // namespace cnnrt
