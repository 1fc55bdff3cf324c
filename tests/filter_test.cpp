// `cnnrt filter` and apply_filter: Sobel responses against a cross-correlation written out here
// with plain loops (zero padding outside the image), raw and as the 0..255 picture the tool writes.
#include "cnnrt/filter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/filters.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

// Raw responses are sums of nine products of small integers (the images below): exact in float.
constexpr test::Tolerance kRawTolerance{1e-4, 1e-6};
// CUDA and the CPU may sum the taps in another order; the Gaussian's weights are not exact.
constexpr test::Tolerance kDeviceTolerance{1e-3, 1e-5};
// Pixels written by the tool are rounded to integers: allow one level for a rounding tie.
constexpr double kByteTolerance = 1.0;

// docs/math.md section 9: Sobel X is -1 0 1 / -2 0 2 / -1 0 1.
const std::vector<double> kSobelX = {-1, 0, 1, -2, 0, 2, -1, 0, 1};

// A test picture: a vertical step edge at x = 5, a diagonal ramp, and a bright square, so the
// horizontal gradient has both signs and several magnitudes. Integer values in 0..255.
GrayImage test_picture(int width, int height) {
  GrayImage image;
  image.width = width;
  image.height = height;
  image.pixels.resize(std::size_t(width) * height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      int v = (x >= 5 ? 120 : 20) + 3 * ((x + 2 * y) % 7);
      if (x >= 8 && x < 11 && y >= 2 && y < 5) v = 250;
      image.pixels[std::size_t(y) * width + x] = float(v);
    }
  return image;
}

// Cross-correlation of the image with a 3x3 kernel, zeros outside: `same` keeps the size with one
// pixel of padding, `valid` only where the kernel fits.
std::vector<double> reference_correlation(const GrayImage& image, const std::vector<double>& k3,
                                          bool same, int* out_w, int* out_h) {
  const int pad = same ? 1 : 0;
  *out_w = same ? image.width : image.width - 2;
  *out_h = same ? image.height : image.height - 2;
  std::vector<double> out(std::size_t(*out_w) * *out_h);
  for (int oy = 0; oy < *out_h; ++oy)
    for (int ox = 0; ox < *out_w; ++ox) {
      double sum = 0;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          const int y = oy - pad + i, x = ox - pad + j;
          if (y < 0 || y >= image.height || x < 0 || x >= image.width) continue;
          sum += k3[i * 3 + j] * image.pixels[std::size_t(y) * image.width + x];
        }
      out[std::size_t(oy) * *out_w + ox] = sum;
    }
  return out;
}

// min..max -> 0..255, as the tool's default output (a constant image would be all zeros).
std::vector<double> reference_rescale(std::vector<double> v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  const double min = *lo, max = *hi;
  for (double& x : v) x = max > min ? std::round((x - min) * 255.0 / (max - min)) : 0.0;
  return v;
}

void write_pgm(const std::string& path, const GrayImage& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << image.width << " " << image.height << "\n255\n";
  for (float v : image.pixels) out.put(static_cast<char>(static_cast<std::uint8_t>(v)));
}

// A binary P5 file with maxval 255, parsed here: its width, height and pixel bytes.
std::vector<double> read_pgm(const std::string& path, int* width, int* height) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  int maxval = 0;
  in >> magic >> *width >> *height >> maxval;
  in.get();  // the single whitespace byte after the header
  EXPECT_EQ(magic, "P5");
  EXPECT_EQ(maxval, 255);
  std::vector<double> pixels(std::size_t(*width) * *height);
  for (double& p : pixels) p = static_cast<std::uint8_t>(in.get());
  EXPECT_TRUE(in.good()) << path << " is shorter than its header says";
  return pixels;
}

