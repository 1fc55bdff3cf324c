// safetensors reading and writing. Files come from outside (checkpoints, other frameworks), so the
// reader trusts nothing: the header length is checked against the file size before allocating,
// and every tensor's dtype, shape and byte range is checked before any byte is copied.
#include "cnnrt/safetensors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "cnnrt/error.hpp"
#include "host/file_bytes.hpp"

// Tensor bytes are stored and used as the host's own; safetensors is little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors IO assumes a little-endian host");

namespace cnnrt {
namespace {

using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
// The reference implementation's limit; a real header for a CNN is a few kilobytes.
constexpr std::uint64_t kMaxHeaderBytes = 100u * 1000u * 1000u;
// A real header nests three levels: the object, a tensor's entry, its shape or offsets.
constexpr int kMaxHeaderDepth = 8;
// Header and data start are aligned to 8 bytes (padded with spaces), as the reference writer does.
constexpr std::size_t kHeaderAlignment = 8;

struct DtypeInfo {
  const char* name;
  std::size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},  {"I16", 2},
    {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1},
};

std::string known_dtypes() {
  std::vector<std::string> names;
  for (const auto& d : kDtypes) names.emplace_back(d.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

bool dtype_size_of(const std::string& dtype, std::size_t* size) {
  for (const auto& d : kDtypes) {
    if (dtype == d.name) {
      *size = d.size;
      return true;
    }
  }
  return false;
}

// product(shape) with every dimension >= 0; false on a negative dimension or overflow past
// `limit` elements.
bool element_count_of(const std::vector<std::int64_t>& shape, std::int64_t limit,
                      std::int64_t* count) {
  std::int64_t product = 1;
  for (std::int64_t dim : shape) {
    if (dim < 0) return false;
    if (dim != 0 && product > limit / dim) return false;
    product *= dim;
  }
  *count = product;
  return true;
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

void check_tensor(const std::string& where, const std::string& name, const TensorData& tensor) {
  std::size_t dtype_size = 0;
  if (!dtype_size_of(tensor.dtype, &dtype_size))
    throw Error(fmt::format("{}: tensor '{}' has unknown dtype '{}' (known: {})", where, name,
                            tensor.dtype, known_dtypes()));
  std::int64_t count = 0;
  const auto limit = std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(8);
  if (!element_count_of(tensor.shape, limit, &count))
    throw Error(fmt::format("{}: tensor '{}' has invalid shape {}", where, name,
                            shape_to_string(tensor.shape)));
  const auto expected = static_cast<std::uint64_t>(count) * dtype_size;
  if (expected != tensor.bytes.size())
    throw Error(fmt::format("{}: tensor '{}' of shape {} and dtype {} needs {} bytes, has {}",
                            where, name, shape_to_string(tensor.shape), tensor.dtype, expected,
                            tensor.bytes.size()));
}

void check_name(const std::string& name) {
  if (name.empty()) throw Error("SafeTensors: a tensor name must not be empty");
  if (name == kMetadataKey)
    throw Error(
        fmt::format("SafeTensors: '{}' is reserved for metadata, not a tensor name", kMetadataKey));
}

// Text from the file for a message, cut short when long.
std::string brief(std::string text) {
  constexpr std::size_t kMaxChars = 80;
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}
std::string brief(const json& value) {
  return brief(value.dump());
}

// The parsed header entry of one tensor, before its bytes are read.
struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

std::uint64_t read_offset(const std::string& path, const std::string& name, const json& value) {
  if (!value.is_number_unsigned())
    throw Error(fmt::format("{}: tensor '{}': data_offsets must be non-negative integers, got {}",
                            path, name, brief(value)));
  return value.get<std::uint64_t>();
}

HeaderEntry parse_entry(const std::string& path, const std::string& name, const json& value) {
  if (!value.is_object())
    throw Error(fmt::format("{}: tensor '{}': header entry is not an object: {}", path, name,
                            brief(value)));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key))
      throw Error(fmt::format("{}: tensor '{}': header entry has no '{}'", path, name, key));
  }
  HeaderEntry entry;
  entry.name = name;
  const json& dtype = value.at("dtype");
  if (!dtype.is_string())
    throw Error(
        fmt::format("{}: tensor '{}': dtype is not a string: {}", path, name, brief(dtype)));
  entry.dtype = dtype.get<std::string>();
  std::size_t dtype_size = 0;
  if (!dtype_size_of(entry.dtype, &dtype_size))
    throw Error(fmt::format("{}: tensor '{}' has unknown dtype '{}' (known: {})", path, name,
                            brief(entry.dtype), known_dtypes()));
  const json& shape = value.at("shape");
  if (!shape.is_array())
    throw Error(
        fmt::format("{}: tensor '{}': shape is not an array: {}", path, name, brief(shape)));
  for (const json& dim : shape) {
    if (!dim.is_number_unsigned() ||
        dim.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw Error(fmt::format("{}: tensor '{}': shape {} must hold non-negative integers", path,
                              name, brief(shape)));
    entry.shape.push_back(dim.get<std::int64_t>());
  }
  const json& offsets = value.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    throw Error(fmt::format("{}: tensor '{}': data_offsets must be [begin, end], got {}", path,
                            name, brief(offsets)));
  entry.begin = read_offset(path, name, offsets[0]);
  entry.end = read_offset(path, name, offsets[1]);
  if (entry.end < entry.begin)
    throw Error(fmt::format("{}: tensor '{}': data_offsets [{}, {}] end before they begin", path,
                            name, entry.begin, entry.end));
  std::int64_t count = 0;
  const auto limit = std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(8);
  if (!element_count_of(entry.shape, limit, &count))
    throw Error(fmt::format("{}: tensor '{}': shape {} is too large", path, name, brief(shape)));
  const std::uint64_t expected = static_cast<std::uint64_t>(count) * dtype_size;
  if (entry.end - entry.begin != expected)
    throw Error(
        fmt::format("{}: tensor '{}' of shape {} and dtype {} needs {} bytes, but "
                    "data_offsets [{}, {}] hold {}",
                    path, name, brief(shape), entry.dtype, expected, entry.begin, entry.end,
                    entry.end - entry.begin));
  return entry;
}

std::vector<std::uint8_t> little_endian_u64(std::uint64_t value) {
  std::vector<std::uint8_t> bytes(8);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(value >> (8 * i));
  return bytes;
}

// A `dtype` tensor of `shape` whose bytes are copied from `data` (elements of `element_bytes`).
TensorData tensor_from_memory(const std::string& name, const char* dtype,
                              const std::vector<std::int64_t>& shape, const void* data,
                              std::size_t element_bytes) {
  TensorData tensor;
  tensor.dtype = dtype;
  tensor.shape = shape;
  const auto element_size = static_cast<std::int64_t>(element_bytes);
  std::int64_t count = 0;
  if (!element_count_of(shape, std::numeric_limits<std::int64_t>::max() / element_size, &count))
    throw Error(
        fmt::format("SafeTensors: tensor '{}' has invalid shape {}", name, shape_to_string(shape)));
  const auto* begin = static_cast<const std::uint8_t*>(data);
  tensor.bytes.assign(begin, begin + count * element_size);
  return tensor;
}

}  // namespace

std::size_t safetensors_dtype_size(const std::string& dtype) {
  std::size_t size = 0;
  if (!dtype_size_of(dtype, &size))
    throw Error(fmt::format("unknown safetensors dtype '{}' (known: {})", dtype, known_dtypes()));
  return size;
}

std::int64_t TensorData::element_count() const {
  std::int64_t count = 0;
  if (!element_count_of(shape, std::numeric_limits<std::int64_t>::max(), &count))
    throw Error(fmt::format("tensor shape {} is invalid", shape_to_string(shape)));
  return count;
}

std::vector<float> TensorData::as_floats() const {
  if (dtype != "F32")
    throw Error(fmt::format("tensor of dtype {} and shape {} read as F32 floats", dtype,
                            shape_to_string(shape)));
  std::vector<float> values(bytes.size() / sizeof(float));
  if (!values.empty())  // an empty vector's data() may be null: not for memcpy
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::vector<std::int64_t> TensorData::as_int64s() const {
  if (dtype != "I64")
    throw Error(fmt::format("tensor of dtype {} and shape {} read as I64 integers", dtype,
                            shape_to_string(shape)));
  std::vector<std::int64_t> values(bytes.size() / sizeof(std::int64_t));
  if (!values.empty())  // an empty vector's data() may be null: not for memcpy
    std::memcpy(values.data(), bytes.data(), values.size() * sizeof(std::int64_t));
  return values;
}

void SafeTensors::add_f32(const std::string& name, const std::vector<std::int64_t>& shape,
                          const float* data) {
  add(name, tensor_from_memory(name, "F32", shape, data, sizeof(float)));
}

void SafeTensors::add_i64(const std::string& name, const std::vector<std::int64_t>& shape,
                          const std::int64_t* data) {
  add(name, tensor_from_memory(name, "I64", shape, data, sizeof(std::int64_t)));
}

void SafeTensors::add(const std::string& name, TensorData tensor) {
  check_name(name);
  check_tensor("SafeTensors", name, tensor);
  if (tensors_.count(name) != 0)
    throw Error(fmt::format("SafeTensors: tensor '{}' is already present", name));
  tensors_.emplace(name, std::move(tensor));
}

bool SafeTensors::contains(const std::string& name) const {
  return tensors_.count(name) != 0;
}

const TensorData& SafeTensors::get(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error(fmt::format(
        "no tensor named '{}' (present: {})", name,
        tensors_.empty() ? std::string("none") : fmt::format("{}", fmt::join(names(), ", "))));
  return it->second;
}

std::vector<std::string> SafeTensors::names() const {
  std::vector<std::string> result;
  result.reserve(tensors_.size());
  for (const auto& entry : tensors_) result.push_back(entry.first);
  return result;
}

void SafeTensors::save(const std::string& path) const {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors_) {
    header[name] = {{"dtype", tensor.dtype},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string header_text = header.dump();
  header_text.append((kHeaderAlignment - header_text.size() % kHeaderAlignment) % kHeaderAlignment,
                     ' ');

  std::vector<std::string_view> chunks;
  const auto length = little_endian_u64(header_text.size());
  chunks.emplace_back(reinterpret_cast<const char*>(length.data()), length.size());
  chunks.emplace_back(header_text);
  for (const auto& entry : tensors_) {
    const auto& bytes = entry.second.bytes;
    chunks.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  write_file_via_temporary(path, chunks);
}

SafeTensors SafeTensors::load(const std::string& path) {
  const std::vector<std::uint8_t> bytes =
      read_file_bytes(path, std::numeric_limits<std::uint64_t>::max(), "a safetensors file");
  return parse(bytes.data(), bytes.size(), path);
}

SafeTensors SafeTensors::parse(const std::uint8_t* bytes, std::size_t size,
                               const std::string& path) {
  const auto file_size = static_cast<std::uint64_t>(size);
  if (file_size < 8)
    throw Error(
        fmt::format("{}: {} bytes is too short for a safetensors file (8-byte header "
                    "length missing)",
                    path, file_size));
  std::uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | bytes[i];
  if (header_length > file_size - 8)
    throw Error(fmt::format("{}: header length {} runs past the end of the {}-byte file", path,
                            header_length, file_size));
  if (header_length > kMaxHeaderBytes)
    throw Error(fmt::format("{}: header length {} exceeds the {}-byte limit", path, header_length,
                            kMaxHeaderBytes));
  if (header_length < 2)
    throw Error(
        fmt::format("{}: header length {} is too short for a JSON object", path, header_length));
  const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
  const std::string_view header_text(header_begin, static_cast<std::size_t>(header_length));

  // nlohmann keeps the last of repeated keys silently; a repeated tensor name is an error here.
  std::set<std::string> seen_keys;
  std::string repeated_key;
  const json::parser_callback_t note_keys = [&](int depth, json::parse_event_t event,
                                                json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxHeaderDepth)
      throw Error(
          fmt::format("{}: the header nests JSON deeper than {} levels", path, kMaxHeaderDepth));
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto key = parsed.get<std::string>();
      if (!seen_keys.insert(key).second && repeated_key.empty()) repeated_key = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(header_text, note_keys);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw Error(fmt::format("{}: the header is not valid JSON: {}", path, e.what()));
  }
  if (!header.is_object())
    throw Error(fmt::format("{}: the header is JSON but not an object", path));
  if (!repeated_key.empty())
    throw Error(fmt::format("{}: the header names '{}' more than once", path, repeated_key));

  SafeTensors result;
  std::vector<HeaderEntry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object())
        throw Error(fmt::format("{}: {} is not an object", path, kMetadataKey));
      for (const auto& [meta_key, meta_value] : value.items()) {
        if (!meta_value.is_string())
          throw Error(fmt::format("{}: metadata '{}' is not a string: {}", path, meta_key,
                                  brief(meta_value)));
        result.metadata[meta_key] = meta_value.get<std::string>();
      }
      continue;
    }
    if (key.empty()) throw Error(fmt::format("{}: a tensor has an empty name", path));
    entries.push_back(parse_entry(path, key, value));
  }

