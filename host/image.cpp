// Grayscale image IO: PGM parsed here (strictly, it is simple), everything else through stb.
#include "cnnrt/image.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include "cnnrt/error.hpp"

// stb is compiled into this file only, with static linkage so its symbols never clash with another
// copy in the program; its own warnings are not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb/stb_image_resize.h>
#pragma GCC diagnostic pop
#include <libdeflate.h>

namespace cnnrt {
namespace {

// Far above any image `cnnrt filter` is for, and small enough that width * height fits an int.
constexpr int kMaxImageSide = 1 << 15;
constexpr long long kMaxImagePixels = 1LL << 28;
constexpr int kMaxPgmMaxval = 255;

void check_size(const std::string& path, long long width, long long height) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide ||
      width * height > kMaxImagePixels)
    throw Error(
        fmt::format("{}: image size {}x{} is out of range (1 to {} per side, at most {} "
                    "pixels)",
                    path, width, height, kMaxImageSide, kMaxImagePixels));
}

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), {});
}

// Reads the whitespace-and-comment separated header tokens and the P2 body of a PGM. A comment
// ends at a line feed or a carriage return, as in Netpbm (and stb_image).
class PgmScanner {
 public:
  PgmScanner(const std::string& path, const unsigned char* bytes, std::size_t size,
             std::size_t start, const char* kind = "PGM")
      : path_(path), bytes_(bytes), size_(size), position_(start), kind_(kind) {}

  std::size_t position() const { return position_; }

  void skip_whitespace_and_comments() {
    while (position_ < size_) {
      if (bytes_[position_] == '#') {
        while (position_ < size_ && bytes_[position_] != '\n' && bytes_[position_] != '\r')
          ++position_;
      } else if (std::isspace(bytes_[position_])) {
        ++position_;
      } else {
        break;
      }
    }
  }

  // A non-negative decimal integer (at most `limit`), preceded by whitespace or comments.
  long long read_number(const char* what, long long limit) {
    skip_whitespace_and_comments();
    if (position_ >= size_)
      throw Error(fmt::format("{}: {} ends before its {}", path_, kind_, what));
    if (!std::isdigit(bytes_[position_]))
      throw Error(fmt::format("{}: {} {} expected at byte {}, found '{}'", path_, kind_, what,
                              position_, static_cast<char>(bytes_[position_])));
    long long value = 0;
    while (position_ < size_ && std::isdigit(bytes_[position_])) {
      value = value * 10 + (bytes_[position_] - '0');
      if (value > limit)
        throw Error(fmt::format("{}: {} {} exceeds {}", path_, kind_, what, limit));
      ++position_;
    }
    return value;
  }

  // The single whitespace character between maxval and the binary raster.
  void skip_one_whitespace() {
    if (position_ >= size_ || !std::isspace(bytes_[position_]))
      throw Error(
          fmt::format("{}: PGM header must end with one whitespace character after maxval", path_));
    ++position_;
  }

 private:
  const std::string& path_;
  const unsigned char* bytes_;
  std::size_t size_;
  std::size_t position_;
  const char* kind_;
};

