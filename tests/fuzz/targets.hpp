#pragma once
// What the fuzzers run, shared by the libFuzzer targets (tests/fuzz/*_fuzz.cpp) and the test that
// replays their corpora and past crashes in the normal suite (tests/fuzz_replay_test.cpp). Each
// parses `size` bytes as its file kind: it returns for a valid file, throws cnnrt::Error for an
// invalid one, and throws std::logic_error when a parsed file breaks an invariant the parser
// promises (a bug, like any other exception or crash).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnrt/cifar.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/image.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "host/image_cache.hpp"

namespace cnnrt::fuzz {

inline void require(bool holds, const char* invariant) {
  if (!holds) throw std::logic_error(std::string("invariant broken: ") + invariant);
}

// The data is exactly product(dims) bytes.
inline void idx(const std::uint8_t* data, std::size_t size) {
  std::vector<int> dims;
  const std::vector<std::uint8_t> bytes = parse_idx(data, size, "fuzz.idx", &dims);
  std::uint64_t product = 1;
  for (int d : dims) {
    require(d > 0, "IDX dimensions are positive");
    product *= static_cast<std::uint64_t>(d);
  }
  require(!dims.empty() && product == bytes.size(), "IDX data is product(dims) bytes");
}

// CIFAR records: the first byte picks the layout (bit 0: CIFAR-100, bit 1: its coarse labels),
// the rest is the file. Every record became one image of 3x32x32 bytes and one label below the
// class count.
inline void cifar(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const CifarKind kind = (data[0] & 1) != 0 ? CifarKind::cifar100 : CifarKind::cifar10;
  const CifarLabels labels = (data[0] & 2) != 0 ? CifarLabels::coarse : CifarLabels::fine;
  const Dataset d = parse_cifar(data + 1, size - 1, "fuzz.bin", kind, labels);
  const std::size_t record = (kind == CifarKind::cifar10 ? 1 : 2) + std::size_t(kCifarPixels);
  require(d.count > 0 && std::size_t(d.count) * record == size - 1, "whole records only");
  require(d.images.size() == std::size_t(d.count) * kCifarPixels, "3x32x32 bytes a record");
  require(d.labels.size() == std::size_t(d.count), "one label a record");
  for (const std::uint8_t l : d.labels) require(l < d.classes, "labels below the class count");
}

// An image folder's cache file (host/image_cache.hpp): a parsed header sizes the file exactly,
// names every class, and every label is below the class count.
inline void image_cache(const std::uint8_t* data, std::size_t size) {
  const ImageCacheHeader h = parse_image_cache(data, size, "fuzz.cache");
  const std::uint64_t sample = std::uint64_t(h.channels) * h.height * h.width;
  require(h.header_bytes + std::uint64_t(h.count) * (sample + 1) == size,
          "a cache is its header, then count * (sample + 1) bytes");
  require(h.class_names.size() == std::size_t(h.classes), "a cache names every class");
  const std::uint8_t* labels = data + h.header_bytes + std::uint64_t(h.count) * sample;
  for (int i = 0; i < h.count; ++i) require(labels[i] < h.classes, "labels below the class count");
}

// Image files as image folders and `predict` read them: the first byte picks the channels (bit 0:
// 3, else 1) and the size to fit to (bits 1-3 and 4-6: 1 to 8 a side), the rest is the file.
// A decoded image holds width * height * channels bytes, and the fitted one exactly the size asked.
// At most 2^20 pixels, so that no input of the fuzzer's size needs a large allocation; only images
// of at most 2^16 pixels are fitted, since resizing under the sanitizers costs so much per pixel
// that a large image on a loaded machine passes the fuzzer's 10 s timeout (the resize is the same
// code at every size).
inline void image_decode(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const int channels = (data[0] & 1) != 0 ? 3 : 1;
  const int w = 1 + ((data[0] >> 1) & 7), h = 1 + ((data[0] >> 4) & 7);
  const ByteImage image = decode_image(data + 1, size - 1, "fuzz.img", channels, 1 << 20);
  require(image.width >= 1 && image.height >= 1 && image.channels == channels,
          "a decoded image has a size and the channels asked for");
  require(image.pixels.size() == std::size_t(image.width) * image.height * channels,
          "a decoded image is width * height * channels bytes");
  if (std::int64_t(image.width) * image.height > (1 << 16)) return;
  const ByteImage fitted = fit_image(image, w, h);
  require(fitted.width == w && fitted.height == h &&
              fitted.pixels.size() == std::size_t(w) * h * channels,
          "a fitted image has the size asked for");
}

// Every tensor holds product(shape) * dtype size bytes, and a tensor's bytes all came from the
// file (the tensors together are never larger than it).
inline void safetensors(const std::uint8_t* data, std::size_t size) {
  const SafeTensors file = SafeTensors::parse(data, size, "fuzz.safetensors");
  std::uint64_t total = 0;
  for (const std::string& name : file.names()) {
    const TensorData& t = file.get(name);
    const auto expected =
        static_cast<std::uint64_t>(t.element_count()) * safetensors_dtype_size(t.dtype);
    require(expected == t.bytes.size(), "a tensor is product(shape) * dtype size bytes");
    total += t.bytes.size();
  }
  require(total <= size, "tensors are not larger than the file");
}

// A parsed model writes back to JSON that parses to the same model.
inline void model_file(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const Network network = network_from_json(text, "fuzz.json");
  const std::string written = network_to_json(network);
  require(network_to_json(network_from_json(written, "fuzz.json")) == written,
          "a model file round-trips through network_to_json");
}

}  // namespace cnnrt::fuzz

// The libFuzzer entry point for one of the functions above: cnnrt::Error is the expected way to
// refuse input; anything else escapes, and the fuzzer reports it.
#define CNNRT_FUZZ_TARGET(function)                                                   \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    try {                                                                             \
      ::cnnrt::fuzz::function(data, size);                                            \
    } catch (const ::cnnrt::Error&) {                                                 \
    }                                                                                 \
    return 0;                                                                         \
  }
