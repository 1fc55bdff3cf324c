// Export: the ONNX file read back with the onnx library's protobuf classes (node types in order,
// attributes computed by hand, opset, the dynamic batch dimension, initializers holding the
// model's values, metadata), its refusals (an unwritable path leaves nothing behind, a layer ONNX
// cannot express is named), and the weights-only safetensors file (no optimizer state, PyTorch's
// names and dtypes, read back by load_checkpoint). Numerical agreement with onnxruntime and
// PyTorch's strict load are checked by tests/onnx_check.py.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/onnx.hpp"
#include "cnnrt/safetensors.hpp"
#include "host/cpu_backend.hpp"
#include "host/layer.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

#ifdef CNNRT_WITH_ONNX
#include <onnx/onnx_pb.h>
#endif

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

class ExportTest : public test::ScratchDirTest {
 protected:
  ExportTest() : ScratchDirTest("export_test") {}
};

TEST_F(ExportTest, WeightsFileHoldsParametersAndStateOnly) {
  Model model(load_network("fmnist-bn"), test::cpu_options(8, 3));
  test::train_a_little(model, 3);
  const std::string file = path("w.safetensors");
  save_weights(file, model);

  const SafeTensors saved = SafeTensors::load(file);
  std::set<std::string> expected;
  for (const ParameterInfo& p : model.parameters()) expected.insert(p.name);
  for (const ParameterInfo& p : model.state_tensors()) expected.insert(p.name);
  const std::vector<std::string> names = saved.names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);
  EXPECT_TRUE(expected.count("bn1.running_mean") && expected.count("bn3.num_batches_tracked"));
  EXPECT_EQ(saved.metadata.count("optimizer"), 0u);
  EXPECT_EQ(saved.metadata.count("epochs_done"), 0u);
  // PyTorch's dtype for the batch counter; three training steps counted.
  const TensorData& counter = saved.get("bn2.num_batches_tracked");
  EXPECT_EQ(counter.dtype, "I64");
  EXPECT_TRUE(counter.shape.empty());
  EXPECT_EQ(counter.as_int64s(), std::vector<std::int64_t>{3});
  const std::vector<float> running_var = model.state("bn1.running_var");
  EXPECT_NE(running_var, std::vector<float>(running_var.size(), 1.0f)) << "stats did not move";
  EXPECT_EQ(saved.get("bn1.running_var").as_floats(), running_var);
  EXPECT_EQ(saved.get("fc2.weight").as_floats(), model.parameter("fc2.weight"));

  // Read back as weights: every parameter and state tensor the same bits.
  Model reader(load_network("fmnist-bn"), test::cpu_options(8, 9));
  const CheckpointState state = load_checkpoint(file, reader, false);
  EXPECT_FALSE(state.has_momentum);
  for (const ParameterInfo& p : model.parameters())
    EXPECT_EQ(reader.parameter(p.name), model.parameter(p.name)) << p.name;
  for (const ParameterInfo& p : model.state_tensors())
    EXPECT_EQ(reader.state(p.name), model.state(p.name)) << p.name;
}

#ifndef CNNRT_WITH_ONNX

TEST_F(ExportTest, WithoutOnnxTheExportSaysSo) {
  EXPECT_FALSE(onnx_export_available());
  Model model(load_network("lenet5"), test::cpu_options(1));
  const std::string file = path("m.onnx");
  EXPECT_TRUE(
      test::contains(test::error_message([&] { export_onnx(model, file); }), "no ONNX export"));
  EXPECT_FALSE(fs::exists(file));
}

#else

// "opaque": the identity, a layer kind without an ONNX form. CPU only.
class OpaqueUnit final : public LayerUnitOf<OpaqueUnit> {
 public:
  explicit OpaqueUnit(const LayerSpec& spec) : LayerUnitOf(spec.name) {}
  SampleShape output_shape(const SampleShape& in) const override { return in; }
  std::int64_t flops(const SampleShape&, const SampleShape&) const override { return 0; }
  std::string describe() const override { return "opaque"; }
  void write_fields(nlohmann::json&) const override {}
  template <typename T>
  void forward_cpu(const LayerPass<T>& p, CpuContext&) const {
    std::copy(p.in, p.in + p.out_count(), p.out);
  }
  void forward_cuda(const LayerPass<float>&, CudaContext&) const {}
  template <typename T>
  void backward_data_cpu(const LayerPass<T>& p, CpuContext&) const {
    std::copy(p.dout, p.dout + p.out_count(), p.din);
  }
  void backward_data_cuda(const LayerPass<float>&, CudaContext&) const {}
};

