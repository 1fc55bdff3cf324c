// Grayscale image IO (PGM and PNG round trips, files checked byte by byte, malformed PGMs) and
// the classic kernels' values, written out here from docs/math.md section 9.
#include "cnnrt/image.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/filters.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

constexpr double kGaussianSumTolerance = 1e-6;
constexpr double kGaussianRatioTolerance = 1e-5;

class ImageTest : public test::ScratchDirTest {
 protected:
  ImageTest() : ScratchDirTest("image_test") {}
};

// A PNG encoded here with zlib alone (no stb): signature, IHDR, one IDAT, IEND. Rows use filter 0.
// color_type 0 is grayscale (1 sample per pixel), 2 is RGB (3), 3 is palette indices (1, with
// `palette` as the PLTE chunk); bit_depth 8 or 16 (16: two big-endian bytes per sample).
std::vector<std::uint8_t> encode_png(int width, int height, int color_type,
                                     const std::vector<std::uint8_t>& raster, int bit_depth = 8,
                                     const std::vector<std::uint8_t>& palette = {}) {
  const int channels = (color_type == 2 ? 3 : 1) * bit_depth / 8;
  std::vector<std::uint8_t> filtered;
  for (int y = 0; y < height; ++y) {
    filtered.push_back(0);
    const auto row = raster.begin() + static_cast<long>(y) * width * channels;
    filtered.insert(filtered.end(), row, row + width * channels);
  }
  uLongf compressed_size = compressBound(static_cast<uLong>(filtered.size()));
  std::vector<std::uint8_t> compressed(compressed_size);
  EXPECT_EQ(compress(compressed.data(), &compressed_size, filtered.data(),
                     static_cast<uLong>(filtered.size())),
            Z_OK);
  compressed.resize(compressed_size);

  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const auto put32 = [](std::vector<std::uint8_t>& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::uint8_t>(v >> shift));
  };
  const auto chunk = [&](const char* type, const std::vector<std::uint8_t>& data) {
    put32(png, static_cast<std::uint32_t>(data.size()));
    std::vector<std::uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    png.insert(png.end(), body.begin(), body.end());
    put32(png, static_cast<std::uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  };
  std::vector<std::uint8_t> ihdr;
  put32(ihdr, static_cast<std::uint32_t>(width));
  put32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.insert(ihdr.end(), {static_cast<std::uint8_t>(bit_depth),
                           static_cast<std::uint8_t>(color_type), 0, 0, 0});
  chunk("IHDR", ihdr);
  if (!palette.empty()) chunk("PLTE", palette);
  chunk("IDAT", compressed);
  chunk("IEND", {});
  return png;
}

// A 5x3 gradient whose values are whole numbers 0..255 (exact in every format).
GrayImage sample_image() {
  GrayImage image;
  image.width = 5;
  image.height = 3;
  image.pixels = {0, 1, 2, 3, 4, 50, 100, 128, 200, 255, 17, 34, 51, 68, 85};
  return image;
}

