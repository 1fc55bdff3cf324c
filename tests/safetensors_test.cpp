// safetensors: round trips of several dtypes, a file checked by an independent parse (the header
// read by hand, as PyTorch's reader would), hand-made broken files the reader must refuse with a
// message naming the file and the tensor, and the write-then-rename save.
#include "cnnrt/safetensors.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "tests/file_formats.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class SafeTensorsTest : public test::ScratchDirTest {
 protected:
  SafeTensorsTest() : ScratchDirTest("st_test") {}
};

template <typename T>
TensorData tensor_of(const std::string& dtype, const std::vector<std::int64_t>& shape,
                     const std::vector<T>& values) {
  TensorData tensor;
  tensor.dtype = dtype;
  tensor.shape = shape;
  tensor.bytes.resize(values.size() * sizeof(T));
  // An empty vector's data() may be null, which memcpy must not be given even for 0 bytes.
  if (!values.empty()) std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
  return tensor;
}

const std::vector<float> kWeights = {0.5f, -1.25f, 3.0e-8f, 1.0e30f, -0.0f, 7.0f};
const std::vector<std::int64_t> kSteps = {0, -1, 1234567890123LL};

SafeTensors sample_tensors() {
  SafeTensors tensors;
  tensors.add_f32("conv1.weight", {2, 1, 1, 3}, kWeights.data());
  tensors.add_i64("step", {3}, kSteps.data());
  tensors.add("f64", tensor_of<double>("F64", {2}, {3.141592653589793, -2.5e-300}));
  tensors.add("i32", tensor_of<std::int32_t>("I32", {2, 2}, {1, -2, 2147483647, -2147483647}));
  tensors.add("u8", tensor_of<std::uint8_t>("U8", {5}, {0, 1, 127, 128, 255}));
  tensors.add("scalar", tensor_of<float>("F32", {}, {42.0f}));
  tensors.add("empty", tensor_of<float>("F32", {0, 3}, {}));
  tensors.metadata["format"] = "pt";
  tensors.metadata["epoch"] = "3";
  return tensors;
}

TEST_F(SafeTensorsTest, RoundTripsSeveralDtypesAndMetadata) {
  const SafeTensors original = sample_tensors();
  original.save(path("model.safetensors"));
  const SafeTensors loaded = SafeTensors::load(path("model.safetensors"));
  EXPECT_EQ(loaded.names(), original.names());
  EXPECT_EQ(loaded.size(), 7u);
  for (const auto& name : original.names()) {
    EXPECT_EQ(loaded.get(name).dtype, original.get(name).dtype) << name;
    EXPECT_EQ(loaded.get(name).shape, original.get(name).shape) << name;
    EXPECT_EQ(loaded.get(name).bytes, original.get(name).bytes) << name;
  }
  const std::vector<float> weights = loaded.get("conv1.weight").as_floats();
  ASSERT_EQ(weights.size(), kWeights.size());
  for (std::size_t i = 0; i < weights.size(); ++i)
    EXPECT_EQ(std::memcmp(&weights[i], &kWeights[i], sizeof(float)), 0) << i;  // -0.0 too
  EXPECT_EQ(loaded.get("step").as_int64s(), kSteps);
  EXPECT_EQ(loaded.get("scalar").element_count(), 1);
  EXPECT_EQ(loaded.get("empty").element_count(), 0);
  EXPECT_EQ(loaded.metadata, original.metadata);
}

