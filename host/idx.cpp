// IDX data set files (MNIST / Fashion-MNIST), gzipped or plain. The header is big-endian:
//   [0, 0, type, ndims] then ndims uint32 dimensions, then product(dims) elements.
// Files are read whole and parsed in memory (parse_idx, which the fuzzer calls too). A plain
// file's data length is checked against the header before anything is allocated for it; a gzip
// stream is inflated piece by piece into a buffer that grows with what really comes out, never
// past the header's promise plus one byte (to see that the data ends there), so neither a lying
// header nor a gzip bomb makes us allocate or inflate more than the file holds.
// A one-member gzip file is first inflated in one call by libdeflate (about twice zlib's speed),
// into a buffer of the size its trailer states, capped by deflate's largest ratio; whenever that
// does not give exactly one valid IDX file, the zlib path above runs and says what is wrong.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "host/file_bytes.hpp"

namespace cnnrt {
namespace {

constexpr std::uint8_t kIdxTypeUnsignedByte = 0x08;
constexpr int kIdxMaxDims = 8;
// Larger than any image data set we train on (ImageNet-scale would not fit in device memory).
constexpr std::uint64_t kIdxMaxDataBytes = std::uint64_t{1} << 32;
// The largest IDX file, plain (header + data) or gzipped (stored deflate blocks add 5 bytes per
// 64 KiB, so a little slack on top).
constexpr std::uint64_t kIdxMaxFileBytes = kIdxMaxDataBytes + (kIdxMaxDataBytes >> 10) + 4096;
constexpr std::uint32_t kIdxImagesMagic = 0x00000803;
constexpr std::uint32_t kIdxLabelsMagic = 0x00000801;
// A gzip stream's inflated output goes into a buffer grown in steps from this size, doubling.
constexpr std::size_t kInflateFirstBytes = std::size_t{1} << 16;

bool is_gzip(const std::uint8_t* bytes, std::size_t size) {
  return size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// The input of the IDX parser: the bytes as they are, or inflated from gzip.
class IdxInput {
 public:
  virtual ~IdxInput() = default;
  // Up to `size` bytes; fewer only at the end of the data.
  virtual std::size_t read(std::uint8_t* out, std::size_t size) = 0;
};

class PlainInput final : public IdxInput {
 public:
  PlainInput(const std::uint8_t* bytes, std::size_t size) : next_(bytes), left_(size) {}
  std::size_t read(std::uint8_t* out, std::size_t size) override {
    const std::size_t n = std::min(size, left_);
    if (n > 0) std::memcpy(out, next_, n);
    next_ += n;
    left_ -= n;
    return n;
  }
  std::size_t remaining() const { return left_; }
  const std::uint8_t* position() const { return next_; }

 private:
  const std::uint8_t* next_;
  std::size_t left_;
};

// A gzip stream of one or more members, inflated only as far as read() asks. A stream cut short,
// corrupt deflate data, a bad checksum, or bytes after the last member that are not another
// member all throw.
class GzipInput final : public IdxInput {
 public:
  GzipInput(const std::uint8_t* bytes, std::size_t size, const std::string& name)
      : bytes_(bytes), size_(size), name_(name) {
    // 15 + 16: a gzip wrapper (not zlib's), the largest window.
    if (inflateInit2(&stream_, 15 + 16) != Z_OK)
      throw Error(fmt::format("{}: cannot start inflating gzip data: out of memory", name_));
  }
  ~GzipInput() override { inflateEnd(&stream_); }
  GzipInput(const GzipInput&) = delete;
  GzipInput& operator=(const GzipInput&) = delete;

  std::size_t read(std::uint8_t* out, std::size_t size) override {
    std::size_t total = 0;
    while (total < size && !finished_) {
      if (stream_.avail_in == 0) refill();
      const auto room =
          static_cast<uInt>(std::min<std::size_t>(size - total, std::numeric_limits<uInt>::max()));
      stream_.next_out = out + total;
      stream_.avail_out = room;
      const int status = inflate(&stream_, Z_NO_FLUSH);
      total += room - stream_.avail_out;
      if (status == Z_STREAM_END) {
        next_member();
      } else if (status == Z_BUF_ERROR && stream_.avail_in == 0 && consumed() == size_) {
        throw Error(fmt::format(
            "{}: truncated gzip data: the file ends inside the compressed stream", name_));
      } else if (status != Z_OK && status != Z_BUF_ERROR) {
        throw Error(fmt::format("{}: corrupt gzip data: {}", name_,
                                stream_.msg != nullptr ? stream_.msg : zError(status)));
      }
    }
    return total;
  }

 private:
  std::size_t consumed() const {
    return stream_.next_in == nullptr ? 0 : static_cast<std::size_t>(stream_.next_in - bytes_);
  }
  void refill() {
    const std::size_t at = consumed();
    stream_.next_in = const_cast<Bytef*>(bytes_ + at);  // zlib's API is not const-correct
    stream_.avail_in =
        static_cast<uInt>(std::min<std::size_t>(size_ - at, std::numeric_limits<uInt>::max()));
  }
  // After a member's end: the data ends here, another member follows, or the rest is garbage.
  void next_member() {
    const std::size_t at = consumed();
    if (at == size_) {
      finished_ = true;
      return;
    }
    if (!is_gzip(bytes_ + at, size_ - at))
      throw Error(
          fmt::format("{}: {} bytes after the end of the gzip stream are not gzip data (trailing "
                      "garbage)",
                      name_, size_ - at));
    inflateReset(&stream_);
  }

  const std::uint8_t* bytes_;
  std::size_t size_;
  std::string name_;
  z_stream stream_{};
  bool finished_ = false;
};

std::uint32_t read_big_endian_u32(const unsigned char* bytes) {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
         (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

std::string dims_to_string(const std::vector<int>& dims) {
  return fmt::format("{}", fmt::join(dims, "x"));
}

// Reads and checks the header: magic, element type and dimensions. Returns the data's byte count
// (product(dims), at most kIdxMaxDataBytes).
std::uint64_t read_header(IdxInput& input, const std::string& name, bool gzipped,
                          std::vector<int>* dims) {
  unsigned char magic_bytes[4];
  if (input.read(magic_bytes, 4) != 4)
    throw Error(fmt::format("{}: too short for an IDX header (fewer than 4 bytes{})", name,
                            gzipped ? " after inflating" : ""));
  const std::uint32_t magic = read_big_endian_u32(magic_bytes);
  if (magic_bytes[0] != 0 || magic_bytes[1] != 0)
    throw Error(fmt::format(
        "{}: not an IDX file: magic number 0x{:08x} does not start with two zero bytes{}", name,
        magic, gzipped ? "" : " (and the file is not gzipped)"));
  if (magic_bytes[2] != kIdxTypeUnsignedByte)
    throw Error(
        fmt::format("{}: IDX element type 0x{:02x} is not supported, only unsigned bytes "
                    "(0x08)",
                    name, magic_bytes[2]));
  const int ndims = magic_bytes[3];
  if (ndims < 1 || ndims > kIdxMaxDims)
    throw Error(fmt::format("{}: IDX header has {} dimensions, expected 1 to {}", name, ndims,
                            kIdxMaxDims));

  unsigned char dim_bytes[4 * kIdxMaxDims];
  const std::size_t dim_size = 4 * static_cast<std::size_t>(ndims);
  if (input.read(dim_bytes, dim_size) != dim_size)
    throw Error(
        fmt::format("{}: truncated IDX header: {} dimensions announced but the file ends "
                    "before them",
                    name, ndims));
  dims->assign(static_cast<std::size_t>(ndims), 0);
  std::uint64_t data_bytes = 1;
  for (int d = 0; d < ndims; ++d) {
    const std::uint32_t dim = read_big_endian_u32(&dim_bytes[4 * d]);
    if (dim == 0 || dim > static_cast<std::uint32_t>(std::numeric_limits<int>::max()))
      throw Error(fmt::format("{}: IDX dimension {} is {}, expected 1 to {}", name, d, dim,
                              std::numeric_limits<int>::max()));
    // Both factors are below 2^32 here, so the product cannot wrap before it is checked.
    data_bytes *= dim;
    if (data_bytes > kIdxMaxDataBytes)
      throw Error(fmt::format("{}: IDX dimensions describe more than {} bytes of data", name,
                              kIdxMaxDataBytes));
    (*dims)[static_cast<std::size_t>(d)] = static_cast<int>(dim);
  }
  return data_bytes;
}

[[noreturn]] void throw_short_data(const std::string& name, std::uint64_t expected,
                                   std::uint64_t found, const char* what,
                                   const std::vector<int>& dims) {
  throw Error(fmt::format("{}: expected {} bytes of {} ({}), found {} (the file is truncated)",
                          name, expected, what, dims_to_string(dims), found));
}

// The plain (not gzipped) IDX file in bytes.
std::vector<std::uint8_t> parse_plain(const std::uint8_t* bytes, std::size_t size,
                                      const std::string& name, std::vector<int>* dims_out,
                                      const char* what) {
  std::vector<int> dims;
  PlainInput input(bytes, size);
  const std::uint64_t data_bytes = read_header(input, name, false, &dims);
  const std::uint64_t available = input.remaining();
  if (available < data_bytes) throw_short_data(name, data_bytes, available, what, dims);
  if (available > data_bytes)
    throw Error(
        fmt::format("{}: {} trailing bytes after the {} bytes of {} ({}); the header "
                    "does not match the data",
                    name, available - data_bytes, data_bytes, what, dims_to_string(dims)));
  std::vector<std::uint8_t> data(input.position(), input.position() + data_bytes);
  if (dims_out != nullptr) *dims_out = std::move(dims);
  return data;
}

// Deflate expands at most 1032:1; a trailer claiming more is a lie and takes the zlib path.
constexpr std::uint64_t kDeflateMaxRatio = 1032;

// The IDX data of a one-member gzip file inflated by libdeflate, or nothing when that fails in any
// way (several members, a bad size or checksum, an IDX header that does not match): the caller
// then takes the zlib path, which finds and names the problem.
std::optional<std::vector<std::uint8_t>> inflate_whole(const std::uint8_t* bytes, std::size_t size,
                                                       const std::string& name,
                                                       std::vector<int>* dims_out) {
  if (size < 18) return std::nullopt;  // a gzip header and trailer alone are 18 bytes
  const std::uint64_t stated = std::uint64_t(bytes[size - 4]) |
                               std::uint64_t(bytes[size - 3]) << 8 |
                               std::uint64_t(bytes[size - 2]) << 16 |
                               std::uint64_t(bytes[size - 1]) << 24;  // ISIZE: length mod 2^32
  if (stated < 4 || stated > kIdxMaxFileBytes || stated > std::uint64_t(size) * kDeflateMaxRatio)
    return std::nullopt;
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  if (d == nullptr) return std::nullopt;
  // Inflated in place, then the header is checked and moved out of the way (no second buffer).
  std::vector<std::uint8_t> data(static_cast<std::size_t>(stated));
  std::size_t in_used = 0, out_used = 0;
  const libdeflate_result result =
      libdeflate_gzip_decompress_ex(d, bytes, size, data.data(), data.size(), &in_used, &out_used);
  libdeflate_free_decompressor(d);
  if (result != LIBDEFLATE_SUCCESS || in_used != size || out_used != data.size())
    return std::nullopt;
  try {
    std::vector<int> dims;
    PlainInput input(data.data(), data.size());
    const std::uint64_t data_bytes = read_header(input, name, false, &dims);
    if (input.remaining() != data_bytes) return std::nullopt;
    data.erase(data.begin(), data.begin() + std::ptrdiff_t(data.size() - input.remaining()));
    if (dims_out != nullptr) *dims_out = std::move(dims);
    return data;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// `what` names the data in messages ("pixels", "labels").
std::vector<std::uint8_t> parse(const std::uint8_t* bytes, std::size_t size,
                                const std::string& name, std::vector<int>* dims_out,
                                const char* what) {
  std::vector<int> dims;
  if (size == 0) throw Error(fmt::format("{}: the file is empty, not an IDX file", name));
  if (!is_gzip(bytes, size)) return parse_plain(bytes, size, name, dims_out, what);

  if (std::optional<std::vector<std::uint8_t>> fast = inflate_whole(bytes, size, name, dims_out))
    return std::move(*fast);
  GzipInput input(bytes, size, name);
  const std::uint64_t data_bytes = read_header(input, name, true, &dims);
  std::vector<std::uint8_t> data;
  std::size_t got = 0;
  while (got < data_bytes) {
    const auto wanted = std::min<std::uint64_t>(
        data_bytes, std::max<std::uint64_t>(kInflateFirstBytes, 2 * std::uint64_t{data.size()}));
    data.resize(static_cast<std::size_t>(wanted));
    const std::size_t n = input.read(data.data() + got, data.size() - got);
    got += n;
    if (got < data.size()) throw_short_data(name, data_bytes, got, what, dims);
  }
  std::uint8_t extra = 0;
  if (input.read(&extra, 1) != 0)
    throw Error(
        fmt::format("{}: trailing bytes after the {} bytes of {} ({}) in the gzip stream; the "
                    "header does not match the data",
                    name, data_bytes, what, dims_to_string(dims)));
  if (dims_out != nullptr) *dims_out = std::move(dims);
  return data;
}

std::vector<std::uint8_t> read_idx(const std::string& path, std::vector<int>* dims,
                                   const char* what) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, kIdxMaxFileBytes, "an IDX file");
  return parse(bytes.data(), bytes.size(), path, dims, what);
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

std::vector<std::uint8_t> parse_idx(const std::uint8_t* bytes, std::size_t size,
                                    const std::string& name, std::vector<int>* dims) {
  return parse(bytes, size, name, dims, "data");
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
  // Pixels per image are counted in int everywhere downstream.
  if (std::int64_t{image_dims[1]} * image_dims[2] > std::numeric_limits<int>::max())
    throw Error(fmt::format("{}: images of {}x{} pixels are larger than {} pixels", images_path,
                            image_dims[1], image_dims[2], std::numeric_limits<int>::max()));
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

Dataset load_mnist_split(const std::string& dir, bool train, int classes) {
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
  return load_idx_dataset(images_path, labels_path, classes);
}

}  // namespace cnnrt
