#include "cnnrt/network.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>

#include "cnnrt/error.hpp"
#include "host/layer.hpp"

namespace cnnrt {

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

std::string LayerSpec::field(const std::string& key) const {
  const auto it = fields.find(key);
  return it == fields.end() ? std::string() : it->second;
}

Network& Network::add(LayerSpec layer) {
  const std::string where = layer.name.empty() ? layer.type : layer.name;
  return add(std::move(layer), where);
}

Network& Network::add(LayerSpec layer, const std::string& where) {
  const LayerType& type = find_layer_type(layer.type, where);
  const int count = counts_[type.counter] + 1;  // counted once the layer is accepted
  if (layer.name.empty()) layer.name = fmt::format("{}{}", type.prefix, count);
  for (const auto& existing : layers_)
    if (existing.name == layer.name)
      throw Error(fmt::format("{}: two layers are named '{}'", name_, layer.name));
  units_.push_back(type.make(layer, where));
  layers_.push_back(std::move(layer));
  counts_[type.counter] = count;
  return *this;
}

namespace {

LayerSpec spec_of(const char* type, std::string name,
                  std::initializer_list<std::pair<const char*, std::string>> fields) {
  LayerSpec s;
  s.type = type;
  s.name = std::move(name);
  for (const auto& [key, text] : fields) s.fields[key] = text;
  return s;
}

std::string padding_text(const Padding& padding) {
  if (padding.mode == Padding::Mode::explicit_)
    return field_text(std::vector<int>{padding.h, padding.w});
  return field_text(padding.to_string());
}

std::string pair_text(int a, int b) {
  return field_text(std::vector<int>{a, b});
}

}  // namespace

Network& Network::conv2d(int filters, int kernel, int stride, Padding padding, std::string name) {
  return conv2d(filters, kernel, kernel, stride, stride, padding, std::move(name));
}

Network& Network::conv2d(int filters, int kernel_h, int kernel_w, int stride_h, int stride_w,
                         Padding padding, std::string name) {
  return add(spec_of("conv2d", std::move(name),
                     {{"filters", field_text(filters)},
                      {"kernel", pair_text(kernel_h, kernel_w)},
                      {"stride", pair_text(stride_h, stride_w)},
                      {"padding", padding_text(padding)}}));
}

Network& Network::activation(Activation kind, float leaky_slope, std::string name) {
  if (kind == Activation::none)
    throw Error(fmt::format("{}: activation kind is none", name.empty() ? name_ : name));
  if (kind == Activation::leaky_relu)
    return add(spec_of("leaky_relu", std::move(name), {{"slope", field_text(leaky_slope)}}));
  return add(spec_of(to_string(kind), std::move(name), {}));
}

Network& Network::max_pool(int window, int stride, std::string name) {
  return add(spec_of("max_pool", std::move(name),
                     {{"window", field_text(window)}, {"stride", field_text(stride)}}));
}

Network& Network::avg_pool(int window, int stride, std::string name) {
  return add(spec_of("avg_pool", std::move(name),
                     {{"window", field_text(window)}, {"stride", field_text(stride)}}));
}

Network& Network::dense(int units, std::string name) {
  return add(spec_of("dense", std::move(name), {{"units", field_text(units)}}));
}

Network& Network::dropout(float p, std::string name) {
  return add(spec_of("dropout", std::move(name), {{"p", field_text(p)}}));
}

Network& Network::batch_norm(float momentum, float eps, std::string name) {
  return add(spec_of("batch_norm", std::move(name),
                     {{"momentum", field_text(momentum)}, {"eps", field_text(eps)}}));
}

Network& Network::global_avg_pool(std::string name) {
  return add(spec_of("global_avg_pool", std::move(name), {}));
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
  for (const auto& unit : units_) {
    const SampleShape out = unit->output_shape(in);
    for (const ParameterSpec& p : unit->parameters(in)) {
      std::int64_t count = 1;
      for (std::int64_t d : p.shape) count = count < 0 ? -1 : bounded_product({count, d});
      check_values(unit->name(), p.suffix.c_str(), count,
                   fmt::format("[{}]", fmt::join(p.shape, ", ")));
    }
    check_values(unit->name(), "output", bounded_product({out.c, out.h, out.w}), out.to_string());
    shapes.push_back(out);
    in = out;
  }
  const LayerUnit& last = *units_.back();
  if (!last.produces_logits() || in.size() != classes_)
    throw Error(fmt::format(
        "{}: the last layer ({}) must be a dense layer with {} outputs, one per class; it gives {}",
        name_, last.name(), classes_, in.to_string()));
  return shapes;
}

std::vector<LayerCost> layer_costs(const Network& network) {
  const std::vector<SampleShape> shapes = network.infer_shapes();
  std::vector<LayerCost> costs;
  SampleShape in = network.input();
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const LayerUnit& unit = *network.units()[i];
    LayerCost cost;
    cost.name = unit.name();
    cost.description = unit.describe();
    cost.output = shapes[i];
    for (const ParameterSpec& p : unit.parameters(in)) cost.parameters += element_count(p.shape);
    cost.flops = unit.flops(in, shapes[i]);
    cost.dense_equivalent = unit.dense_equivalent(in, shapes[i]);
    costs.push_back(cost);
    in = shapes[i];
  }
  return costs;
}