// P5 (binary) or P2 (ascii) with maxval <= 255; the raster must be exactly width * height values.
GrayImage read_pgm(const std::string& path, const std::vector<unsigned char>& bytes) {
  const bool binary = bytes[1] == '5';
  PgmScanner scanner(path, bytes.data(), bytes.size(), 2);
  if (scanner.position() < bytes.size() && !std::isspace(bytes[scanner.position()]) &&
      bytes[scanner.position()] != '#')
    throw Error(fmt::format("{}: PGM magic P{} must be followed by whitespace", path,
                            static_cast<char>(bytes[1])));
  const long long width = scanner.read_number("width", kMaxImageSide);
  const long long height = scanner.read_number("height", kMaxImageSide);
  check_size(path, width, height);
  const long long maxval = scanner.read_number("maxval", 65535);
  if (maxval < 1 || maxval > kMaxPgmMaxval)
    throw Error(fmt::format("{}: PGM maxval {} is not supported (1 to {}; 16-bit PGM is not)", path,
                            maxval, kMaxPgmMaxval));

  GrayImage image;
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  const std::size_t count = static_cast<std::size_t>(width * height);
  image.pixels.resize(count);
  const float scale = 255.0f / static_cast<float>(maxval);
  auto store = [&](std::size_t index, long long value) {
    if (value > maxval)
      throw Error(fmt::format("{}: PGM pixel {} (x {}, y {}) is {}, above maxval {}", path, index,
                              index % image.width, index / image.width, value, maxval));
    image.pixels[index] = static_cast<float>(value) * scale;
  };
  if (binary) {
    scanner.skip_one_whitespace();
    const std::size_t available = bytes.size() - scanner.position();
    if (available < count)
      throw Error(fmt::format("{}: PGM {}x{} needs {} bytes of pixels, found {} (truncated)", path,
                              width, height, count, available));
    if (available > count)
      throw Error(fmt::format("{}: {} trailing bytes after the {}x{} PGM raster", path,
                              available - count, width, height));
    for (std::size_t i = 0; i < count; ++i) store(i, bytes[scanner.position() + i]);
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      try {
        store(i, scanner.read_number("pixel value", 65535));
      } catch (const Error&) {
        if (scanner.position() >= bytes.size())
          throw Error(fmt::format("{}: PGM {}x{} needs {} pixel values, found {} (truncated)", path,
                                  width, height, count, i));
        throw;
      }
    }
    scanner.skip_whitespace_and_comments();
    if (scanner.position() != bytes.size())
      throw Error(
          fmt::format("{}: unexpected data after the {} pixel values of the PGM", path, count));
  }
  return image;
}

// stb_image reads a binary PGM/PPM header (P5, P6) into int with no overflow check; the header is
// read here first with the same grammar and bounded numbers, so stb only sees values that fit,
// and 8-bit samples only.
void check_pnm_header(const unsigned char* bytes, std::size_t size, const std::string& name) {
  if (size < 2 || bytes[0] != 'P' || (bytes[1] != '5' && bytes[1] != '6')) return;
  PgmScanner scanner(name, bytes, size, 2, bytes[1] == '5' ? "PGM" : "PPM");
  const long long width = scanner.read_number("width", kMaxImageSide);
  const long long height = scanner.read_number("height", kMaxImageSide);
  check_size(name, width, height);
  // stb_image converts a 16-bit PNM's channels with its 8-bit routine and overruns the buffer.
  const long long maxval = scanner.read_number("maxval", 65535);
  if (maxval < 1 || maxval > kMaxPgmMaxval)
    throw Error(
        fmt::format("{}: {} maxval {} is not supported (1 to {}; 16-bit PGM and PPM are not)", name,
                    bytes[1] == '5' ? "PGM" : "PPM", maxval, kMaxPgmMaxval));
}

std::string lowercase_extension(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return {};
  std::string extension = path.substr(dot);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return extension;
}

}  // namespace

GrayImage read_gray_image(const std::string& path) {
  const std::vector<unsigned char> bytes = read_file(path);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '2'))
    return read_pgm(path, bytes);
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error(fmt::format("{}: file of {} bytes is too large", path, bytes.size()));
  check_pnm_header(bytes.data(), bytes.size(), path);
  int width = 0, height = 0, channels_in_file = 0;
  stbi_uc* decoded = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width,
                                           &height, &channels_in_file, 1);
  if (decoded == nullptr)
    throw Error(
        fmt::format("{}: cannot decode image ({}); supported: PNG, PGM (P5/P2), and the "
                    "other formats stb_image reads",
                    path, stbi_failure_reason()));
  GrayImage image;
  try {
    check_size(path, width, height);
  } catch (...) {
    stbi_image_free(decoded);
    throw;
  }
  image.width = width;
  image.height = height;
  image.pixels.assign(decoded, decoded + static_cast<std::size_t>(width) * height);
  stbi_image_free(decoded);
  return image;
}

