#pragma once
// Image-classification data sets in the IDX format (MNIST, Fashion-MNIST), gzipped or plain.
// Every file is validated before use: magic number, element type, dimensions, the byte count
// against the header, label range, and image/label counts. Problems throw cnnrt::Error naming the
// file and what is wrong.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"

namespace cnnrt {

// A labelled image set held as bytes, exactly as stored in the IDX files. The images are either
// in `images` or, for an image folder read from its cache, in the memory-mapped cache file
// (`mapped_images`, `images` then empty): pages are read from the file as they are touched, so a
// set larger than memory can be trained on, and the CPU backend gathers batches straight from it.
struct CNNRT_API Dataset {
  int count = 0;
  int channels = 1;
  int height = 0;
  int width = 0;
  int classes = 10;
  std::vector<std::uint8_t> images;      // [count, channels * height * width], row-major pixels
  std::vector<std::uint8_t> labels;      // [count], each < classes
  std::vector<std::string> class_names;  // [classes] when the format names them, else empty
  // The same bytes as `images` in a read-only file mapping, which the pointer keeps alive.
  std::shared_ptr<const std::uint8_t> mapped_images;

  // Bytes per image: channels * height * width.
  int sample_size() const { return channels * height * width; }
  // The image bytes, wherever they are held: [count, sample_size()].
  const std::uint8_t* image_data() const {
    return mapped_images ? mapped_images.get() : images.data();
  }
  std::size_t image_data_size() const {
    return mapped_images ? std::size_t(count) * std::size_t(sample_size()) : images.size();
  }
  // The first `limit` samples (all of them when limit >= count); limit < 0 throws. A mapped set's
  // subset shares its mapping.
  Dataset take(int limit) const;
};

// Reads one IDX file of unsigned bytes (type 0x08), gzipped (magic 1f 8b) or plain, and returns
// its data after checking the header and that the data is exactly product(dims) bytes long.
// `dims` (may be null) receives the dimensions, outermost first.
CNNRT_API std::vector<std::uint8_t> read_idx_file(const std::string& path, std::vector<int>* dims);

// The same checks on a file held in memory (gzipped or plain); `name` names it in messages. The
// data is never allocated past what the bytes hold, nor inflated past the header's promise.
CNNRT_API std::vector<std::uint8_t> parse_idx(const std::uint8_t* bytes, std::size_t size,
                                              const std::string& name, std::vector<int>* dims);

// Writes a plain (not gzipped) IDX file of unsigned bytes; bytes.size() must be product(dims).
CNNRT_API void write_idx_file(const std::string& path, const std::vector<int>& dims,
                              const std::vector<std::uint8_t>& bytes);

// Loads an images file (magic 0x00000803, [count, height, width]) and a labels file (magic
// 0x00000801, [count]) and checks that the counts agree and every label is < classes.
CNNRT_API Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                                   int classes = 10);

// Loads the train or test (t10k) split from `dir`: {train,t10k}-images-idx3-ubyte[.gz] and
// {train,t10k}-labels-idx1-ubyte[.gz], labels checked against `classes`. A missing file gives an
// error naming the directory and the files looked for.
CNNRT_API Dataset load_mnist_split(const std::string& dir, bool train, int classes = 10);

// The normalisation IDX data gets unless told otherwise (Fashion-MNIST's pixel mean and standard
// deviation of byte / 255 over its training set), and that checkpoints written before the
// normalisation was recorded were trained with.
inline constexpr float kIdxDefaultMean = 0.2860f;
inline constexpr float kIdxDefaultStd = 0.3530f;

// Normalisation x = (byte / 255 - mean[c]) / std[c] of channel c: one value for every channel, or
// one per channel.
struct CNNRT_API Normalization {
  std::vector<float> mean{kIdxDefaultMean};
  std::vector<float> std{kIdxDefaultStd};

  // Throws cnnrt::Error unless mean and std both have 1 or `channels` values, the same count, all
  // finite, std > 0; `channels` at most the gather's 16 when given per channel.
  void check(int channels) const;
  // "0.4914,0.4822,0.4465" style: the values, comma-separated, each read back to the same float.
  std::string mean_text() const;
  std::string std_text() const;
};

// The mean and (population) standard deviation of byte / 255 of each channel over all of `data`'s
// images, in double sums; a channel whose values are all equal gets std 1. Throws on an empty set.
CNNRT_API Normalization compute_normalization(const Dataset& data);

// A comma list of numbers ("0.5" or "0.49,0.48,0.45") as floats; throws cnnrt::Error naming
// `what` for text that is not one.
CNNRT_API std::vector<float> parse_float_list(const std::string& text, const std::string& what);

// Augmentation of training batches, drawn in the batch gather on the backend (CPU and CUDA draw
// the same bits): a random crop of the image padded by `crop_padding` zero bytes on each side,
// and random horizontal flips. Off by default.
struct CNNRT_API Augmentation {
  int crop_padding = 0;
  bool flip = false;
  bool enabled() const { return crop_padding > 0 || flip; }
};

// "" or "none": off; otherwise a comma list of "crop:P" (P >= 1) and "flip", e.g. "crop:4,flip".
// Throws cnnrt::Error naming the spec otherwise.
CNNRT_API Augmentation parse_augmentation(const std::string& spec);
CNNRT_API std::string to_string(const Augmentation& augmentation);  // the spec, "none" when off

// Samples [first, first + count) of `data` as float, normalised as the training loop's batch
// gather does (the same kernel: kernels/cpu/data.cpp): [count, C, H, W].
CNNRT_API std::vector<float> normalized_samples(const Dataset& data, int first, int count,
                                                const Normalization& norm = {});

// Where the data sets live: $CNNRT_DATA_DIR when set, else "/usr/share/datasets/fashion-mnist"
// (Debian's dataset-fashion-mnist package).
CNNRT_API std::string default_data_dir();

}  // namespace cnnrt