TEST_F(SafeTensorsTest, FileMatchesAnIndependentParse) {
  sample_tensors().save(path("m.safetensors"));
  const auto bytes = test::read_bytes(path("m.safetensors"));
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | bytes[static_cast<std::size_t>(i)];
  ASSERT_LE(8 + length, bytes.size());
  EXPECT_EQ((8 + length) % 8, 0u) << "data should start 8-byte aligned";
  const json header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(length));
  const std::uint64_t data_start = 8 + length;
  const std::uint64_t data_size = bytes.size() - data_start;
  EXPECT_EQ(header.at("__metadata__").at("format"), "pt");
  EXPECT_EQ(header.at("__metadata__").at("epoch"), "3");
  EXPECT_EQ(header.size(), 8u);  // seven tensors and the metadata

  const json& conv = header.at("conv1.weight");
  EXPECT_EQ(conv.at("dtype"), "F32");
  EXPECT_EQ(conv.at("shape"), json::array({2, 1, 1, 3}));
  const auto begin = conv.at("data_offsets")[0].get<std::uint64_t>();
  const auto end = conv.at("data_offsets")[1].get<std::uint64_t>();
  ASSERT_EQ(end - begin, kWeights.size() * 4);
  ASSERT_LE(end, data_size);
  std::vector<float> weights(kWeights.size());
  std::memcpy(weights.data(), bytes.data() + data_start + begin, end - begin);
  for (std::size_t i = 0; i < weights.size(); ++i) EXPECT_EQ(weights[i], kWeights[i]) << i;

  const json& u8 = header.at("u8");
  EXPECT_EQ(u8.at("dtype"), "U8");
  const auto u8_begin = u8.at("data_offsets")[0].get<std::uint64_t>();
  EXPECT_EQ(bytes[data_start + u8_begin + 4], 255);

  // Every byte of the data section belongs to exactly one tensor.
  std::uint64_t total = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    total += entry.at("data_offsets")[1].get<std::uint64_t>() -
             entry.at("data_offsets")[0].get<std::uint64_t>();
  }
  EXPECT_EQ(total, data_size);
}

TEST_F(SafeTensorsTest, ReadsAHandWrittenFile) {
  // As PyTorch would write {"w": tensor([1., 2.])} with a metadata entry.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  auto bytes = test::safetensors_bytes(header, 0);
  const float values[2] = {1.0f, 2.0f};
  const auto* raw = reinterpret_cast<const std::uint8_t*>(values);
  bytes.insert(bytes.end(), raw, raw + 8);
  test::write_bytes(path("w"), bytes);
  const SafeTensors loaded = SafeTensors::load(path("w"));
  EXPECT_EQ(loaded.get("w").as_floats(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(loaded.metadata.at("format"), "pt");
}

TEST_F(SafeTensorsTest, TruncatedFileIsRefused) {
  sample_tensors().save(path("m"));
  auto bytes = test::read_bytes(path("m"));
  bytes.resize(bytes.size() - 3);
  test::write_bytes(path("cut"), bytes);
  test::expect_error([&] { SafeTensors::load(path("cut")); }, {path("cut"), "run past"});
  test::write_bytes(path("tiny"), {1, 0, 0});
  test::expect_error([&] { SafeTensors::load(path("tiny")); }, {path("tiny"), "too short"});
  test::expect_error([&] { SafeTensors::load(path("missing")); }, {path("missing"), "cannot open"});
}

TEST_F(SafeTensorsTest, HeaderLengthBeyondTheFileIsRefused) {
  test::write_bytes(path("long"), test::safetensors_bytes("{}", 0, 1000));
  test::expect_error([&] { SafeTensors::load(path("long")); },
                     {path("long"), "header length 1000"});
  test::write_bytes(path("huge"), test::safetensors_bytes("{}", 0, ~std::uint64_t{0}));
  test::expect_error([&] { SafeTensors::load(path("huge")); }, {path("huge"), "header length"});
  test::write_bytes(path("2^63"), test::safetensors_bytes("{}", 0, std::uint64_t{1} << 63));
  test::expect_error([&] { SafeTensors::load(path("2^63")); },
                     {path("2^63"), "header length 9223372036854775808 runs past the end"});
}

// parse() is load() without the file: the same tensors from the same bytes, the same refusals.
TEST_F(SafeTensorsTest, ParsesFromMemory) {
  sample_tensors().save(path("m"));
  const auto bytes = test::read_bytes(path("m"));
  const SafeTensors parsed = SafeTensors::parse(bytes.data(), bytes.size(), "in memory");
  EXPECT_EQ(parsed.names(), sample_tensors().names());
  EXPECT_EQ(parsed.get("conv1.weight").as_floats(), kWeights);
  EXPECT_EQ(parsed.get("step").as_int64s(), kSteps);
  EXPECT_EQ(parsed.metadata, sample_tensors().metadata);
  test::expect_error([&] { SafeTensors::parse(bytes.data(), 7, "seven bytes"); },
                     {"seven bytes", "too short"});
  test::expect_error([&] { SafeTensors::parse(nullptr, 0, "nothing"); }, {"nothing", "too short"});
}

TEST_F(SafeTensorsTest, DeepOrHugeHeadersGiveShortMessages) {
  // Nesting is bounded (a real header has three levels), so no recursion runs deep.
  const std::string deep = R"({"w": )" + std::string(10000, '[') + std::string(10000, ']') + "}";
  const auto nested = test::safetensors_bytes(deep, 0);
  test::expect_error([&] { SafeTensors::parse(nested.data(), nested.size(), "deep"); },
                     {"deep", "deeper than 8 levels"});
  // A value quoted in a message is cut short.
  const std::string long_dtype = R"({"w": {"dtype": ")" + std::string(100000, 'x') +
                                 R"(", "shape": [1], "data_offsets": "far"}})";
  const auto bytes = test::safetensors_bytes(long_dtype, 0);
  const std::string message =
      test::error_message([&] { SafeTensors::parse(bytes.data(), bytes.size(), "long"); });
  EXPECT_TRUE(test::contains(message, "unknown dtype"));
  EXPECT_LT(message.size(), 300u);
  const std::string long_offsets = R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": ")" +
                                   std::string(100000, 'y') + R"("}})";
  const auto offsets = test::safetensors_bytes(long_offsets, 0);
  const std::string cut =
      test::error_message([&] { SafeTensors::parse(offsets.data(), offsets.size(), "offsets"); });
  EXPECT_TRUE(test::contains(cut, "data_offsets must be [begin, end]"));
  EXPECT_LT(cut.size(), 300u);
}

