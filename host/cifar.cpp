// CIFAR-10/100 binary records -> Dataset (include/cnnrt/cifar.hpp).
#include "cnnrt/cifar.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>

#include "cnnrt/error.hpp"
#include "host/file_bytes.hpp"

namespace cnnrt {

namespace {

// CIFAR-10's five training batches hold 10000 records each; CIFAR-100's train.bin 50000. A file
// past this many records is refused before it is read.
constexpr std::uint64_t kCifarMaxRecords = 1u << 22;

bool regular_file(const std::filesystem::path& path) {
  std::error_code ignored;
  return std::filesystem::is_regular_file(path, ignored);
}

int label_bytes(CifarKind kind) {
  return kind == CifarKind::cifar10 ? 1 : 2;
}

int class_count(CifarKind kind, CifarLabels labels) {
  if (kind == CifarKind::cifar10) return 10;
  return labels == CifarLabels::fine ? 100 : 20;
}

Dataset read_cifar_file(const std::string& path, CifarKind kind, CifarLabels labels) {
  const std::uint64_t record = std::uint64_t(label_bytes(kind)) + kCifarPixels;
  const std::vector<std::uint8_t> bytes =
      read_file_bytes(path, kCifarMaxRecords * record, "a CIFAR file");
  return parse_cifar(bytes.data(), bytes.size(), path, kind, labels);
}

}  // namespace

CifarLabels parse_cifar_labels(const std::string& text) {
  if (text == "fine") return CifarLabels::fine;
  if (text == "coarse") return CifarLabels::coarse;
  throw Error(fmt::format("unknown CIFAR-100 labels '{}' (fine, coarse)", text));
}

Dataset parse_cifar(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                    CifarKind kind, CifarLabels labels) {
  const int prefix = label_bytes(kind);
  const std::size_t record = std::size_t(prefix) + kCifarPixels;
  if (size == 0) throw Error(fmt::format("{}: empty file (no CIFAR records)", name));
  if (size % record != 0)
    throw Error(fmt::format(
        "{}: {} bytes is not a whole number of {}-byte CIFAR-{} records ({} and {} bytes over)",
        name, size, record, kind == CifarKind::cifar10 ? 10 : 100, size / record, size % record));
  if (size / record > kCifarMaxRecords)
    throw Error(fmt::format("{}: {} records is more than the {} a CIFAR file may hold", name,
                            size / record, kCifarMaxRecords));
  const int classes = class_count(kind, labels);
  // CIFAR-100 records start with the coarse label, then the fine one.
  const int label_at = kind == CifarKind::cifar100 && labels == CifarLabels::fine ? 1 : 0;
  Dataset data;
  data.count = static_cast<int>(size / record);
  data.channels = 3;
  data.height = data.width = 32;
  data.classes = classes;
  data.images.resize(std::size_t(data.count) * kCifarPixels);
  data.labels.resize(std::size_t(data.count));
  for (int i = 0; i < data.count; ++i) {
    const std::uint8_t* r = bytes + std::size_t(i) * record;
    if (r[label_at] >= classes)
      throw Error(fmt::format("{}: record {} has label {}, past the {} classes (0 to {})", name, i,
                              r[label_at], classes, classes - 1));
    data.labels[std::size_t(i)] = r[label_at];
    std::copy(r + prefix, r + record, data.images.begin() + std::ptrdiff_t(i) * kCifarPixels);
  }
  return data;
}

bool find_cifar_kind(const std::string& dir, CifarKind* kind) {
  const std::filesystem::path d(dir);
  if (regular_file(d / "data_batch_1.bin")) {
    *kind = CifarKind::cifar10;
    return true;
  }
  if (regular_file(d / "train.bin")) {
    *kind = CifarKind::cifar100;
    return true;
  }
  return false;
}

Dataset load_cifar_split(const std::string& dir, bool train, CifarLabels labels) {
  CifarKind kind = CifarKind::cifar10;
  if (!find_cifar_kind(dir, &kind))
    throw Error(fmt::format(
        "no CIFAR data in {}: looked for data_batch_1.bin (CIFAR-10) and train.bin (CIFAR-100)",
        dir));
  const std::filesystem::path d(dir);
  std::vector<std::string> files;
  if (kind == CifarKind::cifar10 && train) {
    for (int b = 1; b <= 5; ++b)
      if (regular_file(d / fmt::format("data_batch_{}.bin", b)))
        files.push_back((d / fmt::format("data_batch_{}.bin", b)).string());
  } else {
    const char* name = kind == CifarKind::cifar10 ? "test_batch.bin"
                       : train                    ? "train.bin"
                                                  : "test.bin";
    if (!regular_file(d / name))
      throw Error(
          fmt::format("no {} split in {}: {} is missing", train ? "training" : "test", dir, name));
    files.push_back((d / name).string());
  }
  Dataset all;
  for (const std::string& path : files) {
    Dataset part = read_cifar_file(path, kind, labels);
    if (all.count == 0) {
      all = std::move(part);
      continue;
    }
    all.count += part.count;
    all.images.insert(all.images.end(), part.images.begin(), part.images.end());
    all.labels.insert(all.labels.end(), part.labels.begin(), part.labels.end());
  }
  return all;
}

std::vector<std::string> cifar_class_names(const std::string& dir, CifarLabels labels,
                                           int classes) {
  CifarKind kind = CifarKind::cifar10;
  if (!find_cifar_kind(dir, &kind)) return {};
  const char* name = kind == CifarKind::cifar10    ? "batches.meta.txt"
                     : labels == CifarLabels::fine ? "fine_label_names.txt"
                                                   : "coarse_label_names.txt";
  const std::filesystem::path path = std::filesystem::path(dir) / name;
  if (!regular_file(path)) return {};
  std::ifstream in(path);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (static_cast<int>(names.size()) != classes)
    throw Error(
        fmt::format("{}: {} class names for {} classes", path.string(), names.size(), classes));
  return names;
}

}  // namespace cnnrt