void write_gray_image(const std::string& path, const GrayImage& image) {
  check_size(path, image.width, image.height);
  const std::size_t count = static_cast<std::size_t>(image.width) * image.height;
  if (image.pixels.size() != count)
    throw Error(fmt::format("{}: image is {}x{} but holds {} pixels, expected {}", path,
                            image.width, image.height, image.pixels.size(), count));
  std::vector<unsigned char> bytes(count);
  for (std::size_t i = 0; i < count; ++i) {
    const float value = image.pixels[i];
    if (std::isnan(value))
      throw Error(
          fmt::format("{}: pixel (x {}, y {}) is NaN", path, i % image.width, i / image.width));
    bytes[i] = static_cast<unsigned char>(std::lround(std::clamp(value, 0.0f, 255.0f)));
  }
  const std::string extension = lowercase_extension(path);
  if (extension == ".png") {
    if (stbi_write_png(path.c_str(), image.width, image.height, 1, bytes.data(), image.width) == 0)
      throw Error(fmt::format("{}: cannot write PNG: {}", path, std::strerror(errno)));
  } else if (extension == ".pgm") {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr)
      throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno)));
    const std::string header = fmt::format("P5\n{} {}\n255\n", image.width, image.height);
    const bool ok = std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
                    std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    const bool closed = std::fclose(file) == 0;
    if (!ok || !closed)
      throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
  } else {
    throw Error(fmt::format("{}: unknown image extension '{}'; use .png or .pgm", path, extension));
  }
}

void write_rgb_png(const std::string& path, int width, int height,
                   const std::vector<unsigned char>& rgb) {
  check_size(path, width, height);
  const std::size_t expected = std::size_t(width) * std::size_t(height) * 3;
  if (rgb.size() != expected)
    throw Error(fmt::format("{}: RGB image is {}x{} but holds {} bytes, expected {}", path, width,
                            height, rgb.size(), expected));
  if (stbi_write_png(path.c_str(), width, height, 3, rgb.data(), width * 3) == 0)
    throw Error(fmt::format("{}: cannot write PNG: {}", path, std::strerror(errno)));
}

GrayImage rescale_to_byte_range(const GrayImage& image) {
  GrayImage result = image;
  if (image.pixels.empty()) return result;
  const auto [lowest, highest] = std::minmax_element(image.pixels.begin(), image.pixels.end());
  const float low = *lowest;
  const float range = *highest - low;
  for (float& value : result.pixels) value = range > 0.0f ? (value - low) * (255.0f / range) : 0.0f;
  return result;
}

