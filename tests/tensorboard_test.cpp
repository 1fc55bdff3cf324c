// TensorBoard event files: CRC-32C against its published check value and a bit-at-a-time twin,
// and a written file taken apart record by record here (lengths, masked CRCs, the protocol-buffer
// bytes of each event worked out by hand). tests/tensorboard_check.py reads a training run's file
// with TensorBoard's own reader.
#include "cnnrt/tensorboard.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

// One bit at a time, straight from the reflected polynomial (the library uses a byte table).
std::uint32_t crc32c_bitwise(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char ch : bytes) {
    crc ^= std::uint8_t(ch);
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

std::uint32_t mask(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::uint64_t little_endian(const std::string& bytes, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= std::uint64_t(std::uint8_t(bytes[at + std::size_t(i)])) << (8 * i);
  return v;
}

// The events of a file, each record's framing checked on the way.
std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> events;
  std::size_t at = 0;
  while (at < file.size()) {
    EXPECT_GE(file.size() - at, 16u) << "a record cut short at byte " << at;
    if (file.size() - at < 16) break;
    const std::uint64_t length = little_endian(file, at, 8);
    EXPECT_EQ(little_endian(file, at + 8, 4), mask(crc32c_bitwise(file.substr(at, 8))));
    EXPECT_LE(length, file.size() - at - 16);
    if (length > file.size() - at - 16) break;
    const std::string data = file.substr(at + 12, length);
    EXPECT_EQ(little_endian(file, at + 12 + length, 4), mask(crc32c_bitwise(data)));
    events.push_back(data);
    at += 16 + length;
  }
  return events;
}

std::string float_bytes(float v) {
  std::string b(4, '\0');
  std::memcpy(b.data(), &v, 4);  // little-endian on every machine this builds for
  return b;
}

TEST(Crc32c, MatchesTheCheckValueAndTheBitwiseTwin) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C catalogue's check value
  EXPECT_EQ(crc32c("", 0), 0u);
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(char((i * 37 + 11) & 0xFF));
  EXPECT_EQ(crc32c(bytes.data(), bytes.size()), crc32c_bitwise(bytes));
  EXPECT_EQ(masked_crc32c(bytes.data(), bytes.size()), mask(crc32c_bitwise(bytes)));
}

TEST(TensorBoardWriter, WritesFramedEventsOfScalarsAndImages) {
  test::ScratchDir dir("tensorboard_events");
  const std::string logdir = dir.file("run/nested");
  std::string path;
  {
    TensorBoardWriter writer(logdir);
    path = writer.path();
    EXPECT_EQ(std::filesystem::path(path).parent_path(), std::filesystem::path(logdir));
    EXPECT_EQ(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
    writer.add_scalar("loss/train", 3, 0.25);
    writer.add_image("k", 300, ByteImage{2, 1, 3, {255, 0, 0, 0, 0, 255}});
    writer.flush();
  }
  const std::vector<std::string> events = read_records(path);
  ASSERT_EQ(events.size(), 3u);
  // Event 1: wall_time (key 0x09, 8 bytes), file_version (key 0x1A) "brain.Event:2".
  EXPECT_EQ(events[0].size(), 1u + 8 + 2 + 13);
  EXPECT_EQ(events[0][0], '\x09');
  EXPECT_EQ(events[0].substr(9), std::string("\x1A\x0D") + "brain.Event:2");
  // Event 2: wall_time, step 3 (key 0x10), summary (key 0x2A) { value (0x0A) { tag (0x0A)
  // "loss/train", simple_value (0x15) 0.25f } }.
  const std::string value = std::string("\x0A\x0A") + "loss/train" + "\x15" + float_bytes(0.25f);
  const std::string summary = std::string("\x0A") + char(value.size()) + value;
  EXPECT_EQ(events[1].substr(9), std::string("\x10\x03") + "\x2A" + char(summary.size()) + summary);
  // Event 3: step 300 as a varint (AC 02), then an image: height 1 (0x08), width 2 (0x10),
  // colorspace 3 (0x18), the PNG (0x22), which starts with PNG's signature.
  ASSERT_GT(events[2].size(), 9u + 3);
  EXPECT_EQ(events[2].substr(9, 3), "\x10\xAC\x02");
  const std::size_t image = events[2].find(std::string("\x08\x01\x10\x02\x18\x03\x22", 7));
  ASSERT_NE(image, std::string::npos);
  EXPECT_NE(events[2].find("\x89PNG\r\n\x1A\n", image), std::string::npos);
  EXPECT_NE(events[2].find(std::string("\x0A\x01") + "k"), std::string::npos);
}

TEST(TensorBoardWriter, ADirectoryThatCannotBeMadeNamesIt) {
  test::ScratchDir dir("tensorboard_blocked");
  const std::string blocker = dir.file("file");
  std::ofstream(blocker) << "in the way";
  try {
    TensorBoardWriter writer(blocker + "/logs");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("TensorBoard directory"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cnnrt