TEST_F(SafeTensorsTest, BadJsonIsRefused) {
  test::write_bytes(path("bad"), test::safetensors_bytes(R"({"w": {"dtype": "F32", )", 0));
  test::expect_error([&] { SafeTensors::load(path("bad")); }, {path("bad"), "not valid JSON"});
  test::write_bytes(path("array"), test::safetensors_bytes("[1, 2, 3]", 0));
  test::expect_error([&] { SafeTensors::load(path("array")); }, {path("array"), "not an object"});
  test::write_bytes(path("entry"), test::safetensors_bytes(R"({"w": 3})", 0));
  test::expect_error([&] { SafeTensors::load(path("entry")); }, {path("entry"), "'w'"});
  test::write_bytes(path("nodtype"),
                    test::safetensors_bytes(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4));
  test::expect_error([&] { SafeTensors::load(path("nodtype")); }, {"'w'", "no 'dtype'"});
  test::write_bytes(path("meta"), test::safetensors_bytes(R"({"__metadata__": {"epoch": 3}})", 0));
  test::expect_error([&] { SafeTensors::load(path("meta")); }, {path("meta"), "metadata 'epoch'"});
  test::write_bytes(path("dup"), test::safetensors_bytes(
                                     R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                            "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})",
                                     1));
  test::expect_error([&] { SafeTensors::load(path("dup")); }, {path("dup"), "'w' more than once"});
}

