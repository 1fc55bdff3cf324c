#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {string: string}}, then the raw little-endian tensor data (offsets are relative
// to the end of the header). PyTorch, JAX and NumPy read these files directly.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"

namespace cnnrt {

// One tensor's raw bytes with its element type ("F32", "F64", "I64", "I32", "U8", ...) and shape.
struct CNNRT_API TensorData {
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;  // product(shape) * dtype_size(dtype), little-endian

  std::int64_t element_count() const;
  // The values as floats; throws unless dtype is F32.
  std::vector<float> as_floats() const;
  // The values as int64; throws unless dtype is I64.
  std::vector<std::int64_t> as_int64s() const;
};

// Bytes per element of a safetensors dtype; throws cnnrt::Error for an unknown dtype.
CNNRT_API std::size_t safetensors_dtype_size(const std::string& dtype);

// A set of named tensors plus string metadata, loaded from or saved to one file.
class CNNRT_API SafeTensors {
 public:
  // Each add copies the data; a name that is empty, "__metadata__" or already present throws.
  void add_f32(const std::string& name, const std::vector<std::int64_t>& shape, const float* data);
  void add_i64(const std::string& name, const std::vector<std::int64_t>& shape,
               const std::int64_t* data);
  void add(const std::string& name, TensorData tensor);

  bool contains(const std::string& name) const;
  // Throws naming the missing tensor and the ones present.
  const TensorData& get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  std::size_t size() const { return tensors_.size(); }

  std::map<std::string, std::string> metadata;

  // Writes `path + ".tmp"`, flushes it to disk, then renames it over `path`: a crash mid-write
  // leaves the previous file intact.
  void save(const std::string& path) const;
  // Reads and validates a whole file: header length, JSON, dtypes, shapes, and offsets (in range,
  // sized product(shape) * dtype size, neither overlapping nor leaving gaps).
  static SafeTensors load(const std::string& path);
  // The same checks on a file held in memory; `name` names it in messages.
  static SafeTensors parse(const std::uint8_t* bytes, std::size_t size, const std::string& name);

 private:
  std::map<std::string, TensorData> tensors_;
};

}  // namespace cnnrt
