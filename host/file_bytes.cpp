#include "host/file_bytes.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "cnnrt/error.hpp"

namespace cnnrt {

std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes,
                                          const char* what) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  struct stat info {};
  if (::fstat(::fileno(file.get()), &info) != 0)
    throw Error(fmt::format("{}: cannot determine the file size: {}", path, std::strerror(errno)));
  if (S_ISDIR(info.st_mode)) throw Error(fmt::format("{}: is a directory, not a file", path));
  if (!S_ISREG(info.st_mode)) throw Error(fmt::format("{}: is not a regular file", path));
  const auto size = static_cast<std::uint64_t>(info.st_size);
  if (size > max_bytes)
    throw Error(fmt::format("{}: {} bytes is more than {} may hold ({} bytes)", path, size, what,
                            max_bytes));
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  const std::size_t got = std::fread(bytes.data(), 1, bytes.size(), file.get());
  if (std::ferror(file.get()))
    throw Error(fmt::format("{}: read error: {}", path, std::strerror(errno)));
  // A file that shrank since fstat is parsed as it was read (the parsers check every length).
  bytes.resize(got);
  return bytes;
}

}  // namespace cnnrt