namespace {

std::uint32_t big_endian32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

// stb_image checks neither PNG chunk CRCs nor that the file ends: damage it would decode into
// wrong pixels, or a truncated file into a part-black one, is caught here first. Every chunk's
// length must fit, its CRC-32 match, and IEND must come.
void check_png_chunks(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  std::size_t at = 8;  // past the signature
  while (true) {
    if (size - at < 12)
      throw Error(fmt::format("{}: truncated PNG (ends inside a chunk header, no IEND)", name));
    const std::uint32_t length = big_endian32(bytes + at);
    if (length > size - at - 12)
      throw Error(fmt::format("{}: truncated PNG (a {}-byte chunk runs past the end of the file)",
                              name, length));
    const std::uint8_t* type = bytes + at + 4;
    const std::uint32_t stored = big_endian32(bytes + at + 8 + length);
    const std::uint32_t crc = std::uint32_t(libdeflate_crc32(0, type, std::size_t(length) + 4));
    if (crc != stored)
      throw Error(fmt::format("{}: corrupt PNG (chunk '{}' fails its CRC check)", name,
                              std::string(reinterpret_cast<const char*>(type), 4)));
    if (std::memcmp(type, "IEND", 4) == 0) return;
    at += std::size_t(length) + 12;
  }
}

// Walks a JPEG's marker segments (and over each scan's entropy-coded data, where FF is followed
// only by 00 or a restart marker) to the end-of-image marker. Refused here first, because the
// Debian stb_image mishandles them: a truncated file (decoded as if zeros followed); a Huffman
// table of more than 255 codes (past 256 it indexes out of bounds; at 256 the last code's index
// is its "not in the fast table" flag, and decoding it fails an assertion or returns a wrong
// symbol); a scan using a Huffman or quantisation table that no segment before it defined
// (stb_image reads the table's uninitialised memory).
void check_jpeg(const std::uint8_t* bytes, std::size_t size, std::size_t after_soi,
                const std::string& name) {
  auto be16 = [&](std::size_t at) { return std::size_t(bytes[at]) << 8 | bytes[at + 1]; };
  const auto truncated = [&](const char* where) {
    return Error(fmt::format("{}: truncated JPEG ({})", name, where));
  };
  bool scanned = false;
  bool progressive = false;
  bool huffman_defined[2][4] = {};  // [DC, AC][table id]
  bool quantisation_defined[4] = {};
  std::vector<std::pair<int, int>> frame_components;  // (component id, quantisation table)
  const auto undefined = [&](const char* kind, int id) {
    return Error(fmt::format(
        "{}: corrupt JPEG (a scan uses {} table {}, which no segment before it defines)", name,
        kind, id));
  };
  std::size_t i = after_soi;
  while (true) {
    if (i + 2 > size)
      throw truncated(scanned ? "no end-of-image marker after the image data"
                              : "no start-of-scan marker: ends before the image data");
    if (bytes[i] != 0xFF) {  // padding between segments: stb_image scans on for a marker
      ++i;
      continue;
    }
    const std::uint8_t marker = bytes[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD9) {
      if (!scanned) throw Error(fmt::format("{}: corrupt JPEG (no image data)", name));
      return;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      i += 2;
      continue;
    }
    if (i + 4 > size) throw truncated("ends inside a segment header");
    const std::size_t length = be16(i + 2);
    if (length < 2 || length > size - i - 2)
      throw Error(
          fmt::format("{}: corrupt or truncated JPEG (a segment of {} bytes at byte {} runs "
                      "past the end of the file)",
                      name, length, i));
    const std::size_t end = i + 2 + length;
    const std::uint8_t* segment = bytes + i + 4;
    const std::size_t segment_size = length - 2;
    if (marker == 0xC4)  // Huffman tables: a class/id byte, 16 counts, then that many symbols
      for (std::size_t p = i + 4; p < end;) {
        if (end - p < 17)
          throw Error(fmt::format("{}: corrupt JPEG (a Huffman table is cut short)", name));
        std::size_t codes = 0;
        for (int k = 1; k <= 16; ++k) codes += bytes[p + std::size_t(k)];
        if (codes > 255 || end - p - 17 < codes)
          throw Error(fmt::format("{}: corrupt JPEG (a Huffman table of {} codes)", name, codes));
        const int table_class = bytes[p] >> 4, id = bytes[p] & 15;
        if (table_class <= 1 && id <= 3) huffman_defined[table_class][id] = true;
        p += 17 + codes;
      }
    if (marker == 0xDB)  // quantisation tables: a precision/id byte, then 64 or 128 bytes
      for (std::size_t p = 0; p < segment_size;) {
        const int id = segment[p] & 15;
        const std::size_t table_size = 1 + ((segment[p] >> 4) ? 128 : 64);
        if (id <= 3 && table_size <= segment_size - p) quantisation_defined[id] = true;
        p += table_size;
      }
    if (marker >= 0xC0 && marker <= 0xC2) {  // frame: precision, height, width, Nf, Nf x 3 bytes
      progressive = marker == 0xC2;
      frame_components.clear();
      const std::size_t components = segment_size >= 6 ? segment[5] : 0;
      if (segment_size == 6 + 3 * components)
        for (std::size_t c = 0; c < components; ++c)
          frame_components.push_back({segment[6 + 3 * c], segment[6 + 3 * c + 2]});
    }
    if (marker == 0xDA) {  // scan: Ns, Ns x (component, DC/AC tables), Ss, Se, Ah/Al
      const std::size_t components = segment_size >= 1 ? segment[0] : 0;
      if (segment_size == 4 + 2 * components) {
        const int spectral_start = segment[1 + 2 * components];
        const int approximation_high = segment[3 + 2 * components] >> 4;
        // A progressive scan reads the DC table only in its first DC pass, the AC table only
        // past coefficient 0.
        const bool uses_dc = !progressive || (spectral_start == 0 && approximation_high == 0);
        const bool uses_ac = !progressive || spectral_start > 0;
        for (std::size_t c = 0; c < components; ++c) {
          const int dc = segment[2 + 2 * c] >> 4, ac = segment[2 + 2 * c] & 15;
          if (uses_dc && dc <= 3 && !huffman_defined[0][dc]) throw undefined("DC Huffman", dc);
          if (uses_ac && ac <= 3 && !huffman_defined[1][ac]) throw undefined("AC Huffman", ac);
          for (const auto& [id, quantisation] : frame_components)
            if (id == segment[1 + 2 * c] && quantisation <= 3 &&
                !quantisation_defined[quantisation])
              throw undefined("quantisation", quantisation);
        }
      }
    }
    i = end;
    if (marker == 0xDA) {  // the scan's data runs to the next marker
      scanned = true;
      while (i + 1 < size && !(bytes[i] == 0xFF && bytes[i + 1] != 0x00 &&
                               !(bytes[i + 1] >= 0xD0 && bytes[i + 1] <= 0xD7)))
        ++i;
      if (i + 1 >= size) throw truncated("no end-of-image marker after the image data");
    }
  }
}

}  // namespace