// Legal but unusual PNGs, encoded here: 16 bits per sample (reduced to the high byte), a palette
// (expanded to its colours), 1x1 (fitted to any size as its one value).
TEST_F(ImageTest, SixteenBitPalette1x1PngsDecode) {
  const std::vector<std::uint8_t> wide = {0x12, 0x34, 0xAB, 0xCD, 0xFF, 0x00, 0x00, 0xFF};
  const std::vector<std::uint8_t> sixteen = encode_png(2, 2, 0, wide, 16);
  const ByteImage grey = decode_image(sixteen.data(), sixteen.size(), "16-bit", 1);
  EXPECT_EQ(grey.pixels, (std::vector<std::uint8_t>{0x12, 0xAB, 0xFF, 0x00}));

  const std::vector<std::uint8_t> palette = {255, 0, 0, 0, 128, 255, 9, 9, 9};
  const std::vector<std::uint8_t> indexed = encode_png(3, 1, 3, {2, 0, 1}, 8, palette);
  const ByteImage rgb = decode_image(indexed.data(), indexed.size(), "palette", 3);
  EXPECT_EQ(rgb.pixels, (std::vector<std::uint8_t>{9, 9, 9, 255, 0, 0, 0, 128, 255}));

  const std::vector<std::uint8_t> dot = encode_png(1, 1, 2, {10, 20, 30});
  const ByteImage one = decode_image(dot.data(), dot.size(), "1x1", 3);
  const ByteImage fitted = fit_image(one, 3, 2);
  for (int p = 0; p < 6; ++p)
    EXPECT_EQ(
        std::vector<std::uint8_t>(fitted.pixels.begin() + p * 3, fitted.pixels.begin() + p * 3 + 3),
        (std::vector<std::uint8_t>{10, 20, 30}));
  // The same file with one byte of its IDAT changed fails its CRC; cut, it has no IEND.
  std::vector<std::uint8_t> damaged = dot;
  damaged[damaged.size() - 16] ^= 1;
  test::expect_error([&] { decode_image(damaged.data(), damaged.size(), "d.png", 3); },
                     {"d.png", "fails its CRC check"});
  test::expect_error([&] { decode_image(dot.data(), dot.size() - 12, "cut.png", 3); },
                     {"cut.png", "truncated PNG"});
}

// Binary PGM/PPM go to stb_image after their header is read here with bounded numbers.
TEST_F(ImageTest, BinaryPnmDecodesAndOversizedHeadersAreRefused) {
  auto bytes_of = [](const std::string& header, std::vector<std::uint8_t> raster) {
    std::vector<std::uint8_t> file(header.begin(), header.end());
    file.insert(file.end(), raster.begin(), raster.end());
    return file;
  };
  // A comment ended by a carriage return, as Netpbm and stb_image read it.
  const auto ppm = bytes_of("P6\n# by hand\r2 1\n255\n", {1, 2, 3, 250, 251, 252});
  const ByteImage rgb = decode_image(ppm.data(), ppm.size(), "a.ppm", 3);
  EXPECT_EQ(rgb.width, 2);
  EXPECT_EQ(rgb.height, 1);
  EXPECT_EQ(rgb.pixels, (std::vector<std::uint8_t>{1, 2, 3, 250, 251, 252}));
  // stb_image overruns its buffer converting a 16-bit PNM to other channels: refused.
  const auto wide = bytes_of("P6 2 1 65535\n", std::vector<std::uint8_t>(12, 7));
  test::expect_error([&] { decode_image(wide.data(), wide.size(), "w.ppm", 1); },
                     {"w.ppm", "PPM maxval 65535 is not supported (1 to 255"});
  const std::map<std::string, std::pair<std::string, std::string>> refused = {
      {"width.pgm", {"P5" + std::string(28, '5') + "\n", "PGM width exceeds 32768"}},
      {"height.ppm", {"P6 1 99999999999\n255\n", "PPM height exceeds 32768"}},
      {"maxval.ppm", {"P6 1 1 4294967296\n", "PPM maxval exceeds 65535"}},
      {"comment.ppm", {"P6 #c\r1 #d\n0 255\n", "1x0"}},
  };
  for (const auto& [name, test] : refused) {
    const auto file = bytes_of(test.first, {0, 0, 0});
    test::expect_error([&] { decode_image(file.data(), file.size(), name, 3); },
                       {name, test.second});
  }
  // read_gray_image hands P6 to stb_image too.
  test::write_text(path("big.ppm"), "P6\n1 " + std::string(20, '9') + "\n255\n");
  test::expect_error([&] { read_gray_image(path("big.ppm")); }, {"PPM height exceeds 32768"});
}

