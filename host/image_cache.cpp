// The decoded-image cache of an image folder (host/image_cache.hpp).
#include "host/image_cache.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "cnnrt/error.hpp"

namespace cnnrt {

namespace {

constexpr char kMagic[8] = {'C', 'N', 'N', 'R', 'T', 'I', 'C', '1'};
// Bounds a header must respect before anything is sized by it.
constexpr std::uint32_t kMaxSide = 1u << 16;
constexpr std::uint32_t kMaxClasses = 256;  // labels are bytes
constexpr std::uint32_t kMaxNameBytes = 4096;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_text(std::string& out, const std::string& text) {
  put_u32(out, std::uint32_t(text.size()));
  out += text;
}

// Reads the header's fields in order; every read is bounds-checked against the file.
class Reader {
 public:
  Reader(const std::uint8_t* bytes, std::size_t size, const std::string& name)
      : bytes_(bytes), size_(size), name_(name) {}
  std::uint64_t number(int width, const char* field) {
    need(std::size_t(width), field);
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) v |= std::uint64_t(bytes_[at_ + std::size_t(i)]) << (8 * i);
    at_ += std::size_t(width);
    return v;
  }
  std::uint32_t u32(const char* field) { return std::uint32_t(number(4, field)); }
  std::string text(const char* field) {
    const std::uint32_t length = u32(field);
    if (length > kMaxNameBytes)
      throw Error(
          fmt::format("{}: {} of {} bytes, more than {}", name_, field, length, kMaxNameBytes));
    need(length, field);
    std::string t(reinterpret_cast<const char*>(bytes_ + at_), length);
    at_ += length;
    return t;
  }
  std::size_t at() const { return at_; }

 private:
  void need(std::size_t n, const char* field) const {
    if (size_ - at_ < n)
      throw Error(fmt::format("{}: truncated image cache ({} bytes end inside its {})", name_,
                              size_, field));
  }
  const std::uint8_t* bytes_;
  std::size_t size_, at_ = 0;
  const std::string& name_;
};

}  // namespace

ImageCacheHeader parse_image_cache(const std::uint8_t* bytes, std::size_t size,
                                   const std::string& name) {
  if (size < sizeof(kMagic) || std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0)
    throw Error(fmt::format("{}: not a cnnrt image cache (no CNNRTIC1 magic)", name));
  Reader r(bytes + sizeof(kMagic), size - sizeof(kMagic), name);
  ImageCacheHeader h;
  const std::uint64_t header_bytes = r.u32("header size");
  h.sources = r.number(8, "source checksum");
  const std::uint32_t c = r.u32("channels"), height = r.u32("height"), width = r.u32("width");
  const std::uint32_t count = r.u32("image count"), classes = r.u32("class count");
  if (c != 1 && c != 3)
    throw Error(fmt::format("{}: image cache of {} channels (1 or 3 expected)", name, c));
  if (height == 0 || width == 0 || height > kMaxSide || width > kMaxSide)
    throw Error(fmt::format("{}: image cache of {}x{} images", name, height, width));
  if (classes < 2 || classes > kMaxClasses)
    throw Error(fmt::format("{}: image cache of {} classes (2 to {} expected)", name, classes,
                            kMaxClasses));
  if (count == 0 || count > std::uint32_t(INT32_MAX))
    throw Error(fmt::format("{}: image cache of {} images", name, count));
  h.channels = int(c), h.height = int(height), h.width = int(width);
  h.count = int(count), h.classes = int(classes);
  h.root = r.text("folder name");
  for (std::uint32_t k = 0; k < classes; ++k) h.class_names.push_back(r.text("class name"));
  if (header_bytes != sizeof(kMagic) + r.at())
    throw Error(fmt::format("{}: image cache header says {} bytes but holds {}", name, header_bytes,
                            sizeof(kMagic) + r.at()));
  h.header_bytes = std::size_t(header_bytes);
  // Sizes in 64 bits: count and each side are bounded above, so none of this overflows.
  const std::uint64_t sample = std::uint64_t(c) * height * width;
  const std::uint64_t expected = header_bytes + std::uint64_t(count) * (sample + 1);
  if (std::uint64_t(size) != expected)
    throw Error(fmt::format(
        "{}: {} image cache of {} bytes, {} expected for {} images of "
        "{}x{}x{} (rebuild it by removing the file)",
        name, size < expected ? "truncated" : "overlong", size, expected, count, c, height, width));
  const std::uint8_t* labels = bytes + header_bytes + std::uint64_t(count) * sample;
  for (std::uint32_t i = 0; i < count; ++i)
    if (labels[i] >= classes)
      throw Error(fmt::format("{}: image {} of the cache has label {}, past its {} classes", name,
                              i, labels[i], classes));
  return h;
}

std::string image_cache_header(const std::string& root, std::uint64_t sources,
                               const Dataset& data) {
  std::string body;
  put_u64(body, sources);
  for (const int v : {data.channels, data.height, data.width, data.count, data.classes})
    put_u32(body, std::uint32_t(v));
  put_text(body, root);
  for (const std::string& n : data.class_names) put_text(body, n);
  std::string out(kMagic, sizeof(kMagic));
  put_u32(out, std::uint32_t(sizeof(kMagic) + 4 + body.size()));
  return out + body;
}

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("{}: not a regular file", path));
  }
  size_ = std::size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(fmt::format("{}: cannot map: {}", path, std::strerror(err)));
    }
    data_ = static_cast<const std::uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

void prefetch_mapped_samples(const std::uint8_t* images, std::size_t sample_bytes,
                             const std::int32_t* samples, int n) {
  static const std::uintptr_t page = std::uintptr_t(::sysconf(_SC_PAGESIZE));
  for (int i = 0; i < n; ++i) {
    const std::uintptr_t first = std::uintptr_t(images + std::size_t(samples[i]) * sample_bytes);
    const std::uintptr_t start = first & ~(page - 1);  // in the mapping: it starts on a page
    // Advice only: a failure changes nothing but the speed.
    ::madvise(reinterpret_cast<void*>(start), first + sample_bytes - start, MADV_WILLNEED);
  }
}

}  // namespace cnnrt
