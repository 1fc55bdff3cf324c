// Data sets once loaded: subsets, normalised samples, where the files live. Reading the IDX files
// is host/idx.cpp.
#include "cnnrt/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "cnnrt/error.hpp"
#include "host/normalization.hpp"
#include "kernels/cpu/data.hpp"

namespace cnnrt {

namespace {
std::string join_floats(const std::vector<float>& values) {
  std::string text;
  for (float v : values) text += fmt::format("{}{}", text.empty() ? "" : ",", v);
  return text;
}
}  // namespace

void Normalization::check(int channels) const {
  auto counts = [&] { return fmt::format("{} means and {} stds", mean.size(), std.size()); };
  if (mean.empty() || mean.size() != std.size())
    throw Error(
        fmt::format("normalisation needs as many means as stds (1, or one per channel), "
                    "got {}",
                    counts()));
  if (mean.size() != 1 && int(mean.size()) != channels)
    throw Error(fmt::format("normalisation has {} for images of {} channel{} (1 or {} each)",
                            counts(), channels, channels == 1 ? "" : "s", channels));
  if (mean.size() > std::size_t(NormalizeParams::kMaxChannels))
    throw Error(fmt::format("normalisation per channel supports up to {} channels, got {}",
                            NormalizeParams::kMaxChannels, mean.size()));
  for (std::size_t c = 0; c < mean.size(); ++c) {
    if (!std::isfinite(mean[c]))
      throw Error(fmt::format("normalisation mean {} is not a finite number", mean[c]));
    if (!(std[c] > 0.0f) || !std::isfinite(std[c]))
      throw Error(fmt::format("normalisation std must be positive, got {}", std[c]));
  }
}

std::string Normalization::mean_text() const {
  return join_floats(mean);
}
std::string Normalization::std_text() const {
  return join_floats(std);
}

NormalizeParams to_normalize_params(const Normalization& norm, int channels, int plane) {
  norm.check(channels);
  NormalizeParams p;
  p.channels = int(norm.mean.size());
  p.plane = p.channels > 1 ? plane : 1;
  for (int c = 0; c < p.channels; ++c)
    p.mean[c] = norm.mean[std::size_t(c)], p.std[c] = norm.std[std::size_t(c)];
  return p;
}

Normalization compute_normalization(const Dataset& data) {
  if (data.count <= 0 || data.sample_size() <= 0)
    throw Error("cannot compute a normalisation from an empty data set");
  const std::size_t plane = std::size_t(data.height) * std::size_t(data.width);
  // Byte histograms per channel: exact counts, then double sums in a fixed order.
  std::vector<std::uint64_t> counts(std::size_t(data.channels) * 256, 0);
  const std::uint8_t* p = data.image_data();
  for (int s = 0; s < data.count; ++s)
    for (int c = 0; c < data.channels; ++c) {
      std::uint64_t* h = counts.data() + std::size_t(c) * 256;
      for (std::size_t i = 0; i < plane; ++i) ++h[*p++];
    }
  Normalization n;
  n.mean.assign(std::size_t(data.channels), 0.0f);
  n.std.assign(std::size_t(data.channels), 1.0f);
  const double total = double(data.count) * double(plane);
  for (int c = 0; c < data.channels; ++c) {
    const std::uint64_t* h = counts.data() + std::size_t(c) * 256;
    double sum = 0;
    for (int b = 0; b < 256; ++b) sum += double(h[b]) * (b / 255.0);
    const double mean = sum / total;
    double squares = 0;
    for (int b = 0; b < 256; ++b) squares += double(h[b]) * (b / 255.0 - mean) * (b / 255.0 - mean);
    const double sd = std::sqrt(squares / total);
    n.mean[std::size_t(c)] = float(mean);
    n.std[std::size_t(c)] = sd > 0 ? float(sd) : 1.0f;
  }
  return n;
}

std::vector<float> parse_float_list(const std::string& text, const std::string& what) {
  std::vector<float> values;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    char* stop = nullptr;
    const float v = item.empty() ? 0.0f : std::strtof(item.c_str(), &stop);
    if (item.empty() || stop != item.c_str() + item.size() || !std::isfinite(v))
      throw Error(
          fmt::format("{} '{}': '{}' is not a number (a comma list of numbers, e.g. "
                      "0.5 or 0.49,0.48,0.45)",
                      what, text, item));
    values.push_back(v);
    start = end + 1;
  }
  return values;
}

std::vector<float> normalized_samples(const Dataset& data, int first, int count,
                                      const Normalization& norm) {
  if (first < 0 || count < 0 || first + count > data.count)
    throw Error(fmt::format("samples [{}, {}) are outside the data set's {} samples", first,
                            first + count, data.count));
  std::vector<std::int32_t> indices(static_cast<std::size_t>(count));
  std::iota(indices.begin(), indices.end(), first);
  std::vector<float> images(std::size_t(count) * std::size_t(data.sample_size()));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(count));
  cpu::gather_batch(to_normalize_params(norm, data.channels, data.height * data.width),
                    AugmentParams{}, count, data.sample_size(), data.image_data(),
                    data.labels.data(), indices.data(), images.data(), labels.data());
  return images;
}

Augmentation parse_augmentation(const std::string& spec) {
  Augmentation a;
  if (spec.empty() || spec == "none") return a;
  auto bad = [&](const std::string& why) {
    return Error(
        fmt::format("augmentation '{}': {} (a comma list of crop:P and flip, e.g. "
                    "crop:4,flip; or none)",
                    spec, why));
  };
  std::size_t start = 0;
  while (start <= spec.size()) {
    const std::size_t end = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, end - start);
    if (item == "flip") {
      if (a.flip) throw bad("flip given twice");
      a.flip = true;
    } else if (item.rfind("crop:", 0) == 0) {
      const std::string number = item.substr(5);
      if (a.crop_padding > 0) throw bad("crop given twice");
      if (number.empty() || number.size() > 4 ||
          !std::all_of(number.begin(), number.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw bad(fmt::format("'{}' is not crop:P with P a whole number", item));
      a.crop_padding = std::stoi(number);
      if (a.crop_padding < 1) throw bad("the crop padding must be at least 1");
    } else {
      throw bad(item.empty() ? std::string("an empty item")
                             : fmt::format("unknown item '{}'", item));
    }
    start = end + 1;
  }
  return a;
}

std::string to_string(const Augmentation& a) {
  if (!a.enabled()) return "none";
  std::string spec = a.crop_padding > 0 ? fmt::format("crop:{}", a.crop_padding) : "";
  if (a.flip) spec += spec.empty() ? "flip" : ",flip";
  return spec;
}

Dataset Dataset::take(int limit) const {
  if (limit < 0) throw Error(fmt::format("Dataset::take: limit {} is negative", limit));
  Dataset subset = *this;
  subset.count = std::min(limit, count);
  const std::size_t sample = static_cast<std::size_t>(sample_size());
  if (!mapped_images) subset.images.resize(static_cast<std::size_t>(subset.count) * sample);
  subset.labels.resize(static_cast<std::size_t>(subset.count));
  return subset;
}

std::string default_data_dir() {
  const char* from_environment = std::getenv("CNNRT_DATA_DIR");
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return "/usr/share/datasets/fashion-mnist";
}

}  // namespace cnnrt
