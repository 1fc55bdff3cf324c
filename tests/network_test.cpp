// Network descriptions: default layer names, duplicate names, shape inference for the presets
// against shapes worked out by hand from the convolution and pooling formulas, shape errors that
// name the layer and the shapes, model-file errors that name the file, the JSON round trip and
// preset loading.
#include "cnnrt/network.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/recipe.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

std::vector<std::string> layer_names(const Network& network) {
  std::vector<std::string> names;
  for (const LayerSpec& s : network.layers()) names.push_back(s.name);
  return names;
}

std::vector<std::string> shape_strings(const std::vector<SampleShape>& shapes) {
  std::vector<std::string> out;
  for (const SampleShape& s : shapes) out.push_back(s.to_string());
  return out;
}

Network modern_lenet5() {
  Network n(SampleShape{1, 28, 28}, 10, "lenet5");
  n.conv2d(6, 5, 1, Padding::same()).relu().max_pool(2, 2);
  n.conv2d(16, 5, 1, Padding::valid()).relu().max_pool(2, 2);
  n.dense(120).relu().dense(84).relu().dense(10);
  return n;
}

TEST(NetworkTest, BuilderNamesLayersByKindAndIndex) {
  const Network n = modern_lenet5();
  EXPECT_EQ(layer_names(n),
            (std::vector<std::string>{"conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "fc1",
                                      "relu3", "fc2", "relu4", "fc3"}));
}

TEST(NetworkTest, MaxAndAvgPoolShareOneCounterAndOtherKindsAreNamed) {
  Network n(SampleShape{1, 16, 16}, 10);
  n.conv2d(4, 3, 1, Padding::same()).sigmoid().avg_pool(2, 2).leaky_relu(0.2f);
  n.max_pool(2, 2).dropout(0.25f).dense(10);
  EXPECT_EQ(layer_names(n), (std::vector<std::string>{"conv1", "sigmoid1", "pool1", "leaky_relu2",
                                                      "pool2", "dropout1", "fc1"}));
  const nlohmann::json layers = nlohmann::json::parse(network_to_json(n))["layers"];
  EXPECT_EQ(layers[3]["slope"].get<float>(), 0.2f);
  EXPECT_EQ(layers[5]["p"].get<float>(), 0.25f);
}

TEST(NetworkTest, GivenNamesAreKept) {
  Network n(SampleShape{1, 8, 8}, 3);
  n.conv2d(2, 3, 1, Padding::valid(), "features").dense(3, "classifier");
  EXPECT_EQ(layer_names(n), (std::vector<std::string>{"features", "classifier"}));
}

TEST(NetworkTest, DuplicateNamesAreRejected) {
  Network n(SampleShape{1, 8, 8}, 3);
  n.conv2d(2, 3, 1, Padding::valid(), "block");
  const std::string message = test::error_message([&] { n.dense(3, "block"); });
  EXPECT_TRUE(test::contains(message, "'block'"));
  EXPECT_EQ(n.layers().size(), 1u);  // the rejected layer was not added

  // A default name that collides with an earlier explicit one is rejected too.
  Network m(SampleShape{1, 8, 8}, 3);
  m.conv2d(2, 3, 1, Padding::valid(), "conv2");
  EXPECT_TRUE(test::contains(test::error_message([&] { m.conv2d(2, 3); }), "'conv2'"));
}

TEST(NetworkTest, InferShapesLeNet5) {
  // conv1 same: 28x28; pool 2/2: 14; conv2 valid 5x5: 14-5+1 = 10; pool: 5; 16*5*5 = 400.
  const std::vector<std::string> expected = {"6x28x28",  "6x28x28", "6x14x14", "16x10x10",
                                             "16x10x10", "16x5x5",  "120x1x1", "120x1x1",
                                             "84x1x1",   "84x1x1",  "10x1x1"};
  EXPECT_EQ(shape_strings(modern_lenet5().infer_shapes()), expected);
  const Network preset = load_network("lenet5");
  EXPECT_EQ(shape_strings(preset.infer_shapes()), expected);
  EXPECT_EQ(preset.infer_shapes()[5].size(), 400);
}