ByteImage decode_image(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                       int channels, std::int64_t max_pixels) {
  if (channels != 1 && channels != 3)
    throw Error(
        fmt::format("{}: images decode to 1 (grey) or 3 (RGB) channels, not {}", name, channels));
  if (size == 0) throw Error(fmt::format("{}: empty file (0 bytes)", name));
  if (size > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw Error(fmt::format("{}: file of {} bytes is too large", name, size));
  static constexpr std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 8 && std::memcmp(bytes, kPng, 8) == 0) check_png_chunks(bytes, size, name);
  // A JPEG to stb_image: fill bytes (FF), then the start-of-image marker's D8.
  std::size_t soi = 0;
  while (soi < size && bytes[soi] == 0xFF) ++soi;
  if (soi >= 1 && soi < size && bytes[soi] == 0xD8) check_jpeg(bytes, size, soi + 1, name);
  check_pnm_header(bytes, size, name);
  int width = 0, height = 0, in_file = 0;
  const int length = static_cast<int>(size);
  // The size from the header first: a huge declared image is refused before it is allocated.
  if (stbi_info_from_memory(bytes, length, &width, &height, &in_file) == 0)
    throw Error(fmt::format("{}: not an image stb_image can read ({}); supported: PNG, JPEG, BMP",
                            name, stbi_failure_reason()));
  check_size(name, width, height);
  if (std::int64_t(width) * height > max_pixels)
    throw Error(fmt::format("{}: image size {}x{} is more than the {} pixels allowed", name, width,
                            height, max_pixels));
  stbi_uc* decoded = stbi_load_from_memory(bytes, length, &width, &height, &in_file, channels);
  if (decoded == nullptr)
    throw Error(fmt::format("{}: cannot decode image ({})", name, stbi_failure_reason()));
  ByteImage image;
  image.width = width, image.height = height, image.channels = channels;
  try {
    check_size(name, width, height);
    image.pixels.assign(decoded, decoded + std::size_t(width) * std::size_t(height) * channels);
  } catch (...) {
    stbi_image_free(decoded);
    throw;
  }
  stbi_image_free(decoded);
  return image;
}