// A CMYK JPEG as Pillow 13 writes one (an Adobe APP14 segment, no colour transform, inverted
// channels), 8x4 at quality 100 without subsampling: the left half CMYK (0, 255, 255, 0), the
// right half (200, 100, 0, 50). RGB is (255 - C) * (255 - K) / 255 per channel: (255, 0, 0) and
// (44, 125, 205); JPEG's loss and stb_image's rounding stay within kCmykTolerance.
constexpr int kCmykTolerance = 3;
const std::uint8_t kCmykJpeg[] = {
    0xff, 0xd8, 0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00,
    0x00, 0x00, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x14, 0x08, 0x00, 0x04, 0x00, 0x08,
    0x04, 0x43, 0x11, 0x00, 0x4d, 0x11, 0x00, 0x59, 0x11, 0x00, 0x4b, 0x11, 0x00, 0xff, 0xc4, 0x00,
    0x1f, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0xff, 0xc4,
    0x00, 0xb5, 0x10, 0x00, 0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00,
    0x00, 0x01, 0x7d, 0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13,
    0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15,
    0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25,
    0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46,
    0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66,
    0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86,
    0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4,
    0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2,
    0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9,
    0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5,
    0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xff, 0xda, 0x00, 0x0e, 0x04, 0x43, 0x00, 0x4d, 0x00, 0x59, 0x00,
    0x4b, 0x00, 0x00, 0x3f, 0x00, 0xfb, 0x63, 0xfe, 0x0e, 0xd5, 0xff, 0x00, 0x9b, 0x00, 0xff, 0x00,
    0xbb, 0xaa, 0xff, 0x00, 0xdf, 0x6f, 0xaf, 0xc6, 0xbf, 0xf8, 0x37, 0x37, 0xfe, 0x6f, 0x17, 0xfe,
    0xed, 0xef, 0xff, 0x00, 0x7b, 0x85, 0x47, 0xff, 0x00, 0x06, 0x31, 0xff, 0x00, 0xce, 0x51, 0x7f,
    0xee, 0xc9, 0xbf, 0xf7, 0xee, 0x2b, 0xfb, 0x30, 0xfd, 0xad, 0x7f, 0xe6, 0x9f, 0xff, 0x00, 0xdc,
    0xd7, 0xff, 0x00, 0xba, 0xdd, 0x7f, 0xff, 0xd9,
};

TEST_F(ImageTest, CmykJpegDecodesToRgb) {
  const ByteImage rgb = decode_image(kCmykJpeg, sizeof(kCmykJpeg), "cmyk.jpg", 3);
  ASSERT_EQ(rgb.width, 8);
  ASSERT_EQ(rgb.height, 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) {
      const int expected[2][3] = {{255, 0, 0}, {44, 125, 205}};
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(rgb.pixels[(std::size_t(y) * 8 + x) * 3 + c], expected[x < 4 ? 0 : 1][c],
                    kCmykTolerance)
            << "x " << x << " y " << y << " channel " << c;
    }
}

TEST_F(ImageTest, PgmRoundTripAndBytes) {
  const GrayImage image = sample_image();
  write_gray_image(path("a.pgm"), image);
  const std::string header = "P5\n5 3\n255\n";
  std::vector<std::uint8_t> expected(header.begin(), header.end());
  for (float v : image.pixels) expected.push_back(static_cast<std::uint8_t>(v));
  EXPECT_EQ(test::read_bytes(path("a.pgm")), expected);
  const GrayImage back = read_gray_image(path("a.pgm"));
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST_F(ImageTest, PngRoundTrip) {
  const GrayImage image = sample_image();
  write_gray_image(path("a.png"), image);
  const auto bytes = test::read_bytes(path("a.png"));
  const std::vector<std::uint8_t> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  ASSERT_GE(bytes.size(), signature.size());
  EXPECT_TRUE(std::equal(signature.begin(), signature.end(), bytes.begin()));
  const GrayImage back = read_gray_image(path("a.png"));
  EXPECT_EQ(back.width, 5);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.pixels, image.pixels);
  write_gray_image(path("upper.PNG"), image);  // extension is case-insensitive
  EXPECT_EQ(read_gray_image(path("upper.PNG")).pixels, image.pixels);
}

