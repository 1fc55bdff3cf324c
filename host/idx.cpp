// IDX data set files (MNIST / Fashion-MNIST), gzipped or plain. The header is big-endian:
//   [0, 0, type, ndims] then ndims uint32 dimensions, then product(dims) elements.
// The reader streams exactly the bytes the header promises and then checks for end of file, so a
// truncated file, trailing bytes, or a gzip bomb never makes us read or allocate past the header.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "kernels/cpu/data.hpp"

namespace cnnrt {
namespace {

constexpr std::uint8_t kIdxTypeUnsignedByte = 0x08;
constexpr int kIdxMaxDims = 8;
// Larger than any image data set we train on (ImageNet-scale would not fit in device memory).
constexpr std::uint64_t kIdxMaxDataBytes = std::uint64_t{1} << 32;
constexpr std::uint32_t kIdxImagesMagic = 0x00000803;
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;

// One input file, read through zlib when it starts with the gzip magic, through stdio otherwise.
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
    std::FILE* probe = std::fopen(path.c_str(), "rb");
    if (probe == nullptr)
      throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    unsigned char magic[2] = {0, 0};
    const std::size_t got = std::fread(magic, 1, 2, probe);
    gzipped_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (gzipped_) {
      std::fclose(probe);
      gz_ = gzopen(path.c_str(), "rb");
      if (gz_ == nullptr) throw Error(fmt::format("{}: cannot open as gzip", path));
    } else {
      std::rewind(probe);
      file_ = probe;
    }
  }
  ~ByteSource() {
    if (gz_ != nullptr) gzclose(gz_);
    if (file_ != nullptr) std::fclose(file_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzipped() const { return gzipped_; }

  // Reads up to `size` bytes; returns how many were read (fewer only at end of data). A corrupt
  // or truncated gzip stream throws.
  std::size_t read(void* buffer, std::size_t size) {
    auto* out = static_cast<unsigned char*>(buffer);
    std::size_t total = 0;
    while (total < size) {
      const std::size_t chunk = std::min<std::size_t>(size - total, std::size_t{1} << 30);
      std::size_t got = 0;
      if (gzipped_) {
        const int n = gzread(gz_, out + total, static_cast<unsigned>(chunk));
        if (n < 0) throw_gzip_error();
        got = static_cast<std::size_t>(n);
      } else {
        got = std::fread(out + total, 1, chunk, file_);
        if (got < chunk && std::ferror(file_))
          throw Error(fmt::format("{}: read error: {}", path_, std::strerror(errno)));
      }
      total += got;
      if (got < chunk) break;
    }
    // zlib reports a stream cut short ("unexpected end of file") only through gzerror.
    if (gzipped_ && total < size) {
      int code = Z_OK;
      gzerror(gz_, &code);
      if (code != Z_OK) throw_gzip_error();
    }
    return total;
  }

 private:
  [[noreturn]] void throw_gzip_error() {
    int code = Z_OK;
    const char* message = gzerror(gz_, &code);
    throw Error(fmt::format("{}: corrupt or truncated gzip data: {}", path_,
                            message != nullptr ? message : "unknown zlib error"));
  }

  std::string path_;
  bool gzipped_ = false;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
};

std::uint32_t read_big_endian_u32(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

std::string dims_to_string(const std::vector<int>& dims) {
  return fmt::format("{}", fmt::join(dims, "x"));
}

// Reads and validates an IDX file of unsigned bytes; `what` names the data in messages.
std::vector<std::uint8_t> read_idx(const std::string& path, std::vector<int>* dims_out,
                                   const char* what) {
  ByteSource source(path);
  unsigned char magic_bytes[4];
  if (source.read(magic_bytes, 4) != 4)
    throw Error(fmt::format("{}: too short for an IDX header (fewer than 4 bytes)", path));
  const std::uint32_t magic = read_big_endian_u32(magic_bytes);
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0)
    throw Error(fmt::format(
        "{}: not an IDX file: magic number 0x{:08x} does not start with two zero bytes{}", path,
        magic, source.gzipped() ? "" : " (and the file is not gzipped)"));
  if (magic_bytes[2] != kIdxTypeUnsignedByte)
    throw Error(
        fmt::format("{}: IDX element type 0x{:02x} is not supported, only unsigned bytes "
                    "(0x08)",
                    path, magic_bytes[2]));
  const int ndims = magic_bytes[3];
  if (ndims < 1 || ndims > kIdxMaxDims)
    throw Error(fmt::format("{}: IDX header has {} dimensions, expected 1 to {}", path, ndims,
                            kIdxMaxDims));

  std::vector<unsigned char> dim_bytes(4 * static_cast<std::size_t>(ndims));
  if (source.read(dim_bytes.data(), dim_bytes.size()) != dim_bytes.size())
    throw Error(
        fmt::format("{}: truncated IDX header: {} dimensions announced but the file ends "
                    "before them",
                    path, ndims));
  std::vector<int> dims(static_cast<std::size_t>(ndims));
  std::uint64_t data_bytes = 1;
  for (int d = 0; d < ndims; ++d) {
    const std::uint32_t dim = read_big_endian_u32(&dim_bytes[4 * static_cast<std::size_t>(d)]);
    if (dim == 0 || dim > static_cast<std::uint32_t>(std::numeric_limits<int>::max()))
      throw Error(fmt::format("{}: IDX dimension {} is {}, expected 1 to {}", path, d, dim,
                              std::numeric_limits<int>::max()));
    data_bytes *= dim;
    if (data_bytes > kIdxMaxDataBytes)
      throw Error(fmt::format("{}: IDX dimensions describe more than {} bytes of data", path,
                              kIdxMaxDataBytes));
    dims[static_cast<std::size_t>(d)] = static_cast<int>(dim);
  }

  std::vector<std::uint8_t> data(static_cast<std::size_t>(data_bytes));
  const std::size_t got = source.read(data.data(), data.size());
  if (got != data.size())
    throw Error(fmt::format("{}: expected {} bytes of {} ({}), found {}", path, data.size(), what,
                            dims_to_string(dims), got));
  unsigned char extra[256];
  const std::size_t trailing = source.read(extra, sizeof(extra));
  if (trailing != 0)
    throw Error(
        fmt::format("{}: {}{} trailing bytes after the {} bytes of {} ({}); the header "
                    "does not match the data",
                    path, trailing == sizeof(extra) ? "at least " : "", trailing, data.size(), what,
                    dims_to_string(dims)));
  if (dims_out != nullptr) *dims_out = std::move(dims);
  return data;
}

bool file_exists(const std::string& path) {
  std::error_code ignored;
  return std::filesystem::is_regular_file(path, ignored);
}

// The first of name.gz and name that exists in dir, or "" when neither does.
std::string find_idx_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {name + ".gz", name}) {
    const std::string path = (std::filesystem::path(dir) / candidate).string();
    if (file_exists(path)) return path;
  }
  return {};
}

}  // namespace

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

