#include "cnnrt/network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cnnrt/error.hpp"
#include "kernels/ops.hpp"

namespace cnnrt {

const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::conv2d:
      return "conv2d";
    case LayerKind::activation:
      return "activation";
    case LayerKind::max_pool:
      return "max_pool";
    case LayerKind::avg_pool:
      return "avg_pool";
    case LayerKind::dense:
      return "dense";
    case LayerKind::dropout:
      return "dropout";
  }
  return "unknown";
}

const char* to_string(Activation kind) {
  switch (kind) {
    case Activation::none:
      return "none";
    case Activation::relu:
      return "relu";
    case Activation::leaky_relu:
      return "leaky_relu";
    case Activation::sigmoid:
      return "sigmoid";
  }
  return "unknown";
}

std::string SampleShape::to_string() const {
  return fmt::format("{}x{}x{}", c, h, w);
}

Network::Network(SampleShape input, int classes, std::string name)
    : input_(input), classes_(classes), name_(std::move(name)) {
  if (input.c <= 0 || input.h <= 0 || input.w <= 0)
    throw Error(fmt::format("{}: input shape {} must be positive", name_, input.to_string()));
  if (classes < 2) throw Error(fmt::format("{}: needs at least 2 classes, got {}", name_, classes));
}

Network& Network::add(LayerSpec layer) {
  static const char* const kPrefixes[] = {"conv", "act", "pool", "pool", "fc", "dropout"};
  const int kind = static_cast<int>(layer.kind);
  // max and avg pooling share one counter so names stay pool1, pool2, ...
  const int counter =
      layer.kind == LayerKind::avg_pool ? static_cast<int>(LayerKind::max_pool) : kind;
  ++counts_[counter];
  if (layer.name.empty()) {
    const char* prefix = kPrefixes[kind];
    if (layer.kind == LayerKind::activation) prefix = to_string(layer.activation);
    layer.name = fmt::format("{}{}", prefix, counts_[counter]);
  }
  for (const auto& existing : layers_)
    if (existing.name == layer.name)
      throw Error(fmt::format("{}: two layers are named '{}'", name_, layer.name));
  layers_.push_back(std::move(layer));
  return *this;
}

Network& Network::conv2d(int filters, int kernel, int stride, Padding padding, std::string name) {
  return conv2d(filters, kernel, kernel, stride, stride, padding, std::move(name));
}

Network& Network::conv2d(int filters, int kernel_h, int kernel_w, int stride_h, int stride_w,
                         Padding padding, std::string name) {
  LayerSpec s;
  s.kind = LayerKind::conv2d;
  s.name = std::move(name);
  s.filters = filters;
  s.kernel_h = kernel_h, s.kernel_w = kernel_w;
  s.stride_h = stride_h, s.stride_w = stride_w;
  s.padding = padding;
  return add(std::move(s));
}

Network& Network::activation(Activation kind, float leaky_slope, std::string name) {
  LayerSpec s;
  s.kind = LayerKind::activation;
  s.name = std::move(name);
  s.activation = kind;
  s.leaky_slope = leaky_slope;
  return add(std::move(s));
}

namespace {
LayerSpec pool_spec(LayerKind kind, int window, int stride, std::string name) {
  LayerSpec s;
  s.kind = kind;
  s.name = std::move(name);
  s.kernel_h = s.kernel_w = window;
  s.stride_h = s.stride_w = stride;
  return s;
}
}  // namespace

Network& Network::max_pool(int window, int stride, std::string name) {
  return add(pool_spec(LayerKind::max_pool, window, stride, std::move(name)));
}

Network& Network::avg_pool(int window, int stride, std::string name) {
  return add(pool_spec(LayerKind::avg_pool, window, stride, std::move(name)));
}

Network& Network::dense(int units, std::string name) {
  LayerSpec s;
  s.kind = LayerKind::dense;
  s.name = std::move(name);
  s.units = units;
  return add(std::move(s));
}

Network& Network::dropout(float p, std::string name) {
  LayerSpec s;
  s.kind = LayerKind::dropout;
  s.name = std::move(name);
  s.dropout_p = p;
  return add(std::move(s));
}