TEST(ApplyFilter, SobelXSamePaddingMatchesLoops) {
  const GrayImage image = test_picture(14, 9);
  int kh = 0, kw = 0;
  const std::vector<float> kernel = classic_kernel("sobel-x", &kh, &kw);
  int out_w = 0, out_h = 0;
  const std::vector<double> expected = reference_correlation(image, kSobelX, true, &out_w, &out_h);
  ASSERT_TRUE(test::any_nonzero(expected));
  const GrayImage response = apply_filter(image, kernel, kh, kw, Device::cpu, Padding::same());
  EXPECT_EQ(response.width, out_w);
  EXPECT_EQ(response.height, out_h);
  EXPECT_TRUE(test::all_close(response.pixels, expected, kRawTolerance, "sobel-x same"));
}

TEST(ApplyFilter, SobelXValidPaddingMatchesLoops) {
  const GrayImage image = test_picture(14, 9);
  int kh = 0, kw = 0;
  const std::vector<float> kernel = classic_kernel("sobel-x", &kh, &kw);
  int out_w = 0, out_h = 0;
  const std::vector<double> expected = reference_correlation(image, kSobelX, false, &out_w, &out_h);
  const GrayImage response = apply_filter(image, kernel, kh, kw, Device::cpu, Padding::valid());
  EXPECT_EQ(response.width, 12);
  EXPECT_EQ(response.height, 7);
  EXPECT_TRUE(test::all_close(response.pixels, expected, kRawTolerance, "sobel-x valid"));
}

TEST(ApplyFilter, RejectsMismatchedKernel) {
  const GrayImage image = test_picture(6, 6);
  EXPECT_THROW(apply_filter(image, std::vector<float>(8, 1.0f), 3, 3, Device::cpu, Padding::same()),
               Error);
  EXPECT_THROW(
      apply_filter(image, std::vector<float>(49, 1.0f), 7, 7, Device::cpu, Padding::valid()),
      Error);  // does not fit a 6x6 image
}

TEST(ApplyFilter, CudaMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  const GrayImage image = test_picture(40, 31);
  for (const char* name : {"sobel-x", "scharr-y", "gaussian", "haar-edge-x"}) {
    int kh = 0, kw = 0;
    const std::vector<float> kernel = classic_kernel(name, &kh, &kw, 1.5f);
    for (const Padding padding : {Padding::same(), Padding::valid()}) {
      const GrayImage cpu = apply_filter(image, kernel, kh, kw, Device::cpu, padding);
      const GrayImage gpu = apply_filter(image, kernel, kh, kw, Device::cuda, padding);
      ASSERT_TRUE(test::any_nonzero(cpu.pixels)) << name;
      EXPECT_EQ(gpu.width, cpu.width) << name;
      EXPECT_EQ(gpu.height, cpu.height) << name;
      EXPECT_TRUE(test::all_close(gpu.pixels, cpu.pixels, kDeviceTolerance, name));
    }
  }
}

class FilterTool : public ::testing::Test {
 protected:
  test::ScratchDir dir{"filter_tool"};
  GrayImage image = test_picture(14, 9);

  void SetUp() override { write_pgm(dir.file("in.pgm"), image); }
};

