#pragma once
// The graph a layer unit writes its inference forward pass into for ONNX export
// (host/onnx_export.cpp builds it with the onnx library's classes). The units see only this
// interface, so a layer kind's ONNX form lives in its own file and the library builds without
// libonnx.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cnnrt {

// A node attribute: an integer, a list of integers or a float.
struct OnnxAttribute {
  enum class Kind { integer, integers, real };
  std::string name;
  Kind kind = Kind::integer;
  std::vector<std::int64_t> ints;  // one value for Kind::integer
  float real = 0;

  static OnnxAttribute integer(std::string name, std::int64_t value) {
    return {std::move(name), Kind::integer, {value}, 0};
  }
  static OnnxAttribute integers(std::string name, std::vector<std::int64_t> values) {
    return {std::move(name), Kind::integers, std::move(values), 0};
  }
  static OnnxAttribute number(std::string name, float value) {
    return {std::move(name), Kind::real, {}, value};
  }
};

class OnnxGraph {
 public:
  // Any rank: element-wise layers and batch norm take [N, C, H, W] and [N, features] alike.
  static constexpr int kAnyRank = 0;

  virtual ~OnnxGraph() = default;
  // The layer's input value with `rank` 2 ([N, features]) or 4 ([N, C, H, W]); a Flatten (NCHW
  // order, as cnnrt flattens) or an Unsqueeze to [N, features, 1, 1] is added when the previous
  // layer left the other rank.
  virtual std::string input(int rank) = 0;
  // The layer's tensor "<layer>.<suffix>" (a parameter or a state tensor such as running_mean),
  // added once as an initializer with the model's values; returns its name.
  virtual std::string tensor(const std::string& suffix) = 0;
  // Adds a node (named after the layer) that reads `inputs`; its one output, of `rank` (kAnyRank:
  // the input's), becomes the next layer's input.
  virtual void node(const std::string& op_type, const std::vector<std::string>& inputs,
                    const std::vector<OnnxAttribute>& attributes, int rank) = 0;
};

}  // namespace cnnrt