namespace {

void check_writable_image(const std::string& what, const ByteImage& image) {
  const int w = image.width, h = image.height, c = image.channels;
  if (w < 1 || h < 1 || c < 1 || c > 4 ||
      image.pixels.size() != std::size_t(w) * std::size_t(h) * std::size_t(c))
    throw Error(fmt::format("{}: cannot write a {}x{}x{} image of {} bytes", what, w, h, c,
                            image.pixels.size()));
}

}  // namespace

std::vector<std::uint8_t> encode_png(const ByteImage& image) {
  check_writable_image("PNG", image);
  const int w = image.width, c = image.channels;
  int length = 0;
  unsigned char* png =
      stbi_write_png_to_mem(image.pixels.data(), w * c, w, image.height, c, &length);
  if (png == nullptr || length <= 0)
    throw Error(fmt::format("cannot encode a {}x{}x{} image as PNG", w, image.height, c));
  std::vector<std::uint8_t> bytes(png, png + length);
  STBIW_FREE(png);
  return bytes;
}

void write_image(const std::string& path, const ByteImage& image, int jpeg_quality) {
  check_writable_image(path, image);
  const int w = image.width, h = image.height, c = image.channels;
  const std::string ext = lowercase_extension(path);
  int ok = 0;
  if (ext == ".png")
    ok = stbi_write_png(path.c_str(), w, h, c, image.pixels.data(), w * c);
  else if (ext == ".jpg" || ext == ".jpeg")
    ok = stbi_write_jpg(path.c_str(), w, h, c, image.pixels.data(),
                        std::clamp(jpeg_quality, 1, 100));
  else if (ext == ".bmp")
    ok = stbi_write_bmp(path.c_str(), w, h, c, image.pixels.data());
  else
    throw Error(fmt::format("{}: unknown image extension '{}' (png, jpg, jpeg, bmp)", path, ext));
  if (ok == 0) throw Error(fmt::format("{}: cannot write the image", path));
}

ByteImage fit_image(const ByteImage& image, int width, int height) {
  if (width < 1 || height < 1 || image.width < 1 || image.height < 1 || image.channels < 1 ||
      image.pixels.size() !=
          std::size_t(image.width) * std::size_t(image.height) * std::size_t(image.channels))
    throw Error(fmt::format("fit_image: cannot fit a {}x{}x{} image of {} bytes to {}x{}",
                            image.width, image.height, image.channels, image.pixels.size(), width,
                            height));
  // The largest centred region of the output's aspect ratio: scaling the shorter side to the
  // output's and cropping the rest is the same region, resized once.
  const std::int64_t iw = image.width, ih = image.height;
  int crop_w = image.width, crop_h = image.height;
  if (iw * height >= ih * width)  // wider than the output: the full height, a centred strip
    crop_w = int(std::clamp<std::int64_t>((ih * width + height / 2) / height, 1, iw));
  else
    crop_h = int(std::clamp<std::int64_t>((iw * height + width / 2) / width, 1, ih));
  const int x0 = (image.width - crop_w) / 2, y0 = (image.height - crop_h) / 2;
  const int c = image.channels;
  ByteImage out;
  out.width = width, out.height = height, out.channels = c;
  out.pixels.assign(std::size_t(width) * std::size_t(height) * std::size_t(c), 0);
  const std::uint8_t* first =
      image.pixels.data() + (std::size_t(y0) * std::size_t(image.width) + std::size_t(x0)) * c;
  if (crop_w == width && crop_h == height) {
    for (int y = 0; y < height; ++y)
      std::copy_n(first + std::size_t(y) * std::size_t(image.width) * c, std::size_t(width) * c,
                  out.pixels.data() + std::size_t(y) * std::size_t(width) * c);
    return out;
  }
  if (stbir_resize_uint8(first, crop_w, crop_h, image.width * c, out.pixels.data(), width, height,
                         width * c, c) == 0)
    throw Error(
        fmt::format("fit_image: resizing {}x{} to {}x{} failed", crop_w, crop_h, width, height));
  return out;
}

}  // namespace cnnrt