std::shared_ptr<const LayerUnit> make_opaque(const LayerSpec& spec, const std::string&) {
  return std::make_shared<OpaqueUnit>(spec);
}

onnx::ModelProto read_model(const std::string& file) {
  const std::vector<std::uint8_t> bytes = test::read_bytes(file);
  onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromArray(bytes.data(), int(bytes.size()))) << file;
  return proto;
}

std::vector<std::string> op_types(const onnx::ModelProto& proto) {
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : proto.graph().node()) ops.push_back(n.op_type());
  return ops;
}

const onnx::NodeProto& node_named(const onnx::ModelProto& proto, const std::string& name) {
  for (const onnx::NodeProto& n : proto.graph().node())
    if (n.name() == name) return n;
  throw Error("no node " + name);
}

std::vector<std::int64_t> ints_of(const onnx::NodeProto& node, const std::string& attribute) {
  for (const onnx::AttributeProto& a : node.attribute())
    if (a.name() == attribute) return {a.ints().begin(), a.ints().end()};
  return {};
}

std::string metadata(const onnx::ModelProto& proto, const std::string& key) {
  for (const onnx::StringStringEntryProto& e : proto.metadata_props())
    if (e.key() == key) return e.value();
  return "<absent>";
}

// [dim_param or value, ...] of a graph input or output.
std::vector<std::string> dims_of(const onnx::ValueInfoProto& value) {
  std::vector<std::string> dims;
  for (const auto& d : value.type().tensor_type().shape().dim())
    dims.push_back(d.has_dim_param() ? d.dim_param() : std::to_string(d.dim_value()));
  return dims;
}

std::vector<float> initializer(const onnx::ModelProto& proto, const std::string& name) {
  for (const onnx::TensorProto& t : proto.graph().initializer())
    if (t.name() == name) {
      std::vector<float> values(t.raw_data().size() / sizeof(float));
      std::memcpy(values.data(), t.raw_data().data(), values.size() * sizeof(float));
      return values;
    }
  throw Error("no initializer " + name);
}