  // The data section must be covered exactly: no overlaps, no gaps, nothing past the end.
  const std::uint64_t data_size = file_size - 8 - header_length;
  std::sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& entry : entries) {
    if (entry.end > data_size)
      throw Error(
          fmt::format("{}: tensor '{}': data_offsets [{}, {}] run past the {} bytes of "
                      "data (the file is truncated or the header is wrong)",
                      path, entry.name, entry.begin, entry.end, data_size));
    if (entry.begin < covered)
      throw Error(
          fmt::format("{}: tensor '{}' (bytes [{}, {}]) overlaps tensor '{}' (bytes "
                      "[{}, {}])",
                      path, entry.name, entry.begin, entry.end, previous->name, previous->begin,
                      previous->end));
    if (entry.begin > covered)
      throw Error(
          fmt::format("{}: bytes [{}, {}] of the data belong to no tensor (before "
                      "tensor '{}')",
                      path, covered, entry.begin, entry.name));
    covered = entry.end;
    previous = &entry;
  }
  if (covered != data_size)
    throw Error(fmt::format("{}: {} bytes of data after the last tensor belong to no tensor", path,
                            data_size - covered));

  const std::uint8_t* data = bytes + 8 + header_length;
  for (HeaderEntry& entry : entries) {
    TensorData tensor;
    tensor.dtype = std::move(entry.dtype);
    tensor.shape = std::move(entry.shape);
    tensor.bytes.assign(data + entry.begin, data + entry.end);
    result.tensors_.emplace(entry.name, std::move(tensor));
  }
  return result;
}

}  // namespace cnnrt