TEST(NetworkTest, InferShapesLeNet5Classic) {
  const Network n = load_network("lenet5-classic");
  EXPECT_EQ(layer_names(n),
            (std::vector<std::string>{"conv1", "sigmoid1", "pool1", "conv2", "sigmoid2", "pool2",
                                      "fc1", "sigmoid3", "fc2", "sigmoid4", "fc3"}));
  EXPECT_EQ(n.layers()[2].type, "avg_pool");
  EXPECT_EQ(
      shape_strings(n.infer_shapes()),
      (std::vector<std::string>{"6x28x28", "6x28x28", "6x14x14", "16x10x10", "16x10x10", "16x5x5",
                                "120x1x1", "120x1x1", "84x1x1", "84x1x1", "10x1x1"}));
}

TEST(NetworkTest, InferShapesAlexNet) {
  // conv1: (227 - 11) / 4 + 1 = 55; pools 3/2: (55-3)/2+1 = 27, (27-3)/2+1 = 13, (13-3)/2+1 = 6;
  // conv2 pad 2 and conv3-5 pad 1 keep the size; 256*6*6 = 9216.
  const Network n = load_network("alexnet");
  EXPECT_EQ(n.input().to_string(), "3x227x227");
  EXPECT_EQ(n.classes(), 1000);
  const std::vector<SampleShape> shapes = n.infer_shapes();
  EXPECT_EQ(
      shape_strings(shapes),
      (std::vector<std::string>{"96x55x55",  "96x55x55",  "96x27x27",  "256x27x27", "256x27x27",
                                "256x13x13", "384x13x13", "384x13x13", "384x13x13", "384x13x13",
                                "256x13x13", "256x13x13", "256x6x6",   "4096x1x1",  "4096x1x1",
                                "4096x1x1",  "4096x1x1",  "4096x1x1",  "4096x1x1",  "1000x1x1"}));
  EXPECT_EQ(shapes[12].size(), 9216);
}

TEST(NetworkTest, StridedSameAndExplicitPaddingShapes) {
  // same, stride 2: ceil(15 / 2) = 8; explicit pad 1, 3x3 stride 2: (8 + 2 - 3) / 2 + 1 = 4;
  // rectangular valid 3x1 stride 1x2 on 4x4: (4-3+1) x ceil(4/2) = 2x2.
  Network n(SampleShape{2, 15, 15}, 4);
  n.conv2d(3, 5, 2, Padding::same()).conv2d(5, 3, 2, Padding::explicit_pad(1, 1));
  n.conv2d(7, 3, 1, 1, 2, Padding::valid()).dense(4);
  EXPECT_EQ(shape_strings(n.infer_shapes()),
            (std::vector<std::string>{"3x8x8", "5x4x4", "7x2x2", "4x1x1"}));
}

TEST(NetworkTest, ConvThatDoesNotFitNamesLayerAndShapes) {
  Network n(SampleShape{1, 4, 4}, 10);
  n.conv2d(2, 5).dense(10);
  const std::string message = test::error_message([&] { n.infer_shapes(); });
  EXPECT_TRUE(test::contains(message, "conv1"));
  EXPECT_TRUE(test::contains(message, "1x4x4"));
  EXPECT_TRUE(test::contains(message, "5x5"));
  EXPECT_TRUE(test::contains(message, "valid"));
}

TEST(NetworkTest, LeNet5OnTooSmallInputFailsAtConv2) {
  // 8x8 input: conv1 same 6x8x8, pool1 6x4x4, then conv2's 5x5 valid window does not fit.
  Network n(SampleShape{1, 8, 8}, 10);
  n.conv2d(6, 5, 1, Padding::same()).relu().max_pool(2, 2).conv2d(16, 5).relu().dense(10);
  const std::string message = test::error_message([&] { n.infer_shapes(); });
  EXPECT_TRUE(test::contains(message, "conv2: input 6x4x4 does not fit kernel 5x5"));
}

TEST(NetworkTest, PoolThatDoesNotFitNamesLayerAndShapes) {
  Network n(SampleShape{3, 3, 3}, 10);
  n.max_pool(4, 4).dense(10);
  const std::string message = test::error_message([&] { n.infer_shapes(); });
  EXPECT_TRUE(test::contains(message, "pool1"));
  EXPECT_TRUE(test::contains(message, "3x3x3"));
  EXPECT_TRUE(test::contains(message, "4x4"));
}