TEST_F(ImageTest, ReadsPngsEncodedIndependently) {
  test::write_bytes(path("gray.png"), encode_png(3, 2, 0, {0, 10, 20, 200, 254, 255}));
  const GrayImage gray = read_gray_image(path("gray.png"));
  EXPECT_EQ(gray.width, 3);
  EXPECT_EQ(gray.height, 2);
  EXPECT_EQ(gray.pixels, (std::vector<float>{0, 10, 20, 200, 254, 255}));
  // RGB is converted to one channel: black stays 0, white stays 255, and grey levels survive.
  test::write_bytes(path("rgb.png"), encode_png(3, 1, 2, {0, 0, 0, 255, 255, 255, 100, 100, 100}));
  const GrayImage rgb = read_gray_image(path("rgb.png"));
  ASSERT_EQ(rgb.pixels.size(), 3u);
  EXPECT_EQ(rgb.pixels[0], 0.0f);
  EXPECT_EQ(rgb.pixels[1], 255.0f);
  EXPECT_NEAR(rgb.pixels[2], 100.0f, 1.0f);
}

TEST_F(ImageTest, WrittenPngHasAGrayscaleHeader) {
  write_gray_image(path("h.png"), sample_image());
  const auto bytes = test::read_bytes(path("h.png"));
  ASSERT_GE(bytes.size(), 33u);
  // IHDR is the first chunk: length 13, "IHDR", width, height, bit depth 8, colour type 0.
  EXPECT_EQ(std::string(bytes.begin() + 12, bytes.begin() + 16), "IHDR");
  EXPECT_EQ(bytes[19], 5);  // width 5 (big-endian, low byte)
  EXPECT_EQ(bytes[23], 3);  // height 3
  EXPECT_EQ(bytes[24], 8);
  EXPECT_EQ(bytes[25], 0);
}

TEST_F(ImageTest, WritingRoundsAndClamps) {
  GrayImage image;
  image.width = 4;
  image.height = 1;
  image.pixels = {-3.0f, 300.0f, 12.6f, 12.4f};
  write_gray_image(path("c.pgm"), image);
  EXPECT_EQ(read_gray_image(path("c.pgm")).pixels, (std::vector<float>{0, 255, 13, 12}));
  image.pixels[1] = std::nanf("");
  test::expect_error([&] { write_gray_image(path("nan.pgm"), image); }, {"nan.pgm", "x 1", "NaN"});
  image.pixels.pop_back();
  test::expect_error([&] { write_gray_image(path("short.pgm"), image); },
                     {"short.pgm", "3 pixels"});
  image.pixels = {1, 2, 3, 4};
  test::expect_error([&] { write_gray_image(path("x.jpg"), image); }, {"x.jpg", "'.jpg'"});
  test::expect_error([&] { write_gray_image(path("noext"), image); }, {"noext", ".png or .pgm"});
}

TEST_F(ImageTest, ReadsAsciiPgmWithCommentsAndScalesMaxval) {
  // maxval 15: each value scales by 255 / 15 = 17.
  test::write_text(path("p2.pgm"),
                   "P2\n# a comment\n3 2 # trailing comment\n15\n0 1 2\n 15 7\n3\n");
  const GrayImage image = read_gray_image(path("p2.pgm"));
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 2);
  const std::vector<float> expected = {0, 17, 34, 255, 119, 51};
  ASSERT_EQ(image.pixels.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(image.pixels[i], expected[i], 1e-4) << i;
  // Binary with maxval 100.
  std::string p5 = "P5 2 1 100\n";
  p5.push_back(static_cast<char>(50));
  p5.push_back(static_cast<char>(100));
  test::write_text(path("p5.pgm"), p5);
  const GrayImage binary = read_gray_image(path("p5.pgm"));
  EXPECT_NEAR(binary.pixels[0], 127.5f, 1e-4);
  EXPECT_NEAR(binary.pixels[1], 255.0f, 1e-4);
}

