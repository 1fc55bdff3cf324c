// Damaged input files given to the `cnnrt` tool, one case per kind of damage: IDX data sets
// (train --data, eval), checkpoints (train --resume, eval --weights, predict --weights) and model
// files (train --model). Every case must end with exit code 1 and exactly one line of output,
// "cnnrt: error: ...", naming the damaged file (or directory) and the problem, and must leave
// none of the output files its command line names (--checkpoint, --metrics, --out). The files
// are written here byte by byte (tests/file_formats.hpp), or saved by the library and then cut or
// edited; the library-level tests (idx_test, safetensors_test, checkpoint_test, network_test)
// hold the details.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/dataset.hpp"
#include "cnnrt/image_folder.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "tests/file_formats.hpp"
#include "tests/image_files.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

// The good inputs every case starts from: 8 training and 8 test images of 28x28 with labels
// 0..7, a LeNet-5 checkpoint after one epoch, and a small model file.
constexpr std::uint32_t kSamples = 8, kSide = 28;
constexpr std::uint32_t kPixels = kSamples * kSide * kSide;  // 6272

enum class Command { train, resume, eval, predict, model, folder };

// Where one case's files live.
struct Files {
  fs::path root;
  std::string at(const std::string& relative) const { return (root / relative).string(); }
  std::string data() const { return at("data"); }
  std::string data_file(const std::string& name) const { return at("data/" + name); }
  std::string checkpoint() const { return at("ckpt.safetensors"); }
  std::string model() const { return at("model.json"); }
  std::string out() const { return at("out.safetensors"); }
  std::string metrics() const { return at("metrics.csv"); }
};

struct BadInput {
  std::string name;  // the test's name
  Command command;
  std::string input;     // the damaged file or directory, relative to Files::root
  std::string expected;  // the problem as the message words it
  std::function<void(const Files&)> damage;
};

// For gtest's messages: the case by name, not as bytes.
void PrintTo(const BadInput& c, std::ostream* out) {
  *out << c.name;
}

std::vector<std::uint8_t> pixels() {
  std::vector<std::uint8_t> p(kPixels);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 31 + 7);
  return p;
}
std::vector<std::uint8_t> labels() {
  return {0, 1, 2, 3, 4, 5, 6, 7};
}
std::vector<std::uint8_t> images_file() {
  return test::idx_bytes(0x08, {kSamples, kSide, kSide}, pixels());
}
std::vector<std::uint8_t> labels_file() {
  return test::idx_bytes(0x08, {kSamples}, labels());
}

// A model file: one convolution, pooling, two dense layers; the parts a case changes are
// arguments.
std::string model_json(
    const std::string& conv = R"({"type": "conv2d", "name": "conv1", "filters": 6, "kernel": 5})",
    const std::string& last = R"({"type": "dense", "name": "out", "units": 10})",
    int classes = 10) {
  return R"({"name": "small", "input": [1, 28, 28], "classes": )" + std::to_string(classes) +
         R"(, "layers": [)" + conv +
         R"(, {"type": "relu"}, {"type": "max_pool", "window": 2, "stride": 2},
             {"type": "dense", "name": "fc1", "units": 16}, {"type": "relu"}, )" +
         last + "]}";
}

void write_good_inputs(const Files& f) {
  fs::create_directories(f.data());
  for (const char* split : {"train", "t10k"}) {
    test::write_bytes(f.data_file(std::string(split) + "-images-idx3-ubyte"), images_file());
    test::write_bytes(f.data_file(std::string(split) + "-labels-idx1-ubyte"), labels_file());
  }
  Model lenet(load_network("lenet5"), test::cpu_options(2));
  save_checkpoint(f.checkpoint(), lenet, 1);
  test::write_text(f.model(), model_json());
}

// A CIFAR-10 batch file in the data directory: one record per label, then `extra` stray bytes.
void write_cifar10(const Files& f, const std::string& name, const std::vector<std::uint8_t>& labels,
                   int extra) {
  std::vector<std::uint8_t> bytes;
  for (const std::uint8_t label : labels) {
    bytes.push_back(label);
    for (int p = 0; p < 3072; ++p) bytes.push_back(std::uint8_t(p * 7));
  }
  bytes.resize(bytes.size() + std::size_t(extra), 0);
  test::write_bytes(f.data_file(name), bytes);
}