// AlexNet fitted to a 5-class folder: fc3 becomes [5] outputs, everything before it unchanged.
TEST(NetworkTest, WithClassesResizesTheLastDenseLayer) {
  const Network alexnet = load_network("alexnet");
  const Network five = with_classes(alexnet, 5);
  EXPECT_EQ(five.classes(), 5);
  EXPECT_EQ(five.name(), "alexnet");
  ASSERT_EQ(five.layers().size(), alexnet.layers().size());
  EXPECT_EQ(five.layers().back().name, "fc3");
  EXPECT_EQ(five.layers().back().field("units"), "5");
  std::vector<SampleShape> shapes = five.infer_shapes(), original = alexnet.infer_shapes();
  EXPECT_EQ(shapes.back().to_string(), "5x1x1");
  shapes.pop_back(), original.pop_back();
  EXPECT_EQ(shape_strings(shapes), shape_strings(original));
  EXPECT_EQ(with_classes(five, 5).classes(), 5);

  // A network ending in something other than a dense layer cannot follow a class count.
  Network pooled(SampleShape{1, 8, 8}, 4);
  pooled.dense(4).relu();
  const std::string message = test::error_message([&] { with_classes(pooled, 3); });
  EXPECT_TRUE(test::contains(message, "relu1")) << message;
  EXPECT_TRUE(test::contains(message, "not a dense layer")) << message;
}

TEST(NetworkTest, LastLayerMustMatchClassCount) {
  Network n(SampleShape{1, 8, 8}, 10);
  n.dense(32).relu().dense(7);
  const std::string message = test::error_message([&] { n.infer_shapes(); });
  EXPECT_TRUE(test::contains(message, "fc2"));
  EXPECT_TRUE(test::contains(message, "10 outputs"));
  EXPECT_TRUE(test::contains(message, "7x1x1"));

  // Right size but not a dense layer: 10 maps of 1x1 from a convolution.
  Network conv_last(SampleShape{1, 3, 3}, 10);
  conv_last.conv2d(10, 3);
  EXPECT_TRUE(test::contains(test::error_message([&] { conv_last.infer_shapes(); }), "conv1"));
}

TEST(NetworkTest, BadHyperParametersAreRejected) {
  Network no_units(SampleShape{1, 4, 4}, 2);
  no_units.dense(0, "empty").dense(2);
  EXPECT_TRUE(test::contains(test::error_message([&] { no_units.infer_shapes(); }), "empty"));

  Network bad_dropout(SampleShape{1, 4, 4}, 2);
  bad_dropout.dropout(1.0f).dense(2);
  EXPECT_TRUE(test::contains(test::error_message([&] { bad_dropout.infer_shapes(); }), "dropout1"));

  Network no_layers(SampleShape{1, 4, 4}, 2, "bare");
  EXPECT_TRUE(test::contains(test::error_message([&] { no_layers.infer_shapes(); }), "bare"));

  EXPECT_THROW(Network(SampleShape{1, 0, 4}, 2), Error);
  EXPECT_THROW(Network(SampleShape{1, 4, 4}, 1), Error);
}

// Sizes the kernels could not index in int are refused by name, with the count that was too big.
TEST(NetworkTest, LayersTooLargeForIntAreRejected) {
  Network wide_dense(SampleShape{1, 28, 28}, 10);
  wide_dense.dense(2000000000, "wide").dense(10);  // weight [2e9, 784]
  test::expect_error([&] { wide_dense.infer_shapes(); },
                     {"wide: weight [2000000000, 784] has more than 2147483647 values"});
  Network big_conv(SampleShape{3, 28, 28}, 10);
  big_conv.conv2d(1000000, 28, 1, Padding::valid(), "big").dense(10);  // 1e6 * 3 * 28 * 28
  test::expect_error([&] { big_conv.infer_shapes(); },
                     {"big: weight [1000000, 3, 28, 28] has more than"});
  Network big_map(SampleShape{1, 50000, 50000}, 10, "big_map");  // 2.5e9 values in
  big_map.dense(10);
  test::expect_error([&] { big_map.infer_shapes(); }, {"big_map: input 1x50000x50000"});
  Network many_maps(SampleShape{1, 1000, 1000}, 10);
  many_maps.conv2d(3000, 1, 1, Padding::valid(), "maps").dense(10);  // out 3000x1000x1000
  test::expect_error([&] { many_maps.infer_shapes(); },
                     {"maps: output 3000x1000x1000 has more than"});
}