TEST_F(ImageTest, BadPgmIsRefused) {
  const std::map<std::string, std::pair<std::string, std::string>> cases = {
      {"maxval0", {"P5\n2 1\n0\nab", "maxval 0"}},
      {"maxval16", {"P5\n2 1\n65535\nabcd", "maxval 65535"}},
      {"nowidth", {"P5\n", "ends before its width"}},
      {"negative", {"P2\n-2 1\n255\n1 2", "width expected"}},
      {"zero", {"P5\n0 1\n255\n", "0x1"}},
      {"huge", {"P5\n99999999 1\n255\n", "width exceeds"}},
      {"truncated", {"P5\n3 2\n255\nabc", "needs 6 bytes of pixels, found 3"}},
      {"trailing", {"P5\n2 1\n255\nabcd", "2 trailing bytes"}},
      {"above", {"P2\n2 1\n10\n3 11\n", "pixel 1 (x 1, y 0) is 11, above maxval 10"}},
      {"p2short", {"P2\n2 2\n255\n1 2 3", "needs 4 pixel values, found 3"}},
      {"p2garbage", {"P2\n2 1\n255\n1 2 x", "unexpected data"}},
      {"p2letter", {"P2\n2 1\n255\n1 q", "pixel value expected"}},
      {"nospace", {"P5\n2 1\n255", "one whitespace"}},
      {"magicjoined", {"P51 1 255\na", "followed by whitespace"}},
  };
  for (const auto& [name, test] : cases) {
    test::write_text(path(name), test.first);
    test::expect_error([&] { read_gray_image(path(name)); }, {path(name), test.second});
  }
  test::write_text(path("notimage.png"), "this is not an image");
  test::expect_error([&] { read_gray_image(path("notimage.png")); },
                     {"notimage.png", "cannot decode"});
  test::expect_error([&] { read_gray_image(path("missing.png")); }, {"missing.png", "cannot open"});
}

TEST(RescaleToByteRange, MapsMinAndMaxToTheEnds) {
  GrayImage image;
  image.width = 3;
  image.height = 1;
  image.pixels = {-2.0f, 0.0f, 2.0f};
  EXPECT_EQ(rescale_to_byte_range(image).pixels, (std::vector<float>{0.0f, 127.5f, 255.0f}));
  image.pixels = {4.0f, 4.0f, 4.0f};
  EXPECT_EQ(rescale_to_byte_range(image).pixels, (std::vector<float>{0.0f, 0.0f, 0.0f}));
}

// docs/math.md section 9, row by row.
TEST(ClassicKernels, ThreeByThreeMatchTheSpec) {
  const std::map<std::string, std::vector<float>> spec = {
      {"sobel-x", {-1, 0, 1, -2, 0, 2, -1, 0, 1}},
      {"sobel-y", {1, 2, 1, 0, 0, 0, -1, -2, -1}},
      {"scharr-x", {-3, 0, 3, -10, 0, 10, -3, 0, 3}},
      {"scharr-y", {-3, -10, -3, 0, 0, 0, 3, 10, 3}},
      {"laplacian", {1, 1, 1, 1, -8, 1, 1, 1, 1}},
      {"edge1", {-1, -1, 5, -1, -1, 5, -1, -1, 5}},
      {"edge2", {5, 5, 5, -1, -1, -1, -1, -1, -1}},
      {"line", {-1, 5, -1, -1, 5, -1, -1, 5, -1}},
      {"diagonal", {5, -1, -1, -1, 5, -1, -1, -1, 5}},
      {"nine-top", {1, 1, 1, 1, -1, 1, 1, 1, 1}},
  };
  for (const auto& [name, expected] : spec) {
    int kh = 0, kw = 0;
    EXPECT_EQ(classic_kernel(name, &kh, &kw), expected) << name;
    EXPECT_EQ(kh, 3) << name;
    EXPECT_EQ(kw, 3) << name;
  }
}

