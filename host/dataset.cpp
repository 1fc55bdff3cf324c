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
  cpu::gather_batch(NormalizeParams{mean, std}, count, data.sample_size(), data.images.data(),
                    data.labels.data(), indices.data(), images.data(), labels.data());
  return images;
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