// A valid model file with one field replaced, for the error tests.
std::string model_json(const std::string& conv_layer, const std::string& input = "[1, 28, 28]") {
  return R"({"name": "tiny", "input": )" + input + R"(, "classes": 10, "layers": [)" + conv_layer +
         R"(, {"type": "relu"}, {"type": "dense", "units": 10}]})";
}

TEST(NetworkTest, ModelFileErrorsNameTheFile) {
  const std::string origin = "models/broken.json";
  const std::string good = model_json(R"({"type": "conv2d", "filters": 4, "kernel": 5})");
  EXPECT_EQ(network_from_json(good, origin).layers().size(), 3u);

  struct Case {
    const char* what;
    std::string text;
    std::string expected;  // besides the file name
  };
  const std::vector<Case> cases = {
      {"bad JSON", "{\"input\": [1, 28, 28], ", "not valid JSON"},
      {"unknown layer type", model_json(R"({"type": "convolution", "filters": 4, "kernel": 5})"),
       "unknown layer type"},
      {"missing filters", model_json(R"({"type": "conv2d", "kernel": 5})"), "'filters' is missing"},
      {"missing input", R"({"classes": 10, "layers": [{"type": "dense", "units": 10}]})", "input"},
      {"missing units", R"({"input": [1, 2, 2], "classes": 10, "layers": [{"type": "dense"}]})",
       "'units' is missing"},
      {"missing type", model_json(R"({"filters": 4, "kernel": 5})"), "'type' is missing"},
      {"bad padding word", model_json(R"({"type": "conv2d", "filters": 4, "kernel": 5,
                                          "padding": "full"})"),
       "padding 'full'"},
      {"negative padding", model_json(R"({"type": "conv2d", "filters": 4, "kernel": 5,
                                          "padding": -1})"),
       "padding must not be negative"},
      {"kernel not an integer", model_json(R"({"type": "conv2d", "filters": 4, "kernel": "5"})"),
       "'kernel'"},
      {"input not CHW", model_json(R"({"type": "conv2d", "filters": 4, "kernel": 5})", "[28, 28]"),
       "[C, H, W]"},
      {"empty layers", R"({"input": [1, 2, 2], "classes": 10, "layers": []})", "layers"},
      {"not an object", "[1, 2, 3]", "a model file holds a JSON object"},
      {"layer not an object", R"({"input": [1, 2, 2], "classes": 10, "layers": [7]})",
       "layer 1 is not an object"},
      {"type not a string", model_json(R"({"type": 5})"), "'type' must be a string"},
      {"filters a fraction", model_json(R"({"type": "conv2d", "filters": 4.5, "kernel": 5})"),
       "'filters' must be an integer"},
      // 2^32 + 4 would wrap to 4 if converted.
      {"filters past int", model_json(R"({"type": "conv2d", "filters": 4294967300, "kernel": 5})"),
       "'filters' must be an integer from -2147483648 to 2147483647, got 4294967300"},
      {"kernel pair past int",
       model_json(R"({"type": "conv2d", "filters": 4, "kernel": [5, -3000000000]})"),
       "'kernel' must be an integer"},
      {"classes a string",
       R"({"input": [1, 2, 2], "classes": "10", "layers": [{"type": "dense", "units": 10}]})",
       "'classes' must be an integer"},
      {"name not a string",
       R"({"name": 1, "input": [1, 2, 2], "classes": 10, "layers": [{"type": "dense", "units": 10}]})",
       "'name' must be a string"},
      {"slope too large",
       model_json(
           R"({"type": "conv2d", "filters": 4, "kernel": 5}, {"type": "leaky_relu", "slope": 1e300})"),
       "'slope' must be a number from -100 to 100"},
      {"dropout p a string",
       model_json(
           R"({"type": "conv2d", "filters": 4, "kernel": 5}, {"type": "dropout", "p": "half"})"),
       "'p' must be a number from 0 to 1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string message = test::error_message([&] { network_from_json(c.text, origin); });
    EXPECT_TRUE(test::contains(message, origin));
    EXPECT_TRUE(test::contains(message, c.expected));
  }
}

