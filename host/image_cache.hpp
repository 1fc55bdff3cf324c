#pragma once
// The decoded-image cache of an image folder (include/cnnrt/image_folder.hpp): one split's
// samples, uint8 [count, C, H, W], and labels, after a header naming the folder, the sample shape,
// the classes and a checksum of the source list. A later run memory-maps the file and copies the
// bytes instead of decoding every image again; a changed folder changes the checksum and the
// cache is rebuilt.
//
// Layout, little-endian:
//   "CNNRTIC1"  u32 header_bytes  u64 sources
//   u32 channels  u32 height  u32 width  u32 count  u32 classes
//   u32 root length, root bytes; per class: u32 name length, name bytes
//   [header_bytes: ] count * C * H * W image bytes, then count label bytes (each < classes)
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"

namespace cnnrt {

struct ImageCacheHeader {
  std::string root;  // the image folder the samples came from (absolute)
  // A hash (setting_hash) of the split's source list, each file's path, label, size and
  // modification time, and of the options that shaped the samples: a changed folder changes it.
  std::uint64_t sources = 0;
  int channels = 0, height = 0, width = 0, count = 0, classes = 0;
  std::vector<std::string> class_names;  // [classes]
  std::size_t header_bytes = 0;          // where the image bytes start
};

// Checks a whole cache file held in memory (`name` in messages) and returns its header: the
// magic, every field in range, the file exactly header + count * (sample + 1) bytes, every label
// below the class count. Throws cnnrt::Error "<name>: <what>" otherwise (a truncated file, one
// that is not a cache).
ImageCacheHeader parse_image_cache(const std::uint8_t* bytes, std::size_t size,
                                   const std::string& name);

// The header of the cache file for `data` (its count, shape, classes and class names); the file
// is this, then data.images, then data.labels.
std::string image_cache_header(const std::string& root, std::uint64_t sources, const Dataset& data);

// A read-only memory map of a whole file; throws cnnrt::Error naming the file when it cannot.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Starts the kernel reading (madvise WILLNEED) the pages that hold samples[0..n) of the images
// at `images` (inside a MappedFile), `sample_bytes` each; returns at once.
void prefetch_mapped_samples(const std::uint8_t* images, std::size_t sample_bytes,
                             const std::int32_t* samples, int n);

}  // namespace cnnrt