std::vector<std::uint8_t> read_idx_file(const std::string& path, std::vector<int>* dims) {
  return read_idx(path, dims, "data");
}

void write_idx_file(const std::string& path, const std::vector<int>& dims,
                    const std::vector<std::uint8_t>& bytes) {
  if (dims.empty() || dims.size() > static_cast<std::size_t>(kIdxMaxDims))
    throw Error(fmt::format("{}: cannot write an IDX file with {} dimensions (1 to {})", path,
                            dims.size(), kIdxMaxDims));
  std::uint64_t expected = 1;
  for (int dim : dims) {
    if (dim <= 0)
      throw Error(fmt::format("{}: cannot write IDX dimensions {}: every dimension must be > 0",
                              path, dims_to_string(dims)));
    expected *= static_cast<std::uint64_t>(dim);
  }
  if (expected != bytes.size())
    throw Error(fmt::format("{}: IDX dimensions {} need {} bytes, got {}", path,
                            dims_to_string(dims), expected, bytes.size()));

  std::vector<unsigned char> header = {0, 0, kIdxTypeUnsignedByte,
                                       static_cast<unsigned char>(dims.size())};
  for (int dim : dims) {
    const auto value = static_cast<std::uint32_t>(dim);
    header.push_back(static_cast<unsigned char>(value >> 24));
    header.push_back(static_cast<unsigned char>(value >> 16));
    header.push_back(static_cast<unsigned char>(value >> 8));
    header.push_back(static_cast<unsigned char>(value));
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr)
    throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
  const bool ok = std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
                  std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
  const bool closed = std::fclose(file) == 0;
  if (!ok || !closed) throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int classes) {
  if (classes < 1 || classes > 256)
    throw Error(
        fmt::format("load_idx_dataset: {} classes, expected 1 to 256 (labels are bytes)", classes));
  std::vector<int> image_dims;
  std::vector<std::uint8_t> images = read_idx(images_path, &image_dims, "pixels");
  // The type byte is already checked; the magic's dimension byte says what kind of file it is.
  if (image_dims.size() != 3)
    throw Error(
        fmt::format("{}: expected an images file (magic 0x{:08x}, 3 dimensions), found {} "
                    "dimensions ({})",
                    images_path, kIdxImagesMagic, image_dims.size(), dims_to_string(image_dims)));
  std::vector<int> label_dims;
  std::vector<std::uint8_t> labels = read_idx(labels_path, &label_dims, "labels");
  if (label_dims.size() != 1)
    throw Error(
        fmt::format("{}: expected a labels file (magic 0x{:08x}, 1 dimension), found {} "
                    "dimensions ({})",
                    labels_path, kIdxLabelsMagic, label_dims.size(), dims_to_string(label_dims)));
  if (image_dims[0] != label_dims[0])
    throw Error(fmt::format("{} holds {} images but {} holds {} labels", images_path, image_dims[0],
                            labels_path, label_dims[0]));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes)
      throw Error(fmt::format("{}: label {} of sample {} is out of range for {} classes (0 to {})",
                              labels_path, labels[i], i, classes, classes - 1));
  }
  Dataset dataset;
  dataset.count = image_dims[0];
  dataset.channels = 1;
  dataset.height = image_dims[1];
  dataset.width = image_dims[2];
  dataset.classes = classes;
  dataset.images = std::move(images);
  dataset.labels = std::move(labels);
  return dataset;
}

Dataset load_mnist_split(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte";
  const std::string labels_name = prefix + "-labels-idx1-ubyte";
  const std::string images_path = find_idx_file(dir, images_name);
  const std::string labels_path = find_idx_file(dir, labels_name);
  if (images_path.empty() || labels_path.empty()) {
    std::error_code ignored;
    const bool dir_exists = std::filesystem::is_directory(dir, ignored);
    std::vector<std::string> missing;
    if (images_path.empty()) missing.push_back(images_name);
    if (labels_path.empty()) missing.push_back(labels_name);
    throw Error(fmt::format(
        "no {} split in {}{}: looked for {}[.gz] and {}[.gz]; missing: {} (set CNNRT_DATA_DIR to "
        "another directory, or install Debian's dataset-fashion-mnist)",
        train ? "training" : "test", dir, dir_exists ? "" : " (the directory does not exist)",
        images_name, labels_name, fmt::join(missing, ", ")));
  }
  return load_idx_dataset(images_path, labels_path, 10);
}

std::string default_data_dir() {
  const char* from_environment = std::getenv("CNNRT_DATA_DIR");
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return "/usr/share/datasets/fashion-mnist";
}

}  // namespace cnnrt