// JSON nested deeper than a model file needs is refused while it is parsed, naming the file and
// the limit: 100,000 nested arrays once overflowed the stack when an error message quoted them
// (nlohmann's dump recurses once per level).
TEST(NetworkTest, ModelFileNestingIsBounded) {
  const std::string origin = "models/deep.json";
  const std::string refused = origin + ": the model file nests JSON deeper than 16 levels";
  const std::string open(100000, '[');
  const std::string closed = open + std::string(100000, ']');
  EXPECT_EQ(test::error_message([&] { network_from_json(open, origin); }), refused);
  EXPECT_EQ(test::error_message([&] { network_from_json(closed, origin); }), refused);
  // Exactly 16 levels are read: the file's object and 15 arrays (or objects) in a field the reader
  // ignores; one more is refused.
  const auto nested = [](int levels, const std::string& open_one, const std::string& close_one) {
    std::string value = "1";
    for (int i = 1; i < levels; ++i) value = open_one + value + close_one;
    return value;
  };
  const std::string conv = R"({"type": "conv2d", "filters": 4, "kernel": 5})";
  const auto with_extra = [&](const std::string& value) {
    return model_json(conv).insert(1, R"("extra": )" + value + ", ");
  };
  EXPECT_EQ(network_from_json(with_extra(nested(16, "[", "]")), origin).layers().size(), 3u);
  EXPECT_EQ(network_from_json(with_extra(nested(16, R"({"a": )", "}")), origin).layers().size(),
            3u);
  EXPECT_EQ(
      test::error_message([&] { network_from_json(with_extra(nested(17, "[", "]")), origin); }),
      refused);
  EXPECT_EQ(test::error_message(
                [&] { network_from_json(with_extra(nested(17, R"({"a": )", "}")), origin); }),
            refused);
  // A layer's fields start at the fourth level, so a kernel may nest 13 arrays (then it is only
  // a bad kernel); 14 are refused.
  const auto deep_kernel = [&](int arrays) {
    return model_json(R"({"type": "conv2d", "filters": 4, "kernel": )" +
                      nested(arrays + 1, "[", "]") + "}");
  };
  const std::string bad_kernel =
      test::error_message([&] { network_from_json(deep_kernel(13), origin); });
  EXPECT_TRUE(test::contains(bad_kernel, "'kernel' must be")) << bad_kernel;
  EXPECT_EQ(test::error_message([&] { network_from_json(deep_kernel(14), origin); }), refused);
}

TEST(NetworkTest, ModelFileWithBadShapesNamesFileAndLayer) {
  const std::string origin = "models/small.json";
  const std::string text =
      model_json(R"({"type": "conv2d", "name": "big", "filters": 4, "kernel": 7})", "[1, 5, 5]");
  const std::string message = test::error_message([&] { network_from_json(text, origin); });
  EXPECT_TRUE(test::contains(message, origin));
  EXPECT_TRUE(test::contains(message, "big: input 1x5x5 does not fit kernel 7x7"));
}

// Every layer has the same type, name and fields, as the layer's unit reads them (its canonical
// model-file form).
void expect_same_network(const Network& a, const Network& b) {
  EXPECT_EQ(a.name(), b.name());
  EXPECT_EQ(a.input().to_string(), b.input().to_string());
  EXPECT_EQ(a.classes(), b.classes());
  ASSERT_EQ(a.layers().size(), b.layers().size());
  const nlohmann::json x = nlohmann::json::parse(network_to_json(a))["layers"];
  const nlohmann::json y = nlohmann::json::parse(network_to_json(b))["layers"];
  ASSERT_EQ(x.size(), a.layers().size());
  for (std::size_t i = 0; i < a.layers().size(); ++i) {
    SCOPED_TRACE(a.layers()[i].name);
    EXPECT_EQ(a.layers()[i].type, b.layers()[i].type);
    EXPECT_EQ(a.layers()[i].name, b.layers()[i].name);
    EXPECT_EQ(x[i], y[i]);
  }
  EXPECT_EQ(shape_strings(a.infer_shapes()), shape_strings(b.infer_shapes()));
}

