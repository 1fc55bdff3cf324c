#pragma once
// Grayscale image files for `cnnrt filter`: PNG (and the other formats stb_image reads, converted
// to one channel) and PGM (P5 binary, P2 ascii, maxval <= 255) in; PNG or PGM (P5) out, chosen by
// the file extension.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"

namespace cnnrt {

// One-channel image, row-major: pixels[y * width + x], intensities on the 0..255 scale (a PGM
// with maxval m is scaled by 255 / m on reading).
struct CNNRT_API GrayImage {
  int width = 0;
  int height = 0;
  std::vector<float> pixels;  // [height, width]
};

// Reads a PGM (recognised by its "P5" / "P2" magic, strictly validated) or any image stb_image
// can decode, forced to one channel. Errors name the file and what is wrong.
CNNRT_API GrayImage read_gray_image(const std::string& path);

// Writes `.png` or `.pgm` (P5, maxval 255) by extension, case-insensitive. Pixels are rounded
// and clamped to 0..255; a NaN pixel, a size mismatch, or another extension throws.
CNNRT_API void write_gray_image(const std::string& path, const GrayImage& image);

// Writes an 8-bit RGB PNG (the plots of `cnnrt train --plots`). rgb: [height, width, 3] bytes.
CNNRT_API void write_rgb_png(const std::string& path, int width, int height,
                             const std::vector<unsigned char>& rgb);

// The image with its values mapped linearly from [min, max] onto [0, 255] (a filter response, such
// as a Sobel output, is signed and unbounded). A constant image maps to all zeros.
CNNRT_API GrayImage rescale_to_byte_range(const GrayImage& image);

// An 8-bit image with interleaved channels: pixels[(y * width + x) * channels + c].
struct CNNRT_API ByteImage {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;  // [height, width, channels]
};

// Decodes a PNG, JPEG or BMP (and the other formats stb_image reads: GIF, TGA, PNM, PSD, HDR)
// held in memory to `channels` (1 or 3) bytes per pixel, converted as stb_image converts: grey to
// RGB replicates the value, RGB to grey is the luma (77 R + 150 G + 29 B) / 256, alpha is dropped,
// 16-bit PNGs are reduced to 8 bits and palette PNGs expanded. A PNG must pass its chunk CRCs and
// end with IEND; a JPEG must end with its end-of-image marker; images past 32768 pixels a side or
// `max_pixels` pixels are refused before decoding. Errors name `name` and what is wrong.
CNNRT_API ByteImage decode_image(const std::uint8_t* bytes, std::size_t size,
                                 const std::string& name, int channels,
                                 std::int64_t max_pixels = std::int64_t(1) << 28);

// Writes `.png`, `.jpg` / `.jpeg` (quality 1..100) or `.bmp` by extension, case-insensitive, with
// stb_image_write; 1 to 4 channels. Throws naming the path when it cannot.
CNNRT_API void write_image(const std::string& path, const ByteImage& image, int jpeg_quality = 95);
// The image as the bytes of a PNG file (1 to 4 channels). Throws when it cannot be encoded.
CNNRT_API std::vector<std::uint8_t> encode_png(const ByteImage& image);

// The image resized to width x height the way `train` fits folder images to the model's input:
// its shorter side (relative to the output's aspect ratio) scaled to the output's, then a centre
// crop; resized once, by stb_image_resize (Mitchell filter down, Catmull-Rom up, in linear byte
// values). An image already of the output's size is returned as it is.
CNNRT_API ByteImage fit_image(const ByteImage& image, int width, int height);

}  // namespace cnnrt
