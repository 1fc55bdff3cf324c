#pragma once
// TensorBoard event files (`cnnrt train --tensorboard DIR`), which TensorBoard and PyTorch's
// tooling open directly. A file is a sequence of records: the data's length (uint64, little-
// endian), the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data. Each
// record's data is one `Event` protocol buffer: the first holds the file version, the others a
// scalar or a PNG image with a tag and a step.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "cnnrt/export.hpp"
#include "cnnrt/image.hpp"

namespace cnnrt {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TensorFlow's record format uses it.
CNNRT_API std::uint32_t crc32c(const void* data, std::size_t size);
// The record format's mask: ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
CNNRT_API std::uint32_t masked_crc32c(const void* data, std::size_t size);

class CNNRT_API TensorBoardWriter {
 public:
  // Creates `directory` (and its parents) and a new event file in it,
  // events.out.tfevents.<unix seconds>.<host>.<pid>.cnnrt. Throws cnnrt::Error naming the
  // directory and the system's reason when either cannot be made.
  explicit TensorBoardWriter(const std::string& directory);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One value of the curve `tag` ("loss/train") at `step`.
  void add_scalar(const std::string& tag, std::int64_t step, double value);
  // A picture (1 to 4 channels), stored as PNG.
  void add_image(const std::string& tag, std::int64_t step, const ByteImage& image);
  // Everything added so far reaches the file (TensorBoard reads files that are still growing).
  // Throws naming the file when the write failed.
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace cnnrt