// A good image folder: images/train/{a,b}/{0,1}.png and images/test/{a,b}/0.png, grey 28x28,
// then one file of it replaced (`relative` under images/, written as `bytes`).
void write_image_folder(const Files& f) {
  test::write_class_tree(f.at("images/train"), {"a", "b"}, 2, 28, 28, 1, ".png");
  test::write_class_tree(f.at("images/test"), {"a", "b"}, 1, 28, 28, 1, ".png");
}

// The training split of an image folder loaded once as the tool loads it for lenet5, which
// writes its cache.
void load_training_split(const std::string& dir) {
  ImageFolderOptions o;
  o.channels = 1, o.height = 28, o.width = 28;
  const ImageFolderData d = load_image_folder(dir, o, true, false);
  ASSERT_EQ(d.train_cache.status, "written");
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// The folder with one file's bytes changed by `edit`.
std::function<void(const Files&)> edited_image(const std::string& relative,
                                               std::function<void(std::vector<std::uint8_t>&)> edit,
                                               const std::string& ext = ".png") {
  return [=](const Files& f) {
    write_image_folder(f);
    const std::string path = f.at("images/" + relative);
    if (ext != ".png") {
      test::write_image(path, 28, 28, 3, test::test_picture(28, 28, 3, 0, 0));
    }
    std::vector<std::uint8_t> bytes = read_bytes(path);
    edit(bytes);
    fs::remove(path);
    test::write_bytes(path, bytes);
  };
}

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

std::string command_line(Command command, const Files& f) {
  const std::string train = "train --device cpu --epochs 2 --data " + quoted(f.data()) +
                            " --checkpoint " + quoted(f.out()) + " --metrics " +
                            quoted(f.metrics());
  const std::string weights =
      " --device cpu --data " + quoted(f.data()) + " --weights " + quoted(f.checkpoint());
  switch (command) {
    case Command::train:
      return train;
    case Command::resume:
      return train + " --resume " + quoted(f.checkpoint());
    case Command::eval:
      return "eval" + weights;
    case Command::predict:
      return "predict" + weights + " --out " + quoted(f.out());
    case Command::model:
      return train + " --model " + quoted(f.model());
    case Command::folder:  // an image folder (auto-detected), lenet5's 1x28x28 input
      return "train --device cpu --epochs 2 --data " + quoted(f.at("images")) + " --checkpoint " +
             quoted(f.out()) + " --metrics " + quoted(f.metrics());
  }
  return "";
}

// Damage helpers.
void edit_bytes(const std::string& path,
                const std::function<void(std::vector<std::uint8_t>&)>& edit) {
  std::vector<std::uint8_t> bytes = test::read_bytes(path);
  edit(bytes);
  test::write_bytes(path, bytes);
}

// The checkpoint without the tensors in `drop`, then `edit` applied.
void edit_checkpoint(const Files& f, const std::set<std::string>& drop,
                     const std::function<void(SafeTensors&)>& edit) {
  const SafeTensors good = SafeTensors::load(f.checkpoint());
  SafeTensors changed;
  changed.metadata = good.metadata;
  for (const std::string& name : good.names())
    if (drop.count(name) == 0) changed.add(name, good.get(name));
  edit(changed);
  changed.save(f.checkpoint());
}

std::vector<std::uint8_t> little_endian_u64(std::uint64_t value) {
  std::vector<std::uint8_t> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
  return bytes;
}

void set_header_length(const Files& f, std::uint64_t length) {
  edit_bytes(f.checkpoint(), [&](std::vector<std::uint8_t>& b) {
    const auto le = little_endian_u64(length);
    std::copy(le.begin(), le.end(), b.begin());
  });
}

const std::string kTrainImages = "data/train-images-idx3-ubyte";
const std::string kTrainLabels = "data/train-labels-idx1-ubyte";
const std::string kConv1F32 = R"("conv1.weight": {"dtype": "F32", "shape": [6, 1, 5, 5], )";

std::vector<BadInput> cases() {
  using B = std::vector<std::uint8_t>;
  auto write = [](const std::string& relative, B bytes) {
    return [relative, bytes](const Files& f) { test::write_bytes(f.at(relative), bytes); };
  };
  // The good checkpoint plus one F32 tensor [1] named `name`.
  auto add_tensor = [](std::string name) {
    return [name](const Files& f) {
      edit_checkpoint(f, {}, [&](SafeTensors& t) {
        const float one = 1.0f;
        t.add_f32(name, {1}, &one);
      });
    };
  };
  auto write_model = [](std::string text) {
    return [text](const Files& f) { test::write_text(f.model(), text); };
  };
  return {
      // IDX data sets.
      {"IdxWrongMagic", Command::train, kTrainImages, "not an IDX file: magic number 0x12000803",
       [](const Files& f) { edit_bytes(f.at(kTrainImages), [](B& b) { b[0] = 0x12; }); }},
      {"IdxElementTypeNotBytes", Command::train, kTrainImages, "element type 0x0d",
       write(kTrainImages, test::idx_bytes(0x0d, {kSamples, kSide, kSide}, pixels()))},
      {"IdxImagesWithTwoDimensions", Command::train, kTrainImages,
       "expected an images file (magic 0x00000803, 3 dimensions), found 2",
       write(kTrainImages, test::idx_bytes(0x08, {kSamples, kSide * kSide}, pixels()))},
      {"IdxLabelsWithTwoDimensions", Command::train, kTrainLabels,
       "expected a labels file (magic 0x00000801, 1 dimension), found 2",
       write(kTrainLabels, test::idx_bytes(0x08, {kSamples, 1}, labels()))},
      {"IdxZeroDimension", Command::train, kTrainImages, "IDX dimension 1 is 0",
       write(kTrainImages, test::idx_bytes(0x08, {kSamples, 0, kSide}, {}))},
      {"IdxTwoToThe31Images", Command::train, kTrainImages, "IDX dimension 0 is 2147483648",
       write(kTrainImages, test::idx_bytes(0x08, {2147483648u, kSide, kSide}, pixels()))},
      {"IdxDimensionsOverflow64Bits", Command::train, kTrainImages,
       "dimensions describe more than 4294967296 bytes",
       write(kTrainImages,
             test::idx_bytes(0x08, {2147483647u, 2147483647u, 2147483647u}, pixels()))},
      {"IdxTruncatedData", Command::train, kTrainImages,
       "expected 6272 bytes of pixels (8x28x28), found 6172",
       [](const Files& f) {
         edit_bytes(f.at(kTrainImages), [](B& b) { b.resize(b.size() - 100); });
       }},
      {"IdxTrailingGarbage", Command::train, kTrainLabels, "3 trailing bytes after the 8 bytes",
       [](const Files& f) {
         edit_bytes(f.at(kTrainLabels), [](B& b) { b.insert(b.end(), {1, 2, 3}); });
       }},
      {"IdxImageAndLabelCountsDiffer", Command::train, kTrainImages,
       "holds 8 images but " + std::string("<root>/") + kTrainLabels + " holds 7 labels",
       write(kTrainLabels, test::idx_bytes(0x08, {7}, {0, 1, 2, 3, 4, 5, 6}))},
      {"IdxLabelOutsideTheClasses", Command::train, kTrainLabels,
       "label 10 of sample 3 is out of range for 10 classes",
       write(kTrainLabels, test::idx_bytes(0x08, {kSamples}, {0, 1, 2, 10, 4, 5, 6, 7}))},
      {"IdxLabelOutsideTheModelsClasses", Command::model, kTrainLabels,
       "label 5 of sample 5 is out of range for 5 classes",
       write_model(model_json(R"({"type": "conv2d", "filters": 6, "kernel": 5})",
                              R"({"type": "dense", "units": 5})", 5))},
      {"IdxCorruptGzip", Command::train, kTrainImages + ".gz", "corrupt gzip data",
       [](const Files& f) {
         B gz = test::gzip_bytes(images_file());
         for (std::size_t i = 12; i < 40; ++i) gz[i] ^= 0x5a;
         test::write_bytes(f.at(kTrainImages + ".gz"), gz);
       }},
      {"IdxTruncatedGzip", Command::train, kTrainImages + ".gz", "truncated gzip data",
       [](const Files& f) {
         B gz = test::gzip_bytes(images_file());
         gz.resize(gz.size() / 2);
         test::write_bytes(f.at(kTrainImages + ".gz"), gz);
       }},
      {"IdxGarbageAfterTheGzipStream", Command::train, kTrainLabels + ".gz",
       "5 bytes after the end of the gzip stream are not gzip data",
       [](const Files& f) {
         B gz = test::gzip_bytes(labels_file());
         gz.insert(gz.end(), {'h', 'e', 'l', 'l', 'o'});
         test::write_bytes(f.at(kTrainLabels + ".gz"), gz);
       }},
      {"IdxGzipHoldsMoreThanItsHeader", Command::train, kTrainLabels + ".gz",
       "trailing bytes after the 8 bytes of labels (8) in the gzip stream",
       [](const Files& f) {
         B bomb = labels_file();
         bomb.resize(bomb.size() + (1 << 20), 0);
         test::write_bytes(f.at(kTrainLabels + ".gz"), test::gzip_bytes(bomb));
       }},
      {"IdxEmptyFile", Command::train, kTrainLabels, "the file is empty", write(kTrainLabels, {})},
      {"IdxDirectoryMissingAFile", Command::train, "data", "missing: t10k-labels-idx1-ubyte",
       [](const Files& f) { fs::remove(f.data_file("t10k-labels-idx1-ubyte")); }},
      {"IdxImagesOfAnotherSize", Command::train, "data",
       "training split in <root>/data holds 1x8x8 images but lenet5 expects 1x28x28",
       write(kTrainImages, test::idx_bytes(0x08, {kSamples, 8, 8}, B(kSamples * 64, 9)))},
      {"IdxTestSplitTruncatedInEval", Command::eval, "data/t10k-images-idx3-ubyte",
       "expected 6272 bytes of pixels",
       [](const Files& f) {
         edit_bytes(f.data_file("t10k-images-idx3-ubyte"), [](B& b) { b.resize(b.size() - 1); });
       }},

      // Checkpoints (safetensors).
      {"CheckpointShorterThan8Bytes", Command::resume, "ckpt.safetensors",
       "5 bytes is too short for a safetensors file", write("ckpt.safetensors", {1, 2, 3, 4, 5})},
      {"CheckpointHeaderLongerThanTheFile", Command::resume, "ckpt.safetensors",
       "runs past the end of the",
       [](const Files& f) { set_header_length(f, fs::file_size(f.checkpoint())); }},
      {"CheckpointHeaderLengthTwoToThe63", Command::eval, "ckpt.safetensors",
       "header length 9223372036854775808 runs past the end",
       [](const Files& f) { set_header_length(f, std::uint64_t{1} << 63); }},
      {"CheckpointInvalidJson", Command::resume, "ckpt.safetensors", "the header is not valid JSON",
       write("ckpt.safetensors", test::safetensors_bytes(R"({"conv1.weight": {"dtype": )", 8))},
      {"CheckpointOffsetsOutsideTheData", Command::resume, "ckpt.safetensors",
       "tensor 'conv1.weight': data_offsets [0, 600] run past the 100 bytes of data",
       write("ckpt.safetensors",
             test::safetensors_bytes("{" + kConv1F32 + R"("data_offsets": [0, 600]}})", 100))},
      {"CheckpointOverlappingTensors", Command::predict, "ckpt.safetensors",
       "tensor 'conv1.weight' (bytes [20, 620]) overlaps tensor 'conv1.bias' (bytes [0, 24])",
       write("ckpt.safetensors",
             test::safetensors_bytes(
                 R"({"conv1.bias": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}, )" +
                     kConv1F32 + R"("data_offsets": [20, 620]}})",
                 620))},
      {"CheckpointUnknownDtype", Command::resume, "ckpt.safetensors",
       "tensor 'conv1.weight' has unknown dtype 'Q8'",
       write("ckpt.safetensors",
             test::safetensors_bytes(
                 R"({"conv1.weight": {"dtype": "Q8", "shape": [6], "data_offsets": [0, 6]}})", 6))},
      {"CheckpointDtypeNotF32", Command::eval, "ckpt.safetensors",
       "tensor 'conv1.weight' is F64, expected F32",
       [](const Files& f) {
         edit_checkpoint(f, {"conv1.weight"}, [](SafeTensors& t) {
           t.add("conv1.weight", TensorData{"F64", {6, 1, 5, 5}, B(150 * 8, 0)});
         });
       }},
      {"CheckpointMissingTensor", Command::eval, "ckpt.safetensors", "no tensor 'fc3.bias'",
       [](const Files& f) { edit_checkpoint(f, {"fc3.bias"}, [](SafeTensors&) {}); }},
      {"CheckpointExtraTensor", Command::resume, "ckpt.safetensors",
       "1 tensor is not in lenet5: conv9.weight", add_tensor("conv9.weight")},
      {"CheckpointExtraTensorInPredict", Command::predict, "ckpt.safetensors",
       "1 tensor is not in lenet5: fc3.weight.velocity", add_tensor("fc3.weight.velocity")},
      {"CheckpointShapeNotTheModels", Command::resume, "ckpt.safetensors",
       "tensor 'conv1.weight' has shape [6, 1, 3, 3], the model needs [6, 1, 5, 5]",
       [](const Files& f) {
         edit_checkpoint(f, {"conv1.weight"}, [](SafeTensors& t) {
           const std::vector<float> w(54, 0.5f);
           t.add_f32("conv1.weight", {6, 1, 3, 3}, w.data());
         });
       }},
      {"CheckpointTruncatedData", Command::resume, "ckpt.safetensors", "run past the",
       [](const Files& f) { edit_bytes(f.checkpoint(), [](B& b) { b.resize(b.size() - 10); }); }},
      {"CheckpointEpochNotANumber", Command::resume, "ckpt.safetensors",
       "metadata 'epochs_done' is '-1', expected a whole number",
       [](const Files& f) {
         edit_checkpoint(f, {}, [](SafeTensors& t) { t.metadata["epochs_done"] = "-1"; });
       }},
      {"CheckpointIsADirectory", Command::eval, "ckpt.safetensors", "is a directory",
       [](const Files& f) {
         fs::remove(f.checkpoint());
         fs::create_directory(f.checkpoint());
       }},

      // Model files.
      {"ModelInvalidJson", Command::model, "model.json", "not valid JSON",
       write_model(R"({"input": [1, 28, 28], "classes": 10, "layers": [)")},
      {"ModelUnknownLayerType", Command::model, "model.json",
       "layer 1 (convolution): unknown layer type",
       write_model(model_json(R"({"type": "convolution", "filters": 6, "kernel": 5})"))},
      {"ModelMissingFilters", Command::model, "model.json",
       "layer 1 (conv2d): 'filters' is missing",
       write_model(model_json(R"({"type": "conv2d", "kernel": 5})"))},
      {"ModelNegativeFilters", Command::model, "model.json",
       "conv1: needs a positive number of filters, got -6",
       write_model(model_json(R"({"type": "conv2d", "filters": -6, "kernel": 5})"))},
      {"ModelMissingUnits", Command::model, "model.json", "layer 6 (dense): 'units' is missing",
       write_model(
           model_json(R"({"type": "conv2d", "filters": 6, "kernel": 5})", R"({"type": "dense"})"))},
      {"ModelNegativeUnits", Command::model, "model.json",
       "out: needs a positive number of units, got -10",
       write_model(model_json(R"({"type": "conv2d", "filters": 6, "kernel": 5})",
                              R"({"type": "dense", "name": "out", "units": -10})"))},
      {"ModelSizeNotAnInteger", Command::model, "model.json", "'filters' must be an integer",
       write_model(model_json(R"({"type": "conv2d", "filters": 6.5, "kernel": 5})"))},
      {"ModelKernelDoesNotFit", Command::model, "model.json",
       "conv1: input 1x28x28 does not fit kernel 40x40 with valid padding",
       write_model(
           model_json(R"({"type": "conv2d", "name": "conv1", "filters": 6, "kernel": 40})"))},
      {"ModelNoDenseLayerAtTheEnd", Command::model, "model.json",
       "the last layer (relu3) must be a dense layer with 10 outputs",
       write_model(model_json(R"({"type": "conv2d", "filters": 6, "kernel": 5})",
                              R"({"type": "dense", "units": 10}, {"type": "relu"})"))},
      {"ModelLastLayerNotTheClasses", Command::model, "model.json",
       "the last layer (out) must be a dense layer with 10 outputs, one per class; it gives 7x1x1",
       write_model(model_json(R"({"type": "conv2d", "filters": 6, "kernel": 5})",
                              R"({"type": "dense", "name": "out", "units": 7})"))},
      {"ModelAbsurdSize", Command::model, "model.json",
       "fc1: weight [2000000000, 864] has more than 2147483647 values",
       write_model(model_json().replace(model_json().find("16"), 2, "2000000000"))},
      // Nesting is bounded while parsing: 100,000 nested arrays as the input shape crashed the tool
      // (SIGSEGV: the error message quoted them, and nlohmann's dump recurses once per level).
      {"ModelNestedTooDeep", Command::model, "model.json",
       "the model file nests JSON deeper than 16 levels", write_model(std::string(100000, '['))},
      {"ModelInputNestedTooDeep", Command::model, "model.json",
       "the model file nests JSON deeper than 16 levels",
       write_model(model_json().replace(model_json().find("[1, 28, 28]"), 11,
                                        std::string(100000, '[') + std::string(100000, ']')))},
      // CIFAR-10 binary batches (found by --data's data_batch_1.bin): a length that is not a
      // whole number of 3073-byte records, a label past the 10 classes.
      {"CifarLengthNotWholeRecords", Command::train, "data/data_batch_1.bin",
       "6151 bytes is not a whole number of 3073-byte CIFAR-10 records",
       [](const Files& f) {
         write_cifar10(f, "data_batch_1.bin", {1, 2}, 5);
         write_cifar10(f, "test_batch.bin", {3}, 0);
       }},
      {"CifarLabelPastTheClasses", Command::train, "data/data_batch_1.bin",
       "record 1 has label 10, past the 10 classes (0 to 9)",
       [](const Files& f) {
         write_cifar10(f, "data_batch_1.bin", {1, 10}, 0);
         write_cifar10(f, "test_batch.bin", {3}, 0);
       }},
      // Image folders: damaged images, and trees that are not a classification set.
      {"FolderTruncatedPng", Command::folder, "images/train/a/1.png", "truncated PNG",
       edited_image("train/a/1.png", [](std::vector<std::uint8_t>& b) { b.resize(b.size() / 2); })},
      {"FolderCorruptPng", Command::folder, "images/train/b/0.png",
       "corrupt PNG (chunk 'IDAT' fails its CRC check)",
       edited_image("train/b/0.png",
                    [](std::vector<std::uint8_t>& b) { b[b.size() - 20] ^= 0x5A; })},
      {"FolderTruncatedJpeg", Command::folder, "images/test/a/0.jpg", "truncated JPEG",
       edited_image(
           "test/a/0.jpg", [](std::vector<std::uint8_t>& b) { b.resize(b.size() - 40); }, ".jpg")},
      {"FolderJpegCutBeforeItsData", Command::folder, "images/test/a/0.jpg", "truncated JPEG",
       edited_image(
           "test/a/0.jpg", [](std::vector<std::uint8_t>& b) { b.resize(200); }, ".jpg")},
      {"FolderCorruptJpeg", Command::folder, "images/test/b/0.jpg", "corrupt or truncated JPEG",
       edited_image(
           "test/b/0.jpg",
           [](std::vector<std::uint8_t>& b) {
             for (std::size_t i = 4; i < 200 && i < b.size(); ++i) b[i] = std::uint8_t(i * 37);
           },
           ".jpg")},
      {"FolderTextNamedPng", Command::folder, "images/train/a/0.png",
       "not an image stb_image can read",
       [](const Files& f) {
         write_image_folder(f);
         test::write_text(f.at("images/train/a/0.png"), "this is not a picture\n");
       }},
      {"FolderEmptyFile", Command::folder, "images/train/b/1.png", "empty file (0 bytes)",
       [](const Files& f) {
         write_image_folder(f);
         test::write_bytes(f.at("images/train/b/1.png"), {});
       }},
      {"FolderEmptyClass", Command::folder, "images/train/c", "empty class folder",
       [](const Files& f) {
         write_image_folder(f);
         fs::create_directories(f.at("images/train/c"));
         test::write_text(f.at("images/train/c/README"), "nothing here\n");
       }},
      {"FolderOneClass", Command::folder, "images/train", "only one class folder ('a')",
       [](const Files& f) {
         write_image_folder(f);
         fs::remove_all(f.at("images/train/b"));
       }},
      {"FolderNoImages", Command::folder, "images/train", "no images",
       [](const Files& f) {
         fs::create_directories(f.at("images/train"));
         fs::create_directories(f.at("images/test"));
         test::write_text(f.at("images/train/notes.txt"), "no class folders\n");
       }},
      // The folder's cache (written by a first load) damaged, or copied from another folder.
      {"FolderCacheTruncated", Command::folder, "images/.cnnrt-cache/train-1x28x28.cache",
       "truncated image cache",
       [](const Files& f) {
         write_image_folder(f);
         load_training_split(f.at("images"));
         const std::string cache = f.at("images/.cnnrt-cache/train-1x28x28.cache");
         fs::resize_file(cache, fs::file_size(cache) - 1);
       }},
      {"FolderCacheOfAnotherFolder", Command::folder, "images/.cnnrt-cache/train-1x28x28.cache",
       "image cache of the folder <root>/other",
       [](const Files& f) {
         write_image_folder(f);
         test::write_class_tree(f.at("other/train"), {"a", "b"}, 2, 28, 28, 1, ".png");
         test::write_class_tree(f.at("other/test"), {"a", "b"}, 1, 28, 28, 1, ".png");
         load_training_split(f.at("other"));
         fs::create_directories(f.at("images/.cnnrt-cache"));
         fs::copy_file(f.at("other/.cnnrt-cache/train-1x28x28.cache"),
                       f.at("images/.cnnrt-cache/train-1x28x28.cache"));
       }},
      // Control characters from the file are escaped: the error stays one line.
      {"ModelLayerNameWithANewline", Command::model, "model.json",
       R"(conv\n1: input 1x28x28 does not fit kernel 40x40)",
       write_model(
           model_json(R"({"type": "conv2d", "name": "conv\n1", "filters": 6, "kernel": 40})"))},
  };
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, OneErrorLineNamingTheFileAndNoOutputFiles) {
  const BadInput& c = GetParam();
  const test::ScratchDir scratch("bad_input_" + c.name);
  const Files f{scratch.path()};
  write_good_inputs(f);
  c.damage(f);
  const test::ToolRun r = test::run_tool(command_line(c.command, f));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::vector<std::string> lines = lines_of(r.output);
  ASSERT_EQ(lines.size(), 1u) << r.output;
  const std::string& line = lines[0];
  EXPECT_EQ(line.rfind("cnnrt: error: ", 0), 0u) << line;
  EXPECT_TRUE(test::contains(line, f.at(c.input)));
  std::string expected = c.expected;
  const std::string root_marker = "<root>";
  if (const auto at = expected.find(root_marker); at != std::string::npos)
    expected.replace(at, root_marker.size(), f.root.string());
  EXPECT_TRUE(test::contains(line, expected));
  for (const std::string& output : {f.out(), f.out() + ".tmp", f.metrics()})
    EXPECT_FALSE(fs::exists(output)) << output << " was left behind";
}

INSTANTIATE_TEST_SUITE_P(Cli, BadInputTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<BadInput>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace cnnrt