std::vector<SampleShape> Network::infer_shapes() const {
  if (layers_.empty()) throw Error(fmt::format("{}: has no layers", name_));
  std::vector<SampleShape> shapes;
  SampleShape in = input_;
  for (const LayerSpec& s : layers_) {
    SampleShape out = in;
    switch (s.kind) {
      case LayerKind::conv2d: {
        if (s.filters <= 0)
          throw Error(
              fmt::format("{}: needs a positive number of filters, got {}", s.name, s.filters));
        const Conv2dGeometry g =
            make_conv2d_geometry(s.name.c_str(), 1, in.c, in.h, in.w, s.filters, s.kernel_h,
                                 s.kernel_w, s.stride_h, s.stride_w, s.padding);
        out = SampleShape{s.filters, g.out_h, g.out_w};
        break;
      }
      case LayerKind::max_pool:
      case LayerKind::avg_pool: {
        const Pool2dGeometry g = make_pool2d_geometry(
            s.name.c_str(), 1, in.c, in.h, in.w, s.kernel_h, s.kernel_w, s.stride_h, s.stride_w);
        out = SampleShape{in.c, g.out_h, g.out_w};
        break;
      }
      case LayerKind::dense:
        if (s.units <= 0)
          throw Error(fmt::format("{}: needs a positive number of units, got {}", s.name, s.units));
        out = SampleShape{s.units, 1, 1};
        break;
      case LayerKind::activation:
        if (s.activation == Activation::none)
          throw Error(fmt::format("{}: activation kind is none", s.name));
        break;
      case LayerKind::dropout:
        if (!(s.dropout_p >= 0.0f && s.dropout_p < 1.0f))
          throw Error(
              fmt::format("{}: dropout probability {} is outside [0, 1)", s.name, s.dropout_p));
        break;
    }
    shapes.push_back(out);
    in = out;
  }
  const LayerSpec& last = layers_.back();
  if (last.kind != LayerKind::dense || in.size() != classes_)
    throw Error(fmt::format(
        "{}: the last layer ({}) must be a dense layer with {} outputs, one per class; it gives {}",
        name_, last.name, classes_, in.to_string()));
  return shapes;
}

// ---------------------------------------------------------------------------------------------
// Model files

namespace {

using nlohmann::json;

std::pair<int, int> int_pair(const json& layer, const char* key, int fallback,
                             const std::string& where) {
  if (!layer.contains(key)) return {fallback, fallback};
  const json& v = layer.at(key);
  if (v.is_number_integer()) return {v.get<int>(), v.get<int>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer())
    return {v[0].get<int>(), v[1].get<int>()};
  throw Error(fmt::format("{}: '{}' must be an integer or a pair of integers", where, key));
}

Padding parse_padding(const json& layer, const std::string& where) {
  if (!layer.contains("padding")) return Padding::valid();
  const json& v = layer.at("padding");
  if (v.is_string()) {
    const std::string text = v.get<std::string>();
    if (text == "valid") return Padding::valid();
    if (text == "same") return Padding::same();
    throw Error(fmt::format("{}: padding '{}' is not valid, same, or an integer", where, text));
  }
  const auto [ph, pw] = int_pair(layer, "padding", 0, where);
  if (ph < 0 || pw < 0) throw Error(fmt::format("{}: padding must not be negative", where));
  return Padding::explicit_pad(ph, pw);
}

}  // namespace

