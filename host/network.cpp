#include "cnnrt/network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>

#include "cnnrt/error.hpp"
#include "host/file_bytes.hpp"
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

namespace {

// The kernels and the executor count one sample's values, and one parameter tensor's, in int.
constexpr std::int64_t kMaxValues = std::numeric_limits<int>::max();

// product(factors) when it is at most kMaxValues (every factor positive), else -1.
std::int64_t bounded_product(std::initializer_list<std::int64_t> factors) {
  std::int64_t product = 1;
  for (std::int64_t f : factors) {
    if (f <= 0 || product > kMaxValues / f) return -1;
    product *= f;
  }
  return product;
}

void check_values(const std::string& layer, const char* what, std::int64_t count,
                  const std::string& shape) {
  if (count < 0)
    throw Error(fmt::format("{}: {} {} has more than {} values", layer, what, shape, kMaxValues));
}

}  // namespace

std::vector<SampleShape> Network::infer_shapes() const {
  if (layers_.empty()) throw Error(fmt::format("{}: has no layers", name_));
  check_values(name_, "input", bounded_product({input_.c, input_.h, input_.w}), input_.to_string());
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
        check_values(s.name, "weight", bounded_product({s.filters, in.c, s.kernel_h, s.kernel_w}),
                     fmt::format("[{}, {}, {}, {}]", s.filters, in.c, s.kernel_h, s.kernel_w));
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
        check_values(s.name, "weight", bounded_product({s.units, in.size()}),
                     fmt::format("[{}, {}]", s.units, in.size()));
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
    check_values(s.name, "output", bounded_product({out.c, out.h, out.w}), out.to_string());
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

// A JSON value for a message: its text, cut short when long.
std::string brief(const json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

// `value` (named `key` in messages) as an int: a JSON integer that fits, nothing else (a float or
// a number past int's range is refused rather than converted).
int to_int(const json& value, const std::string& key, const std::string& where) {
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<int>::max()))
    return static_cast<int>(value.get<std::uint64_t>());
  if (value.is_number_integer() && !value.is_number_unsigned() &&
      value.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
      value.get<std::int64_t>() <= std::numeric_limits<int>::max())
    return static_cast<int>(value.get<std::int64_t>());
  throw Error(fmt::format("{}: '{}' must be an integer from {} to {}, got {}", where, key,
                          std::numeric_limits<int>::min(), std::numeric_limits<int>::max(),
                          brief(value)));
}

const json& required(const json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) throw Error(fmt::format("{}: '{}' is missing", where, key));
  return *it;
}

int int_field(const json& object, const char* key, const std::string& where) {
  return to_int(required(object, key, where), key, where);
}

// A number in [lo, hi] (a finite float), or `fallback` when absent.
float float_field(const json& object, const char* key, float fallback, double lo, double hi,
                  const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_number() || !(it->get<double>() >= lo && it->get<double>() <= hi))
    throw Error(fmt::format("{}: '{}' must be a number from {} to {}, got {}", where, key, lo, hi,
                            brief(*it)));
  return static_cast<float>(it->get<double>());
}

std::string string_field(const json& object, const char* key, const std::string& fallback,
                         const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_string())
    throw Error(fmt::format("{}: '{}' must be a string, got {}", where, key, brief(*it)));
  return it->get<std::string>();
}

std::pair<int, int> int_pair(const json& layer, const char* key, int fallback,
                             const std::string& where) {
  const auto it = layer.find(key);
  if (it == layer.end()) return {fallback, fallback};
  if (it->is_array() && it->size() == 2)
    return {to_int((*it)[0], key, where), to_int((*it)[1], key, where)};
  if (!it->is_number_integer())
    throw Error(fmt::format("{}: '{}' must be an integer or a pair of integers, got {}", where, key,
                            brief(*it)));
  const int value = to_int(*it, key, where);
  return {value, value};
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

void add_layer(Network& network, const json& l, const std::string& type, const std::string& name,
               const std::string& where) {
  if (type == "conv2d") {
    const auto [kh, kw] = int_pair(l, "kernel", 0, where);
    const auto [sh, sw] = int_pair(l, "stride", 1, where);
    network.conv2d(int_field(l, "filters", where), kh, kw, sh, sw, parse_padding(l, where), name);
  } else if (type == "relu") {
    network.activation(Activation::relu, 0.1f, name);
  } else if (type == "leaky_relu") {
    // Any sensible slope lies well inside this range; the bound keeps the float finite.
    network.activation(Activation::leaky_relu, float_field(l, "slope", 0.1f, -100, 100, where),
                       name);
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
    network.dense(int_field(l, "units", where), name);
  } else if (type == "dropout") {
    network.dropout(float_field(l, "p", 0.5f, 0.0, 1.0, where), name);
  } else {
    throw Error(
        fmt::format("{}: unknown layer type (known: conv2d, relu, leaky_relu, sigmoid, max_pool, "
                    "avg_pool, dense, dropout)",
                    where));
  }
}

}  // namespace

// A model file nests four levels: the object, its layers, a layer, a pair such as its kernel.
// Deeper input is refused while it is parsed: errors quote values with dump(), which recurses once
// per level (100,000 nested arrays overflowed the stack).
constexpr int kMaxModelFileDepth = 16;

Network network_from_json(const std::string& json_text, const std::string& origin) {
  const json::parser_callback_t bound_depth = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxModelFileDepth)
      throw Error(fmt::format("{}: the model file nests JSON deeper than {} levels", origin,
                              kMaxModelFileDepth));
    return true;
  };
  json doc;
  try {
    doc = json::parse(json_text, bound_depth);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw Error(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  try {
    if (!doc.is_object())
      throw Error(fmt::format("{}: a model file holds a JSON object, not {}", origin, brief(doc)));
    const json& input = required(doc, "input", origin);
    if (!input.is_array() || input.size() != 3)
      throw Error(fmt::format("{}: 'input' must be [C, H, W], got {}", origin, brief(input)));
    Network network(
        SampleShape{to_int(input[0], "input", origin), to_int(input[1], "input", origin),
                    to_int(input[2], "input", origin)},
        int_field(doc, "classes", origin), string_field(doc, "name", origin, origin));
    const json& layers = required(doc, "layers", origin);
    if (!layers.is_array() || layers.empty())
      throw Error(fmt::format("{}: 'layers' must be a non-empty array", origin));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const json& l = layers[i];
      const std::string at = fmt::format("{}: layer {}", origin, i + 1);
      if (!l.is_object()) throw Error(fmt::format("{} is not an object: {}", at, brief(l)));
      const json& type = required(l, "type", at);
      if (!type.is_string())
        throw Error(fmt::format("{}: 'type' must be a string, got {}", at, brief(type)));
      const std::string where = fmt::format("{} ({})", at, type.get<std::string>());
      add_layer(network, l, type.get<std::string>(), string_field(l, "name", "", where), where);
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

}  // namespace cnnrt
