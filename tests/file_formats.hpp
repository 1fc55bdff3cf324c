#pragma once
// Input files assembled by hand, byte by byte, independently of the readers under test: IDX
// (big-endian header), gzip (zlib's deflate with a gzip wrapper) and safetensors (little-endian
// header length, JSON, data).
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cnnrt::test {

// An IDX file: [0, 0, type, dims.size()], each dimension as a big-endian uint32, then `data`.
inline std::vector<std::uint8_t> idx_bytes(std::uint8_t type,
                                           const std::vector<std::uint32_t>& dims,
                                           const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> bytes = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) {
    bytes.push_back(static_cast<std::uint8_t>(d >> 24));
    bytes.push_back(static_cast<std::uint8_t>(d >> 16));
    bytes.push_back(static_cast<std::uint8_t>(d >> 8));
    bytes.push_back(static_cast<std::uint8_t>(d));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

// `bytes` as one gzip member (empty, with a test failure, if zlib refuses).
inline std::vector<std::uint8_t> gzip_bytes(const std::vector<std::uint8_t>& bytes) {
  z_stream stream{};
  // 15 + 16: a gzip wrapper around the deflate data, as gzip(1) writes.
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    ADD_FAILURE() << "deflateInit2 failed";
    return {};
  }
  std::vector<std::uint8_t> out(deflateBound(&stream, static_cast<uLong>(bytes.size())));
  stream.next_in = const_cast<Bytef*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  const int status = deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  if (status != Z_STREAM_END) {
    ADD_FAILURE() << "deflate did not finish: " << status;
    return {};
  }
  return out;
}

// A safetensors file: the header's length (its own unless `length_override` is given), the
// header, then `data_bytes` bytes 0, 1, 2, ...
inline std::vector<std::uint8_t> safetensors_bytes(const std::string& header,
                                                   std::size_t data_bytes,
                                                   std::uint64_t length_override = 0) {
  const std::uint64_t length = length_override != 0 ? length_override : header.size();
  std::vector<std::uint8_t> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(length >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  for (std::size_t i = 0; i < data_bytes; ++i) bytes.push_back(static_cast<std::uint8_t>(i));
  return bytes;
}

}  // namespace cnnrt::test
