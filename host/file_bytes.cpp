#include "host/file_bytes.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cnnrt/error.hpp"

namespace cnnrt {

namespace {

// Makes a rename durable: fsync the directory that holds the file. Best effort (some file
// systems refuse to fsync a directory), so failures are ignored.
void sync_parent_directory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

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

void write_file_via_temporary(const std::string& path, const std::vector<std::string_view>& chunks,
                              Temporary temporary_name) {
  const std::string temporary = temporary_name == Temporary::per_process
                                    ? fmt::format("{}.tmp.{}", path, ::getpid())
                                    : path + ".tmp";
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr)
    throw Error(fmt::format("{}: cannot open for writing: {}", temporary, std::strerror(errno)));
  bool ok = true;
  for (auto it = chunks.begin(); ok && it != chunks.end(); ++it)
    // An empty chunk may have a null data(), which fwrite must not be given.
    ok = it->empty() || std::fwrite(it->data(), 1, it->size(), file) == it->size();
  // The data must be on disk before the rename makes it the file of record.
  ok = ok && std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  std::string reason = ok ? std::string() : std::strerror(errno);
  if (std::fclose(file) != 0 && ok) {
    ok = false;
    reason = std::strerror(errno);
  }
  if (!ok) {
    std::remove(temporary.c_str());
    throw Error(fmt::format("{}: write failed: {} (the previous {} is untouched)", temporary,
                            reason, path));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(temporary.c_str());
    throw Error(fmt::format("{}: cannot rename {} into place: {}", path, temporary, reason));
  }
  sync_parent_directory(path);
}

}  // namespace cnnrt
