#pragma once
// Grayscale image files for `cnnrt filter`: PNG (and the other formats stb_image reads, converted
// to one channel) and PGM (P5 binary, P2 ascii, maxval <= 255) in; PNG or PGM (P5) out, chosen by
// the file extension.
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

}  // namespace cnnrt
