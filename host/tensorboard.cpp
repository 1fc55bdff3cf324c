// TensorBoard event files. Neither Debian nor PyPI has a C++ writer, and the three messages
// written here (Event, Summary, Summary.Value with an Image) are a few fields each, so they are
// encoded by the small protocol-buffer writer below rather than through libprotobuf and
// TensorFlow's .proto files. Field numbers are tensorflow/core/util/event.proto's and
// tensorflow/core/framework/summary.proto's.
#include "cnnrt/tensorboard.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "cnnrt/error.hpp"

namespace cnnrt {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) != 0 ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrc32cTable = make_crc32c_table();

// Protocol-buffer wire format: a key (field number << 3 | wire type) before every field.
enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class ProtoWriter {
 public:
  void varint_field(std::uint32_t field, std::uint64_t value) {
    key(field, kVarint);
    varint(value);
  }
  void double_field(std::uint32_t field, double value) {
    key(field, kFixed64);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    little_endian(bits, 8);
  }
  void float_field(std::uint32_t field, float value) {
    key(field, kFixed32);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    little_endian(bits, 4);
  }
  // Strings, bytes and embedded messages alike.
  void bytes_field(std::uint32_t field, const void* data, std::size_t size) {
    key(field, kLengthDelimited);
    varint(size);
    out_.append(static_cast<const char*>(data), size);
  }
  void bytes_field(std::uint32_t field, const std::string& data) {
    bytes_field(field, data.data(), data.size());
  }
  const std::string& bytes() const { return out_; }

 private:
  void key(std::uint32_t field, WireType type) { varint(std::uint64_t(field) << 3 | type); }
  void varint(std::uint64_t value) {
    while (value >= 0x80) {
      out_.push_back(char(std::uint8_t(value) | 0x80));
      value >>= 7;
    }
    out_.push_back(char(value));
  }
  void little_endian(std::uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(char(std::uint8_t(value >> (8 * i))));
  }
  std::string out_;
};

// Event: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5.
// Summary: value = 1 (repeated). Summary.Value: tag = 1, simple_value = 2, image = 4.
// Summary.Image: height = 1, width = 2, colorspace = 3 (channels), encoded_image_string = 4.
double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string summary_event(std::int64_t step, const ProtoWriter& value) {
  ProtoWriter summary;
  summary.bytes_field(1, value.bytes());
  ProtoWriter event;
  event.double_field(1, wall_seconds());
  event.varint_field(2, std::uint64_t(step));
  event.bytes_field(5, summary.bytes());
  return event.bytes();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec || !std::filesystem::is_directory(directory))
    throw Error(fmt::format("{}: cannot create the TensorBoard directory: {}", directory,
                            ec ? ec.message() : "a file is in the way"));
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  path_ = (std::filesystem::path(directory) /
           fmt::format("events.out.tfevents.{}.{}.{}.cnnrt", seconds, host_name(), getpid()))
              .string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr)
    throw Error(fmt::format("{}: cannot create the TensorBoard event file: {}", path_,
                            std::strerror(errno)));
  ProtoWriter event;
  event.double_field(1, wall_seconds());
  event.bytes_field(3, std::string("brain.Event:2"));
  write_event(event.bytes());
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, std::int64_t step, double value) {
  ProtoWriter v;
  v.bytes_field(1, tag);
  v.float_field(2, float(value));
  write_event(summary_event(step, v));
}

void TensorBoardWriter::add_image(const std::string& tag, std::int64_t step,
                                  const ByteImage& image) {
  const std::vector<std::uint8_t> png = encode_png(image);
  ProtoWriter picture;
  picture.varint_field(1, std::uint64_t(image.height));
  picture.varint_field(2, std::uint64_t(image.width));
  picture.varint_field(3, std::uint64_t(image.channels));
  picture.bytes_field(4, png.data(), png.size());
  ProtoWriter v;
  v.bytes_field(1, tag);
  v.bytes_field(4, picture.bytes());
  write_event(summary_event(step, v));
}

void TensorBoardWriter::write_event(const std::string& event) {
  std::array<std::uint8_t, 8> length{};
  for (int i = 0; i < 8; ++i)
    length[std::size_t(i)] = std::uint8_t(std::uint64_t(event.size()) >> (8 * i));
  const auto put32 = [&](std::uint32_t v) {
    const std::uint8_t b[4] = {std::uint8_t(v), std::uint8_t(v >> 8), std::uint8_t(v >> 16),
                               std::uint8_t(v >> 24)};
    return std::fwrite(b, 1, 4, file_) == 4;
  };
  const bool ok = std::fwrite(length.data(), 1, 8, file_) == 8 &&
                  put32(masked_crc32c(length.data(), 8)) &&
                  std::fwrite(event.data(), 1, event.size(), file_) == event.size() &&
                  put32(masked_crc32c(event.data(), event.size()));
  if (!ok)
    throw Error(fmt::format("{}: cannot write the TensorBoard event file: {}", path_,
                            std::strerror(errno)));
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0)
    throw Error(fmt::format("{}: cannot write the TensorBoard event file: {}", path_,
                            std::strerror(errno)));
}

}  // namespace cnnrt