// ---------------------------------------------------------------------------------------------
// Model files

namespace {

using nlohmann::json;

const json& required(const json& object, const char* key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) throw Error(fmt::format("{}: '{}' is missing", where, key));
  return *it;
}

int int_field(const json& object, const char* key, const std::string& where) {
  return json_int(required(object, key, where), key, where);
}

std::string string_field(const json& object, const char* key, const std::string& fallback,
                         const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_string())
    throw Error(fmt::format("{}: '{}' must be a string, got {}", where, key, json_brief(*it)));
  return it->get<std::string>();
}

}  // namespace

Network network_from_json(const std::string& json_text, const std::string& origin) {
  json doc;
  try {
    doc = parse_model_json(json_text,
                           fmt::format("{}: the model file nests JSON deeper than", origin));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    throw Error(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  try {
    if (!doc.is_object())
      throw Error(
          fmt::format("{}: a model file holds a JSON object, not {}", origin, json_brief(doc)));
    const json& input = required(doc, "input", origin);
    if (!input.is_array() || input.size() != 3)
      throw Error(fmt::format("{}: 'input' must be [C, H, W], got {}", origin, json_brief(input)));
    Network network(
        SampleShape{json_int(input[0], "input", origin), json_int(input[1], "input", origin),
                    json_int(input[2], "input", origin)},
        int_field(doc, "classes", origin), string_field(doc, "name", origin, origin));
    const json& layers = required(doc, "layers", origin);
    if (!layers.is_array() || layers.empty())
      throw Error(fmt::format("{}: 'layers' must be a non-empty array", origin));
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const json& l = layers[i];
      const std::string at = fmt::format("{}: layer {}", origin, i + 1);
      if (!l.is_object()) throw Error(fmt::format("{} is not an object: {}", at, json_brief(l)));
      const json& type = required(l, "type", at);
      if (!type.is_string())
        throw Error(fmt::format("{}: 'type' must be a string, got {}", at, json_brief(type)));
      const std::string where = fmt::format("{} ({})", at, type.get<std::string>());
      LayerSpec spec;
      spec.type = type.get<std::string>();
      spec.name = string_field(l, "name", "", where);
      for (auto field = l.begin(); field != l.end(); ++field)
        if (field.key() != "type" && field.key() != "name")
          spec.fields[field.key()] = field->dump();
      network.add(std::move(spec), where);
    }
    network.infer_shapes();
    return network;
  } catch (const json::exception& e) {
    throw Error(fmt::format("{}: {}", origin, e.what()));
  } catch (const Error& e) {
    // Shape and naming errors from the network name the layer; the reader also needs the file.
    const std::string message = e.what();
    if (message.rfind(origin, 0) == 0) throw;
    const std::string located = fmt::format("{}: {}", origin, message);
    if (dynamic_cast<const ValueError*>(&e) != nullptr) throw ValueError(located);
    throw Error(located);
  }
}

std::string network_to_json(const Network& network) {
  json doc;
  doc["name"] = network.name();
  doc["input"] = {network.input().c, network.input().h, network.input().w};
  doc["classes"] = network.classes();
  json layers = json::array();
  for (std::size_t i = 0; i < network.layers().size(); ++i) {
    const LayerSpec& s = network.layers()[i];
    json l;
    l["name"] = s.name;
    l["type"] = s.type;
    network.units()[i]->write_fields(l);
    layers.push_back(l);
  }
  doc["layers"] = layers;
  return doc.dump(2);
}

Network with_classes(const Network& network, int classes) {
  if (classes == network.classes()) return network;
  if (network.layers().empty() || network.layers().back().type != "dense")
    throw Error(fmt::format(
        "{}: cannot give it {} classes: its last layer ({}) is not a dense layer whose units "
        "could follow the class count; write a model file with \"classes\": {}",
        network.name(), classes, network.layers().empty() ? "none" : network.layers().back().name,
        classes));
  json doc = json::parse(network_to_json(network));
  doc["classes"] = classes;
  doc["layers"].back()["units"] = classes;
  return network_from_json(doc.dump(), network.name());
}

}  // namespace cnnrt