TEST(NetworkTest, JsonRoundTripKeepsEveryField) {
  Network custom(SampleShape{3, 17, 13}, 5, "custom");
  custom.conv2d(4, 5, 3, 2, 1, Padding::explicit_pad(2, 1), "stem");
  custom.leaky_relu(0.25f).avg_pool(2, 2).conv2d(6, 3, 2, Padding::same()).sigmoid();
  custom.max_pool(2, 1).dropout(0.3f).dense(12).relu().dense(5, "head");
  ASSERT_NO_THROW(custom.infer_shapes());
  expect_same_network(custom, network_from_json(network_to_json(custom), "custom"));
  // The canonical form holds what the builders were given.
  const nlohmann::json layers = nlohmann::json::parse(network_to_json(custom))["layers"];
  EXPECT_EQ(layers[0]["filters"], 4);
  EXPECT_EQ(layers[0]["kernel"], nlohmann::json({5, 3}));
  EXPECT_EQ(layers[0]["stride"], nlohmann::json({2, 1}));
  EXPECT_EQ(layers[0]["padding"], nlohmann::json({2, 1}));
  EXPECT_EQ(layers[1]["slope"].get<float>(), 0.25f);
  EXPECT_EQ(layers[3]["padding"], "same");
  EXPECT_EQ(layers[5]["window"], nlohmann::json({2, 2}));
  EXPECT_EQ(layers[5]["stride"], nlohmann::json({1, 1}));
  EXPECT_EQ(layers[6]["p"].get<float>(), 0.3f);
  EXPECT_EQ(layers[7]["units"], 12);
  for (const std::string& preset : preset_names()) {
    SCOPED_TRACE(preset);
    const Network n = load_network(preset);
    expect_same_network(n, network_from_json(network_to_json(n), preset));
  }
}

TEST(NetworkTest, LoadsEveryPresetByName) {
  const std::vector<std::string> names = preset_names();
  EXPECT_EQ(names, (std::vector<std::string>{"lenet5", "lenet5-classic", "fmnist-bn", "alexnet"}));
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const Network n = load_network(name);
    EXPECT_EQ(n.name(), name);
    EXPECT_EQ(n.layers().back().type, "dense");
    EXPECT_NO_THROW(n.infer_shapes());
    EXPECT_NO_THROW(load_recipe(name));
  }
  const TrainRecipe bn = load_recipe("fmnist-bn");
  ASSERT_TRUE(bn.augment && bn.epochs && bn.optimizer);
  EXPECT_EQ(*bn.augment, "flip");
  EXPECT_EQ(*bn.epochs, 20);
  EXPECT_EQ(*bn.optimizer, "nesterov");
}

TEST(NetworkTest, LoadsAModelFileByPath) {
  const test::ScratchDir dir("network_test");
  const std::string path = dir.file("tiny.json");
  {
    std::ofstream out(path);
    out << model_json(R"({"type": "conv2d", "filters": 4, "kernel": 5, "padding": "same"})");
  }
  const Network n = load_network(path);
  EXPECT_EQ(n.name(), "tiny");
  EXPECT_EQ(shape_strings(n.infer_shapes()),
            (std::vector<std::string>{"4x28x28", "4x28x28", "10x1x1"}));

  const std::string missing = dir.file("missing.json");
  const std::string message = test::error_message([&] { load_network(missing); });
  EXPECT_TRUE(test::contains(message, missing));
}

TEST(NetworkTest, UnknownPresetListsThePresets) {
  const std::string message = test::error_message([] { load_network("lenet6"); });
  EXPECT_TRUE(test::contains(message, "'lenet6'"));
  EXPECT_TRUE(test::contains(message, "lenet5, lenet5-classic, fmnist-bn, alexnet"));
}

}  // namespace
}  // namespace cnnrt