TEST(ClassicKernels, GaussianIsNormalisedSymmetricAndGaussian) {
  for (float sigma : {0.5f, 1.0f, 1.5f, 2.0f}) {
    int kh = 0, kw = 0;
    const std::vector<float> g = classic_kernel("gaussian", &kh, &kw, sigma);
    const int radius = static_cast<int>(std::ceil(3.0 * sigma));
    ASSERT_EQ(kh, 2 * radius + 1) << sigma;
    ASSERT_EQ(kw, kh) << sigma;
    ASSERT_EQ(g.size(), static_cast<std::size_t>(kh * kw));
    const double sum = std::accumulate(g.begin(), g.end(), 0.0);
    EXPECT_NEAR(sum, 1.0, kGaussianSumTolerance) << sigma;
    const auto at = [&](int y, int x) { return g[(y + radius) * kw + (x + radius)]; };
    for (int y = -radius; y <= radius; ++y) {
      for (int x = -radius; x <= radius; ++x) {
        EXPECT_EQ(at(y, x), at(-y, x)) << sigma;
        EXPECT_EQ(at(y, x), at(y, -x)) << sigma;
        EXPECT_EQ(at(y, x), at(x, y)) << sigma;
        EXPECT_GT(at(y, x), 0.0f);
        // Shape of e^{-(x^2+y^2)/(2 s^2)}: ratio to the centre, computed here in double.
        const double expected_ratio = std::exp(-(x * x + y * y) / (2.0 * sigma * sigma));
        EXPECT_NEAR(at(y, x) / at(0, 0), expected_ratio, kGaussianRatioTolerance)
            << sigma << " " << y << " " << x;
      }
    }
  }
  int kh = 0, kw = 0;
  EXPECT_EQ(classic_kernel("gaussian", &kh, &kw).size(), 49u);  // sigma 1: 2 * 3 + 1 = 7
  EXPECT_THROW(classic_kernel("gaussian", &kh, &kw, 0.0f), Error);
  EXPECT_THROW(classic_kernel("gaussian", &kh, &kw, -1.0f), Error);
  EXPECT_THROW(classic_kernel("gaussian", &kh, &kw, std::nanf("")), Error);
  EXPECT_THROW(classic_kernel("gaussian", &kh, &kw, 100.0f), Error);
}

TEST(ClassicKernels, HaarFeaturesAreRectangleDifferences) {
  const std::vector<float> edge_x_row = {-1, -1, -1, 1, 1, 1};
  const std::vector<float> line_row = {-1, -1, 2, 2, -1, -1};
  for (const std::string name :
       {"haar-edge-x", "haar-edge-y", "haar-line-x", "haar-line-y", "haar-checker"}) {
    int kh = 0, kw = 0;
    const std::vector<float> k = classic_kernel(name, &kh, &kw);
    ASSERT_EQ(kh, 6) << name;
    ASSERT_EQ(kw, 6) << name;
    EXPECT_EQ(std::accumulate(k.begin(), k.end(), 0.0f), 0.0f) << name << " must sum to 0";
    for (int r = 0; r < 6; ++r) {
      for (int c = 0; c < 6; ++c) {
        float expected = 0.0f;
        if (name == "haar-edge-x") expected = edge_x_row[c];
        if (name == "haar-edge-y") expected = -edge_x_row[r];  // bright top, as Sobel Y
        if (name == "haar-line-x") expected = line_row[c];
        if (name == "haar-line-y") expected = line_row[r];
        if (name == "haar-checker") expected = ((r < 3) == (c < 3)) ? 1.0f : -1.0f;
        EXPECT_EQ(k[r * 6 + c], expected) << name << " at " << r << "," << c;
      }
    }
  }
}

TEST(ClassicKernels, NamesAreCompleteAndUnknownNamesAreListed) {
  const std::vector<std::string> names = classic_kernel_names();
  EXPECT_EQ(names.size(), 16u);
  for (const auto& name : names) {
    int kh = 0, kw = 0;
    EXPECT_FALSE(classic_kernel(name, &kh, &kw).empty()) << name;
  }
  for (const char* expected : {"sobel-x", "scharr-y", "laplacian", "gaussian", "nine-top",
                               "haar-checker", "diagonal", "edge1", "edge2", "line"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  int kh = 0, kw = 0;
  test::expect_error([&] { classic_kernel("sobel-z", &kh, &kw); },
                     {"'sobel-z'", "sobel-x", "haar-checker", "gaussian"});
}

}  // namespace
}  // namespace cnnrt