TEST_F(FilterTool, SobelXScaledOutputMatchesLoops) {
  const test::ToolRun run = test::run_tool("filter --kernel sobel-x --device cpu '" +
                                           dir.file("in.pgm") + "' '" + dir.file("out.pgm") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  int out_w = 0, out_h = 0;
  const std::vector<double> expected =
      reference_rescale(reference_correlation(image, kSobelX, true, &out_w, &out_h));
  int width = 0, height = 0;
  const std::vector<double> written = read_pgm(dir.file("out.pgm"), &width, &height);
  EXPECT_EQ(width, out_w);
  EXPECT_EQ(height, out_h);
  EXPECT_TRUE(test::all_close(written, expected, {kByteTolerance, 0.0}, "scaled sobel-x"));
  // The scaling spans the whole range: both ends are present.
  EXPECT_EQ(*std::min_element(written.begin(), written.end()), 0.0);
  EXPECT_EQ(*std::max_element(written.begin(), written.end()), 255.0);
}

TEST_F(FilterTool, AbsAndRawOutputsMatchLoops) {
  int out_w = 0, out_h = 0;
  const std::vector<double> raw = reference_correlation(image, kSobelX, false, &out_w, &out_h);
  std::vector<double> magnitude = raw, clamped = raw;
  for (double& v : magnitude) v = std::fabs(v);
  for (double& v : clamped) v = std::clamp(v, 0.0, 255.0);
  ASSERT_TRUE(std::any_of(raw.begin(), raw.end(), [](double v) { return v < 0; }));

  const std::string in = "'" + dir.file("in.pgm") + "' ";
  test::ToolRun run = test::run_tool("filter --kernel sobel-x --padding valid --abs --device cpu " +
                                     in + dir.file("abs.pgm"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = test::run_tool("filter --kernel sobel-x --padding valid --raw --device cpu " + in +
                       dir.file("raw.pgm"));
  ASSERT_EQ(run.exit_code, 0) << run.output;

  int width = 0, height = 0;
  EXPECT_TRUE(test::all_close(read_pgm(dir.file("abs.pgm"), &width, &height),
                              reference_rescale(magnitude), {kByteTolerance, 0.0}, "--abs"));
  EXPECT_EQ(width, out_w);
  EXPECT_EQ(height, out_h);
  EXPECT_TRUE(test::all_close(read_pgm(dir.file("raw.pgm"), &width, &height), clamped,
                              {kByteTolerance, 0.0}, "--raw"));
}

TEST_F(FilterTool, PngRoundTripKeepsSize) {
  const test::ToolRun run = test::run_tool("filter --kernel gaussian --sigma 2 --device cpu '" +
                                           dir.file("in.pgm") + "' '" + dir.file("out.png") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const GrayImage written = read_gray_image(dir.file("out.png"));
  EXPECT_EQ(written.width, image.width);
  EXPECT_EQ(written.height, image.height);
}

TEST_F(FilterTool, SampleFromDataSetMatchesLoops) {
  const std::string data = test::fashion_mnist_dir();
  if (!std::filesystem::exists(data)) GTEST_SKIP() << "no Fashion-MNIST at " << data;
  constexpr int kSample = 7;
  const Dataset test_set = load_mnist_split(data, false);
  GrayImage sample;
  sample.width = test_set.width;
  sample.height = test_set.height;
  const std::size_t pixels = std::size_t(test_set.sample_size());
  for (std::size_t i = 0; i < pixels; ++i)
    sample.pixels.push_back(test_set.images[kSample * pixels + i]);

  const test::ToolRun run =
      test::run_tool("filter --kernel sobel-x --device cpu --sample " + std::to_string(kSample) +
                     " --data '" + data + "' '" + dir.file("sample.pgm") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  int out_w = 0, out_h = 0;
  const std::vector<double> expected =
      reference_rescale(reference_correlation(sample, kSobelX, true, &out_w, &out_h));
  int width = 0, height = 0;
  EXPECT_TRUE(test::all_close(read_pgm(dir.file("sample.pgm"), &width, &height), expected,
                              {kByteTolerance, 0.0}, "sample sobel-x"));
  EXPECT_EQ(width, 28);
  EXPECT_EQ(height, 28);
}

TEST_F(FilterTool, ErrorsExitOneWithAMessage) {
  const std::string in = "'" + dir.file("in.pgm") + "' '" + dir.file("out.pgm") + "'";
  test::ToolRun run = test::run_tool("filter --kernel no-such-kernel --device cpu " + in);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("no-such-kernel"), std::string::npos) << run.output;

  run = test::run_tool("filter --kernel sobel-x --device cpu '" + dir.file("missing.pgm") + "' '" +
                       dir.file("out.pgm") + "'");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("missing.pgm"), std::string::npos) << run.output;

  if (std::filesystem::exists(test::fashion_mnist_dir())) {
    run = test::run_tool("filter --kernel sobel-x --device cpu --sample 99999999 --data '" +
                         test::fashion_mnist_dir() + "' '" + dir.file("out.pgm") + "'");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.output.find("--sample 99999999"), std::string::npos) << run.output;
  }

  run = test::run_tool("filter --kernel sobel-x --device cpu '" + dir.file("in.pgm") +
                       "'");  // OUT missing
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("IN OUT"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace cnnrt
