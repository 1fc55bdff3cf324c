// `cnnrt filter`: a classic kernel over a grayscale image (a file, or one test-set sample), run by
// the same convolution the networks train with.
#include "cnnrt/filter.hpp"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/filters.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct FilterArgs {
  std::string kernel;
  float sigma = 1.0f;
  std::string device = "auto";
  std::string padding = "same";
  int sample = -1;  // < 0: read the image from a file
  std::string data = default_data_dir();
  bool magnitude = false;
  bool raw = false;
  std::vector<std::string> files;  // IN OUT, or OUT with --sample
};

// Test-set image `index` of the IDX data set in `dir`, bytes as 0..255 intensities.
GrayImage dataset_image(const std::string& dir, int index) {
  const Dataset test = load_mnist_split(dir, false);
  if (index < 0 || index >= test.count)
    throw Error(fmt::format("--sample {}: the test set in {} has images 0..{}", index, dir,
                            test.count - 1));
  if (test.channels != 1)
    throw Error(
        fmt::format("--sample: images in {} have {} channels, filter needs 1", dir, test.channels));
  GrayImage image;
  image.width = test.width;
  image.height = test.height;
  const std::size_t pixels = std::size_t(test.sample_size());
  const std::uint8_t* first = test.image_data() + std::size_t(index) * pixels;
  image.pixels.assign(first, first + pixels);
  return image;
}

}  // namespace

void add_filter_command(CLI::App& app) {
  auto args = std::make_shared<FilterArgs>();
  FilterArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "filter", "Apply a classic kernel (Sobel, Gaussian, Haar, ...) to a grayscale image");
  std::string names;
  for (const auto& name : classic_kernel_names()) names += (names.empty() ? "" : ", ") + name;
  cmd->add_option("--kernel", a.kernel, "Kernel: " + names)->required();
  cmd->add_option("--sigma", a.sigma, "Gaussian standard deviation (gaussian only)")
      ->capture_default_str();
  add_device_option(cmd, a.device);
  cmd->add_option("--padding", a.padding, "same (output the input's size) or valid")
      ->check(CLI::IsMember({"same", "valid"}))
      ->capture_default_str();
  cmd->add_option("--sample", a.sample,
                  "Filter test image K of the IDX data set instead of IN (then only OUT is given)")
      ->check(non_negative_number());
  add_data_option(cmd, a.data, "Directory with MNIST-format IDX files (for --sample)");
  CLI::Option* abs_flag =
      cmd->add_flag("--abs", a.magnitude, "Write magnitudes |v|, scaled min..max to 0..255");
  cmd->add_flag("--raw", a.raw, "Write the values clamped to 0..255, not scaled")
      ->excludes(abs_flag);
  cmd->add_option("files", a.files, "IN OUT (PNG or PGM), or OUT alone with --sample")->required();
  cmd->callback([args] {
    const FilterArgs& a = *args;
    const bool from_sample = a.sample >= 0;
    const std::size_t wanted = from_sample ? 1 : 2;
    if (a.files.size() != wanted)
      throw Error(fmt::format("filter takes {}, got {} file name{}",
                              from_sample ? "OUT (with --sample)" : "IN OUT", a.files.size(),
                              a.files.size() == 1 ? "" : "s"));
    int kh = 0, kw = 0;
    const std::vector<float> kernel = classic_kernel(a.kernel, &kh, &kw, a.sigma);
    const GrayImage image =
        from_sample ? dataset_image(a.data, a.sample) : read_gray_image(a.files[0]);
    const Device device = resolve_device(a.device);
    const Padding padding = a.padding == "valid" ? Padding::valid() : Padding::same();
    const GrayImage response = apply_filter(image, kernel, kh, kw, device, padding);
    const ResponseScaling scaling = a.raw         ? ResponseScaling::clamp
                                    : a.magnitude ? ResponseScaling::magnitude
                                                  : ResponseScaling::rescale;
    const std::string& out = a.files.back();
    write_gray_image(out, scale_response(response, scaling));
    fmt::print("{} {}x{} -> {} {}x{} ({}, {} padding, {})\n",
               from_sample ? fmt::format("sample {}", a.sample) : a.files[0], image.width,
               image.height, out, response.width, response.height, a.kernel, a.padding,
               to_string(device));
  });
}

}  // namespace cnnrt::cli