Network network_from_json(const std::string& json_text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw Error(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  try {
    const auto input = doc.at("input").get<std::vector<int>>();
    if (input.size() != 3)
      throw Error(
          fmt::format("{}: 'input' must be [C, H, W], got {} numbers", origin, input.size()));
    Network network(SampleShape{input[0], input[1], input[2]}, doc.at("classes").get<int>(),
                    doc.value("name", origin));
    const json& layers = doc.at("layers");
    if (!layers.is_array() || layers.empty())
      throw Error(fmt::format("{}: 'layers' must be a non-empty array", origin));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const json& l = layers[i];
      const std::string type = l.at("type").get<std::string>();
      const std::string name = l.value("name", "");
      const std::string where = fmt::format("{}: layer {} ({})", origin, i + 1, type);
      if (type == "conv2d") {
        const auto [kh, kw] = int_pair(l, "kernel", 0, where);
        const auto [sh, sw] = int_pair(l, "stride", 1, where);
        network.conv2d(l.at("filters").get<int>(), kh, kw, sh, sw, parse_padding(l, where), name);
      } else if (type == "relu") {
        network.activation(Activation::relu, 0.1f, name);
      } else if (type == "leaky_relu") {
        network.activation(Activation::leaky_relu, l.value("slope", 0.1f), name);
      } else if (type == "sigmoid") {
        network.activation(Activation::sigmoid, 0.1f, name);
      } else if (type == "max_pool" || type == "avg_pool") {
        const auto [wh, ww] = int_pair(l, "window", 2, where);
        const auto [sh, sw] = int_pair(l, "stride", wh, where);
        LayerSpec s;
        s.kind = type == "max_pool" ? LayerKind::max_pool : LayerKind::avg_pool;
        s.name = name;
        s.kernel_h = wh, s.kernel_w = ww, s.stride_h = sh, s.stride_w = sw;
        network.add(s);
      } else if (type == "dense") {
        network.dense(l.at("units").get<int>(), name);
      } else if (type == "dropout") {
        network.dropout(l.value("p", 0.5f), name);
      } else {
        throw Error(fmt::format(
            "{}: unknown layer type (known: conv2d, relu, leaky_relu, sigmoid, max_pool, "
            "avg_pool, dense, dropout)",
            where));
      }
    }
    network.infer_shapes();
    return network;
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: {}", origin, e.what()));
  } catch (const Error& e) {
    // Shape and naming errors from the network name the layer; the reader also needs the file.
    const std::string message = e.what();
    if (message.rfind(origin, 0) == 0) throw;
    throw Error(fmt::format("{}: {}", origin, message));
  }
}

std::string network_to_json(const Network& network) {
  json doc;
  doc["name"] = network.name();
  doc["input"] = {network.input().c, network.input().h, network.input().w};
  doc["classes"] = network.classes();
  json layers = json::array();
  for (const LayerSpec& s : network.layers()) {
    json l;
    l["name"] = s.name;
    switch (s.kind) {
      case LayerKind::conv2d:
        l["type"] = "conv2d";
        l["filters"] = s.filters;
        l["kernel"] = {s.kernel_h, s.kernel_w};
        l["stride"] = {s.stride_h, s.stride_w};
        if (s.padding.mode == Padding::Mode::explicit_)
          l["padding"] = {s.padding.h, s.padding.w};
        else
          l["padding"] = s.padding.to_string();
        break;
      case LayerKind::activation:
        l["type"] = to_string(s.activation);
        if (s.activation == Activation::leaky_relu) l["slope"] = s.leaky_slope;
        break;
      case LayerKind::max_pool:
      case LayerKind::avg_pool:
        l["type"] = s.kind == LayerKind::max_pool ? "max_pool" : "avg_pool";
        l["window"] = {s.kernel_h, s.kernel_w};
        l["stride"] = {s.stride_h, s.stride_w};
        break;
      case LayerKind::dense:
        l["type"] = "dense";
        l["units"] = s.units;
        break;
      case LayerKind::dropout:
        l["type"] = "dropout";
        l["p"] = s.dropout_p;
        break;
    }
    layers.push_back(l);
  }
  doc["layers"] = layers;
  return doc.dump(2);
}

namespace {

std::vector<std::string> preset_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("CNNRT_PRESET_DIR"); env != nullptr && *env != '\0')
    dirs.emplace_back(env);
  dirs.emplace_back(CNNRT_INSTALLED_PRESET_DIR);
  dirs.emplace_back(CNNRT_PRESET_DIR);
  return dirs;
}

bool read_file(const std::string& path, std::string* text) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  std::ostringstream buffer;
  buffer << file.rdbuf();
  *text = buffer.str();
  return true;
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"lenet5", "lenet5-classic", "alexnet"};
}

Network load_network(const std::string& name_or_path) {
  std::string text;
  const bool looks_like_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0);
  if (looks_like_path) {
    if (!read_file(name_or_path, &text))
      throw Error(fmt::format("model file {} cannot be read", name_or_path));
    return network_from_json(text, name_or_path);
  }
  const auto names = preset_names();
  if (std::find(names.begin(), names.end(), name_or_path) == names.end())
    throw Error(fmt::format("unknown model '{}' (presets: {}; or give a path to a .json file)",
                            name_or_path, fmt::join(names, ", ")));
  for (const std::string& dir : preset_dirs()) {
    const std::string path = dir + "/" + name_or_path + ".json";
    if (read_file(path, &text)) return network_from_json(text, path);
  }
  throw Error(fmt::format("preset '{}' not found in {} (set CNNRT_PRESET_DIR)", name_or_path,
                          fmt::join(preset_dirs(), ", ")));
}

}  // namespace cnnrt
