#pragma once
// Image files the tests write (through cnnrt::write_image, stb_image_write): pictures with known
// bytes and trees of class folders.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnrt/image.hpp"

namespace cnnrt::test {

// pixels: [h, w, c] interleaved bytes; the format follows the extension (.png, .jpg at quality
// 100, .bmp).
inline void write_image(const std::string& path, int w, int h, int c,
                        const std::vector<std::uint8_t>& pixels) {
  cnnrt::write_image(path, ByteImage{w, h, c, pixels}, 100);
}

// A smooth, distinct picture per (label, index): each channel a ramp, JPEG-friendly.
inline std::vector<std::uint8_t> test_picture(int w, int h, int c, int label, int index) {
  std::vector<std::uint8_t> p(std::size_t(w) * h * c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        p[(std::size_t(y) * w + x) * c + k] =
            std::uint8_t((label * 90 + k * 40 + index * 7 + x * 2 + y) % 200 + 20);
  return p;
}

// root/<class>/<i><ext> for each class and i < per_class, pictures of test_picture.
inline void write_class_tree(const std::filesystem::path& root,
                             const std::vector<std::string>& classes, int per_class, int w, int h,
                             int c, const std::string& ext) {
  for (std::size_t label = 0; label < classes.size(); ++label) {
    std::filesystem::create_directories(root / classes[label]);
    for (int i = 0; i < per_class; ++i)
      write_image((root / classes[label] / (std::to_string(i) + ext)).string(), w, h, c,
                  test_picture(w, h, c, int(label), i));
  }
}

}  // namespace cnnrt::test
