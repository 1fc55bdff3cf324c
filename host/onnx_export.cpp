// ONNX export (include/cnnrt/onnx.hpp) with the onnx library's protobuf classes: each layer's unit
// writes its own nodes through OnnxGraph (host/onnx_graph.hpp); this file holds the graph, its
// input and output, the initializers, the metadata, onnx's checker and the file.
#include <fmt/format.h>

#include <string>

#include "cnnrt/error.hpp"
#include "cnnrt/onnx.hpp"
#include "cnnrt/trainer.hpp"

#ifdef CNNRT_WITH_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <climits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <vector>

#include "host/file_bytes.hpp"
#include "host/layer.hpp"
#endif

namespace cnnrt {

#ifdef CNNRT_WITH_ONNX

namespace {

constexpr const char* kInputName = "input";
constexpr const char* kBatchDim = "N";

void set_shape(onnx::ValueInfoProto* value, const std::string& name,
               const std::vector<std::int64_t>& dims) {
  value->set_name(name);
  onnx::TypeProto_Tensor* type = value->mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* shape = type->mutable_shape();
  shape->add_dim()->set_dim_param(kBatchDim);
  for (const std::int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// The graph the units write into: it tracks the current value (the previous layer's output) and
// its rank, and adds each tensor a layer asks for as an initializer.
class ProtoGraph final : public OnnxGraph {
 public:
  ProtoGraph(const Model& model, onnx::GraphProto* graph) : model_(model), graph_(graph) {}

  void begin_layer(const std::string& layer) { layer_ = layer; }

  std::string input(int rank) override {
    if (rank == kAnyRank || rank == rank_) return current_;
    if (rank == 2) {
      add_node("Flatten", "/flatten", {current_}, {OnnxAttribute::integer("axis", 1)});
    } else {
      // [N, features] -> [N, features, 1, 1]: a dense layer's output is [units, 1, 1] in cnnrt.
      const std::string axes = layer_ + "/unsqueeze.axes";
      onnx::TensorProto* t = graph_->add_initializer();
      t->set_name(axes);
      t->set_data_type(onnx::TensorProto::INT64);
      t->add_dims(2);
      t->add_int64_data(2);
      t->add_int64_data(3);
      add_node("Unsqueeze", "/unsqueeze", {current_, axes}, {});
    }
    rank_ = rank;
    return current_;
  }

  std::string tensor(const std::string& suffix) override {
    const std::string name = layer_ + "." + suffix;
    if (!initializers_.insert(name).second) return name;
    const ParameterInfo* info = nullptr;
    bool state = false;
    for (const ParameterInfo& p : model_.parameters())
      if (p.name == name) info = &p;
    for (const ParameterInfo& p : model_.state_tensors())
      if (p.name == name) info = &p, state = true;
    if (info == nullptr)
      throw Error(fmt::format("ONNX export: layer {} has no tensor '{}'", layer_, name));
    const std::vector<float> values = state ? model_.state(name) : model_.parameter(name);
    onnx::TensorProto* t = graph_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (const std::int64_t d : info->shape) t->add_dims(d);
    // raw_data is little-endian, as the host is (safetensors.cpp asserts it).
    t->set_raw_data(values.data(), values.size() * sizeof(float));
    return name;
  }

  void node(const std::string& op_type, const std::vector<std::string>& inputs,
            const std::vector<OnnxAttribute>& attributes, int rank) override {
    add_node(op_type, "", inputs, attributes);
    if (rank != kAnyRank) rank_ = rank;
  }

  // The graph's output: [N, classes] (flattened if the last layer left [N, C, 1, 1]), through
  // Softmax when asked, under `name`.
  void finish(const std::string& name, bool softmax) {
    layer_ = "output";
    input(2);
    if (softmax) add_node("Softmax", "/softmax", {current_}, {OnnxAttribute::integer("axis", 1)});
    if (graph_->node_size() == 0) add_node("Identity", "/identity", {current_}, {});
    graph_->mutable_node(graph_->node_size() - 1)->set_output(0, name);
    current_ = name;
  }

 private:
  void add_node(const std::string& op_type, const std::string& suffix,
                const std::vector<std::string>& inputs,
                const std::vector<OnnxAttribute>& attributes) {
    std::string name = layer_ + suffix;
    // A unit adding more than one node: each value still gets its own name.
    for (int k = 2; !names_.insert(name).second; ++k)
      name = fmt::format("{}{}/{}", layer_, suffix, k);
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op_type);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    n->add_output(name);
    for (const OnnxAttribute& a : attributes) {
      onnx::AttributeProto* attribute = n->add_attribute();
      attribute->set_name(a.name);
      switch (a.kind) {
        case OnnxAttribute::Kind::integer:
          attribute->set_type(onnx::AttributeProto::INT);
          attribute->set_i(a.ints.at(0));
          break;
        case OnnxAttribute::Kind::integers:
          attribute->set_type(onnx::AttributeProto::INTS);
          for (const std::int64_t v : a.ints) attribute->add_ints(v);
          break;
        case OnnxAttribute::Kind::real:
          attribute->set_type(onnx::AttributeProto::FLOAT);
          attribute->set_f(a.real);
          break;
      }
    }
    current_ = name;
  }

  const Model& model_;
  onnx::GraphProto* graph_;
  std::string layer_;
  std::string current_ = kInputName;
  int rank_ = 4;
  std::set<std::string> initializers_;
  // Every value's name; the graph's input and possible outputs are taken from the start.
  std::set<std::string> names_{kInputName, "logits", "probabilities"};
};

void add_metadata(onnx::ModelProto& proto, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* entry = proto.add_metadata_props();
  entry->set_key(key);
  entry->set_value(value);
}

}  // namespace

bool onnx_export_available() {
  return true;
}

void export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options) {
  check_can_write(path, "ONNX file", true);
  const Network& network = model.network();
  const SampleShape in = network.input();
  const std::vector<SampleShape> shapes = model.layer_shapes();

  onnx::ModelProto proto;
  proto.set_ir_version(onnx::IR_VERSION);
  proto.set_producer_name("cnnrt");
  proto.set_producer_version(CNNRT_VERSION);
  proto.set_model_version(1);
  proto.set_doc_string(fmt::format(
      "{}: input [N, {}, {}, {}] float32, normalised as x = (byte / 255 - normalization_mean[c]) "
      "/ normalization_std[c] (see metadata_props)",
      network.name(), in.c, in.h, in.w));
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name(network.name());
  set_shape(graph->add_input(), kInputName, {in.c, in.h, in.w});

  ProtoGraph builder(model, graph);
  const auto& units = network.units();
  for (std::size_t i = 0; i < units.size(); ++i) {
    const LayerUnit& unit = *units[i];
    if (unit.identity_in_inference()) continue;
    builder.begin_layer(unit.name());
    const SampleShape layer_in = i == 0 ? in : shapes[i - 1];
    if (!unit.export_onnx(builder, layer_in))
      throw Error(
          fmt::format("layer {} ({}, type '{}') has no ONNX form; the model cannot be "
                      "exported to ONNX",
                      unit.name(), unit.describe(), network.layers()[i].type));
  }
  const std::string output = options.softmax ? "probabilities" : "logits";
  builder.finish(output, options.softmax);
  set_shape(graph->add_output(), output, {network.classes()});

  add_metadata(proto, "model", network_to_json(network));
  add_metadata(proto, "input_size", fmt::format("{}x{}x{}", in.c, in.h, in.w));
  add_metadata(proto, "normalization_mean", model.normalization().mean_text());
  add_metadata(proto, "normalization_std", model.normalization().std_text());
  if (!model.class_names().empty())
    add_metadata(proto, "class_names", nlohmann::json(model.class_names()).dump());

  try {
    onnx::checker::check_model(proto);
  } catch (const std::exception& e) {
    throw Error(fmt::format("ONNX export of {}: onnx's checker refused the graph: {}",
                            network.name(), e.what()));
  }
  if (proto.ByteSizeLong() > std::size_t(INT_MAX))
    throw Error(fmt::format("{}: the model is {} bytes, past the 2 GB a protobuf ONNX file holds",
                            path, proto.ByteSizeLong()));
  std::string bytes;
  if (!proto.SerializeToString(&bytes))
    throw Error(fmt::format("{}: could not serialise the ONNX model", path));
  write_file_via_temporary(path, {std::string_view(bytes)});
}

#else  // CNNRT_WITH_ONNX

bool onnx_export_available() {
  return false;
}

void export_onnx(const Model&, const std::string& path, const OnnxExportOptions&) {
  throw Error(fmt::format(
      "cannot write {}: this build of cnnrt has no ONNX export (configure with libonnx-dev and "
      "libprotobuf-dev installed, CNNRT_WITH_ONNX=ON)",
      path));
}

#endif  // CNNRT_WITH_ONNX

}  // namespace cnnrt