TEST_F(SafeTensorsTest, OffsetsOutOfRangeAreRefused) {
  test::write_bytes(
      path("far"), test::safetensors_bytes(
                       R"({"w": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}})", 16));
  test::expect_error([&] { SafeTensors::load(path("far")); },
                     {path("far"), "'w'", "[0, 400]", "16"});
  test::write_bytes(path("neg"),
                    test::safetensors_bytes(
                        R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", 4));
  test::expect_error([&] { SafeTensors::load(path("neg")); }, {path("neg"), "'w'", "non-negative"});
  test::write_bytes(path("backwards"),
                    test::safetensors_bytes(
                        R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [4, 0]}})", 4));
  test::expect_error([&] { SafeTensors::load(path("backwards")); }, {"'w'", "end before"});
}

TEST_F(SafeTensorsTest, OverlappingTensorsAreRefused) {
  test::write_bytes(path("overlap"), test::safetensors_bytes(R"({
      "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                                             12));
  test::expect_error([&] { SafeTensors::load(path("overlap")); }, {path("overlap"), "'b'", "'a'"});
  test::write_bytes(path("gap"), test::safetensors_bytes(R"({
      "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
                                                         12));
  test::expect_error([&] { SafeTensors::load(path("gap")); }, {path("gap"), "[4, 8]", "'b'"});
  test::write_bytes(path("tail"),
                    test::safetensors_bytes(
                        R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 9));
  test::expect_error([&] { SafeTensors::load(path("tail")); }, {path("tail"), "5 bytes"});
}

TEST_F(SafeTensorsTest, WrongSizeAndUnknownDtypeAreRefused) {
  test::write_bytes(path("size"),
                    test::safetensors_bytes(
                        R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8));
  test::expect_error([&] { SafeTensors::load(path("size")); },
                     {path("size"), "'w'", "needs 12 bytes"});
  test::write_bytes(path("dtype"),
                    test::safetensors_bytes(
                        R"({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}})", 16));
  test::expect_error([&] { SafeTensors::load(path("dtype")); }, {path("dtype"), "'w'", "'F128'"});
  test::write_bytes(path("shape"),
                    test::safetensors_bytes(
                        R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4));
  test::expect_error([&] { SafeTensors::load(path("shape")); }, {path("shape"), "'w'", "shape"});
  test::write_bytes(path("overflow"), test::safetensors_bytes(R"({"w": {"dtype": "F64",
      "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 8]}})",
                                                              8));
  test::expect_error([&] { SafeTensors::load(path("overflow")); }, {path("overflow"), "'w'"});
}

TEST_F(SafeTensorsTest, InMemoryMisuseIsRefused) {
  SafeTensors tensors = sample_tensors();
  test::expect_error([&] { tensors.get("conv9.weight"); }, {"'conv9.weight'", "conv1.weight"});
  EXPECT_FALSE(tensors.contains("conv9.weight"));
  EXPECT_TRUE(tensors.contains("step"));
  test::expect_error([&] { tensors.get("step").as_floats(); }, {"I64"});
  test::expect_error([&] { tensors.get("u8").as_int64s(); }, {"U8"});
  test::expect_error([&] { tensors.add_f32("step", {1}, kWeights.data()); }, {"'step'", "already"});
  test::expect_error(
      [&] {
        tensors.add("bad", tensor_of<float>("F32", {4}, {1.0f, 2.0f}));
      },
      {"'bad'", "needs 16 bytes"});
  test::expect_error([&] { tensors.add("bad", tensor_of<float>("Q4", {1}, {1.0f})); }, {"'Q4'"});
  EXPECT_THROW(tensors.add_f32("", {1}, kWeights.data()), Error);
  EXPECT_THROW(tensors.add_f32("__metadata__", {1}, kWeights.data()), Error);
  EXPECT_EQ(safetensors_dtype_size("F64"), 8u);
  EXPECT_EQ(safetensors_dtype_size("I32"), 4u);
  EXPECT_EQ(safetensors_dtype_size("U8"), 1u);
  EXPECT_THROW(safetensors_dtype_size("float"), Error);
}

TEST_F(SafeTensorsTest, SaveReplacesTheFileAtomically) {
  const std::string target = path("ckpt.safetensors");
  SafeTensors first;
  first.add_f32("w", {2}, kWeights.data());
  first.save(target);
  SafeTensors second;
  second.add_f32("w", {3}, kWeights.data() + 3);
  second.metadata["epoch"] = "2";
  second.save(target);
  EXPECT_FALSE(fs::exists(target + ".tmp"));
  const SafeTensors loaded = SafeTensors::load(target);
  EXPECT_EQ(loaded.get("w").as_floats(),
            (std::vector<float>{kWeights[3], kWeights[4], kWeights[5]}));
  EXPECT_EQ(loaded.metadata.at("epoch"), "2");
  std::size_t entries = 0;
  for (const auto& entry : fs::directory_iterator(dir())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u) << "a stray file was left next to the checkpoint";

  // When the temporary file cannot be written, the previous file is left exactly as it was.
  const auto before = test::read_bytes(target);
  fs::create_directory(target + ".tmp");  // makes opening the temporary file fail
  test::expect_error([&] { first.save(target); }, {target + ".tmp"});
  EXPECT_EQ(test::read_bytes(target), before);
  fs::remove(target + ".tmp");
  test::expect_error([&] { first.save(path("no_such_dir/x.safetensors")); }, {"no_such_dir"});
}

}  // namespace
}  // namespace cnnrt
