// Data sets once loaded: subsets, normalised samples, where the files live. Reading the IDX files
// is host/idx.cpp.
#include "cnnrt/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "cnnrt/error.hpp"
#include "kernels/cpu/data.hpp"

namespace cnnrt {

std::vector<float> normalized_samples(const Dataset& data, int first, int count, float mean,
                                      float std) {
  if (first < 0 || count < 0 || first + count > data.count)
    throw Error(fmt::format("samples [{}, {}) are outside the data set's {} samples", first,
                            first + count, data.count));
  std::vector<std::int32_t> indices(static_cast<std::size_t>(count));
  std::iota(indices.begin(), indices.end(), first);
  std::vector<float> images(std::size_t(count) * std::size_t(data.sample_size()));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(count));
  cpu::gather_batch(NormalizeParams{mean, std}, AugmentParams{}, count, data.sample_size(),
                    data.images.data(), data.labels.data(), indices.data(), images.data(),
                    labels.data());
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
  subset.images.resize(static_cast<std::size_t>(subset.count) * sample);
  subset.labels.resize(static_cast<std::size_t>(subset.count));
  return subset;
}

std::string default_data_dir() {
  const char* from_environment = std::getenv("CNNRT_DATA_DIR");
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return "/usr/share/datasets/fashion-mnist";
}

}  // namespace cnnrt