TEST_F(ExportTest, Lenet5Graph) {
  ASSERT_TRUE(onnx_export_available());
  Model model(load_network("lenet5"), test::cpu_options(1));
  Normalization norm;
  norm.mean = {0.25f};
  norm.std = {0.5f};
  model.set_normalization(norm);
  model.set_class_names({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
  const std::string file = path("lenet5.onnx");
  export_onnx(model, file);
  EXPECT_FALSE(fs::exists(file + ".tmp"));

  const onnx::ModelProto proto = read_model(file);
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_EQ(proto.opset_import(0).version(), 17);
  EXPECT_EQ(op_types(proto),
            (std::vector<std::string>{"Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
                                      "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm"}));
  ASSERT_EQ(proto.graph().input_size(), 1);
  EXPECT_EQ(proto.graph().input(0).name(), "input");
  EXPECT_EQ(dims_of(proto.graph().input(0)), (std::vector<std::string>{"N", "1", "28", "28"}));
  ASSERT_EQ(proto.graph().output_size(), 1);
  EXPECT_EQ(proto.graph().output(0).name(), "logits");
  EXPECT_EQ(dims_of(proto.graph().output(0)), (std::vector<std::string>{"N", "10"}));
  EXPECT_EQ(proto.graph().node(11).output(0), "logits");
  // conv1: 5x5 "same" on 28: 4 rows of padding, 2 on each side; conv2 "valid": none.
  EXPECT_EQ(ints_of(node_named(proto, "conv1"), "pads"), (std::vector<std::int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(ints_of(node_named(proto, "conv2"), "pads"), (std::vector<std::int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(ints_of(node_named(proto, "pool1"), "kernel_shape"), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(initializer(proto, "fc1.weight"), model.parameter("fc1.weight"));
  EXPECT_EQ(initializer(proto, "conv2.bias"), model.parameter("conv2.bias"));
  EXPECT_EQ(metadata(proto, "normalization_mean"), "0.25");
  EXPECT_EQ(metadata(proto, "normalization_std"), "0.5");
  EXPECT_EQ(metadata(proto, "class_names"), R"(["a","b","c","d","e","f","g","h","i","j"])");
  EXPECT_EQ(metadata(proto, "input_size"), "1x28x28");
  EXPECT_EQ(network_from_json(metadata(proto, "model"), "metadata").layers().size(), 11u);
}

TEST_F(ExportTest, BatchNormGraphWithSoftmax) {
  Model model(load_network("fmnist-bn"), test::cpu_options(8, 5));
  test::train_a_little(model, 2);
  const std::string file = path("bn.onnx");
  OnnxExportOptions options;
  options.softmax = true;
  export_onnx(model, file, options);

  const onnx::ModelProto proto = read_model(file);
  // The dropout layer is left out; batch norm after the dense layer works on [N, 256].
  EXPECT_EQ(op_types(proto),
            (std::vector<std::string>{"Conv", "BatchNormalization", "Relu", "MaxPool", "Conv",
                                      "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm",
                                      "BatchNormalization", "Relu", "Gemm", "Softmax"}));
  EXPECT_EQ(proto.graph().output(0).name(), "probabilities");
  const onnx::NodeProto& bn = node_named(proto, "bn3");
  EXPECT_EQ(std::vector<std::string>(bn.input().begin(), bn.input().end()),
            (std::vector<std::string>{"fc1", "bn3.weight", "bn3.bias", "bn3.running_mean",
                                      "bn3.running_var"}));
  ASSERT_EQ(bn.attribute_size(), 1);
  EXPECT_EQ(bn.attribute(0).name(), "epsilon");
  EXPECT_FLOAT_EQ(bn.attribute(0).f(), 1e-5f);
  EXPECT_EQ(initializer(proto, "bn1.running_var"), model.state("bn1.running_var"));
  EXPECT_EQ(initializer(proto, "bn3.running_mean"), model.state("bn3.running_mean"));
  EXPECT_EQ(metadata(proto, "class_names"), "<absent>");
}

TEST_F(ExportTest, OddPaddingAndDenseBeforeConvolution) {
  // conv 4x4 "same" stride 1 on 7: 3 rows of padding, 1 before and 2 after (the extra row after,
  // cnnrt's rule). A dense layer's [N, 8] output reaches the 1x1 convolution as [N, 8, 1, 1].
  Network network({2, 7, 7}, 3, "odd");
  network.conv2d(4, 4, 1, Padding::same())
      .leaky_relu(0.2f)
      .avg_pool(2, 2)
      .dense(8)
      .conv2d(5, 1)
      .sigmoid()
      .global_avg_pool()
      .dense(3);
  Model model(network, test::cpu_options(1));
  const std::string file = path("odd.onnx");
  export_onnx(model, file);
  const onnx::ModelProto proto = read_model(file);
  EXPECT_EQ(op_types(proto), (std::vector<std::string>{
                                 "Conv", "LeakyRelu", "AveragePool", "Flatten", "Gemm", "Unsqueeze",
                                 "Conv", "Sigmoid", "GlobalAveragePool", "Flatten", "Gemm"}));
  EXPECT_EQ(ints_of(node_named(proto, "conv1"), "pads"), (std::vector<std::int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(proto.graph().node(1).attribute(0).name(), "alpha");
  EXPECT_FLOAT_EQ(proto.graph().node(1).attribute(0).f(), 0.2f);
}

TEST_F(ExportTest, UnwritablePathLeavesNothing) {
  Model model(load_network("lenet5"), test::cpu_options(1));
  const std::string missing_dir = path("no/such/dir/m.onnx");
  EXPECT_TRUE(
      test::contains(test::error_message([&] { export_onnx(model, missing_dir); }), missing_dir));
  const std::string blocked = path("blocked.onnx");
  fs::create_directory(blocked + ".tmp");  // the temporary file cannot be created
  EXPECT_TRUE(test::contains(test::error_message([&] { export_onnx(model, blocked); }),
                             "cannot write the ONNX file"));
  EXPECT_FALSE(fs::exists(blocked));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir()), fs::directory_iterator()), 1)
      << "only the blocking directory";
}

TEST_F(ExportTest, LayerWithoutOnnxFormIsNamed) {
  static const bool registered = [] {
    register_layer_type(LayerType{"opaque", "opaque", "opaque", make_opaque});
    return true;
  }();
  (void)registered;
  Network network({1, 6, 6}, 2, "with_opaque");
  network.conv2d(2, 3).add(LayerSpec{"opaque", "mystery", {}}).dense(2);
  Model model(network, test::cpu_options(1));
  const std::string file = path("opaque.onnx");
  const std::string message = test::error_message([&] { export_onnx(model, file); });
  EXPECT_TRUE(test::contains(message, "layer mystery (opaque, type 'opaque') has no ONNX form"))
      << message;
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

#endif  // CNNRT_WITH_ONNX

}  // namespace
}  // namespace cnnrt
