// CIFAR-10/100 binary files built here byte by byte: records to images and labels, CIFAR-100's
// fine and coarse labels, the splits and class names of a directory, the damaged files (a
// length that is not a whole number of records, a label past the class count), and a 32x32x3
// model file trained on a generated CIFAR-10 directory through the tool.
#include "cnnrt/cifar.hpp"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/safetensors.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

// One record: the label bytes, then pixel p of the record = (seed + p * 3) mod 256.
std::vector<std::uint8_t> record(std::vector<std::uint8_t> labels, int seed) {
  std::vector<std::uint8_t> r = std::move(labels);
  for (int p = 0; p < kCifarPixels; ++p) r.push_back(std::uint8_t((seed + p * 3) % 256));
  return r;
}

void append(std::vector<std::uint8_t>& to, const std::vector<std::uint8_t>& bytes) {
  to.insert(to.end(), bytes.begin(), bytes.end());
}

void write(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Cifar, Cifar10RecordsAreLabelThenChwPixels) {
  std::vector<std::uint8_t> bytes;
  append(bytes, record({7}, 1));
  append(bytes, record({0}, 2));
  const Dataset d =
      parse_cifar(bytes.data(), bytes.size(), "x.bin", CifarKind::cifar10, CifarLabels::fine);
  EXPECT_EQ(d.count, 2);
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(d.height, 32);
  EXPECT_EQ(d.width, 32);
  EXPECT_EQ(d.classes, 10);
  EXPECT_EQ(d.labels, (std::vector<std::uint8_t>{7, 0}));
  ASSERT_EQ(d.images.size(), 2u * 3072u);
  EXPECT_EQ(d.images[0], 1);                        // red (0, 0)
  EXPECT_EQ(d.images[1024], (1 + 1024 * 3) % 256);  // green (0, 0)
  EXPECT_EQ(d.images[3072 + 5], 2 + 15);            // second record, red (0, 5)
}

TEST(Cifar, Cifar100HasCoarseThenFineLabels) {
  std::vector<std::uint8_t> bytes;
  append(bytes, record({19, 99}, 3));
  append(bytes, record({4, 30}, 4));
  const Dataset fine =
      parse_cifar(bytes.data(), bytes.size(), "t.bin", CifarKind::cifar100, CifarLabels::fine);
  const Dataset coarse =
      parse_cifar(bytes.data(), bytes.size(), "t.bin", CifarKind::cifar100, CifarLabels::coarse);
  EXPECT_EQ(fine.labels, (std::vector<std::uint8_t>{99, 30}));
  EXPECT_EQ(fine.classes, 100);
  EXPECT_EQ(coarse.labels, (std::vector<std::uint8_t>{19, 4}));
  EXPECT_EQ(coarse.classes, 20);
  EXPECT_EQ(fine.images[3072], 4);  // the second record's first pixel, after two label bytes
}

TEST(Cifar, DamagedFilesNameTheFileAndTheProblem) {
  std::vector<std::uint8_t> bytes = record({1}, 0);
  bytes.push_back(0);  // one byte over
  EXPECT_EQ(error_of([&] {
              parse_cifar(bytes.data(), bytes.size(), "a.bin", CifarKind::cifar10,
                          CifarLabels::fine);
            }),
            "a.bin: 3074 bytes is not a whole number of 3073-byte CIFAR-10 records (1 and 1 "
            "bytes over)");
  const std::vector<std::uint8_t> bad_label = record({10}, 0);
  EXPECT_EQ(error_of([&] {
              parse_cifar(bad_label.data(), bad_label.size(), "b.bin", CifarKind::cifar10,
                          CifarLabels::fine);
            }),
            "b.bin: record 0 has label 10, past the 10 classes (0 to 9)");
  const std::vector<std::uint8_t> coarse_past = record({20, 5}, 0);
  EXPECT_EQ(error_of([&] {
              parse_cifar(coarse_past.data(), coarse_past.size(), "c.bin", CifarKind::cifar100,
                          CifarLabels::coarse);
            }),
            "c.bin: record 0 has label 20, past the 20 classes (0 to 19)");
  EXPECT_EQ(
      error_of([&] { parse_cifar(nullptr, 0, "d.bin", CifarKind::cifar10, CifarLabels::fine); }),
      "d.bin: empty file (no CIFAR records)");
  EXPECT_THROW(parse_cifar_labels("medium"), Error);
}

TEST(Cifar, DirectorySplitsAndClassNames) {
  test::ScratchDir dir("cifar_dir");
  std::vector<std::uint8_t> b1, b2, t;
  append(b1, record({1}, 10));
  append(b2, record({2}, 20));
  append(b2, record({3}, 30));
  append(t, record({9}, 40));
  write(dir.file("data_batch_1.bin"), b1);
  write(dir.file("data_batch_2.bin"), b2);
  write(dir.file("test_batch.bin"), t);
  CifarKind kind = CifarKind::cifar100;
  ASSERT_TRUE(find_cifar_kind(dir.path().string(), &kind));
  EXPECT_EQ(kind, CifarKind::cifar10);
  const Dataset train = load_cifar_split(dir.path().string(), true, CifarLabels::fine);
  EXPECT_EQ(train.count, 3);
  EXPECT_EQ(train.labels, (std::vector<std::uint8_t>{1, 2, 3}));
  EXPECT_EQ(train.images[2 * 3072], 30);
  const Dataset test = load_cifar_split(dir.path().string(), false, CifarLabels::fine);
  EXPECT_EQ(test.labels, (std::vector<std::uint8_t>{9}));
  EXPECT_TRUE(cifar_class_names(dir.path().string(), CifarLabels::fine, 10).empty());
  std::ofstream(dir.file("batches.meta.txt"))
      << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  const std::vector<std::string> names =
      cifar_class_names(dir.path().string(), CifarLabels::fine, 10);
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "airplane");
  EXPECT_EQ(names[9], "truck");
  EXPECT_THROW(cifar_class_names(dir.path().string(), CifarLabels::fine, 100), Error);
  std::filesystem::remove(dir.file("test_batch.bin"));
  EXPECT_THROW(load_cifar_split(dir.path().string(), false, CifarLabels::fine), Error);
}

// A generated CIFAR-10 directory where the class is which colour plane is bright: a 32x32x3
// model file trains on it through the tool and learns it.
TEST(Cifar, ColourModelTrainsOnAGeneratedCifarDirectory) {
  test::ScratchDir dir("cifar_train");
  auto split = [](int count, int seed) {
    std::vector<std::uint8_t> bytes;
    for (int i = 0; i < count; ++i) {
      const int label = (i * 7 + seed) % 3;
      bytes.push_back(std::uint8_t(label));
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p)
          bytes.push_back(std::uint8_t(c == label ? 200 + (p + i) % 50 : (p * 13 + i) % 60));
    }
    return bytes;
  };
  const std::vector<std::uint8_t> train = split(192, 0);
  write(dir.file("data_batch_1.bin"), train);
  write(dir.file("test_batch.bin"), split(64, 1));
  std::ofstream(dir.file("batches.meta.txt")) << "red\ngreen\nblue\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n";
  std::ofstream(dir.file("model.json"))
      << R"({"name": "rgb", "input": [3, 32, 32], "classes": 10, "layers": [)"
      << R"({"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3, "padding": "same"},)"
      << R"({"type": "relu"}, {"type": "max_pool", "window": 4, "stride": 4},)"
      << R"({"type": "dense", "name": "fc1", "units": 10}]})";
  const test::ToolRun run = test::run_tool(
      "train --device cpu --threads 1 --epochs 3 --batch 32 --augment crop:4,flip --model '" +
      dir.file("model.json") + "' --data '" + dir.path().string() + "' --checkpoint '" +
      dir.file("c.safetensors") + "' --metrics '" + dir.file("m.csv") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // The checkpoint holds each channel's mean and std of byte / 255 over the training records
  // (worked out here with plain loops), and the names from batches.meta.txt.
  const SafeTensors file = SafeTensors::load(dir.file("c.safetensors"));
  const std::vector<float> mean = parse_float_list(file.metadata.at("normalization_mean"), "mean");
  const std::vector<float> stds = parse_float_list(file.metadata.at("normalization_std"), "std");
  ASSERT_EQ(mean.size(), 3u);
  ASSERT_EQ(stds.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    double sum = 0, squares = 0, n = 0;
    for (std::size_t r = 0; r < 192; ++r)
      for (int p = 0; p < 1024; ++p) {
        const double v = train[r * 3073 + 1 + std::size_t(c) * 1024 + std::size_t(p)] / 255.0;
        sum += v, squares += v * v, ++n;
      }
    const double m = sum / n;
    EXPECT_NEAR(mean[std::size_t(c)], m, 1e-6) << c;
    EXPECT_NEAR(stds[std::size_t(c)], std::sqrt(squares / n - m * m), 1e-5) << c;
  }
  EXPECT_EQ(file.metadata.at("class_names").substr(0, 22), R"(["red","green","blue",)");
  EXPECT_EQ(file.metadata.at("input_size"), "3x32x32");
  EXPECT_NE(run.output.find("192 train / 64 test images"), std::string::npos) << run.output;
  const std::size_t at = run.output.find("final test accuracy ");
  ASSERT_NE(at, std::string::npos) << run.output;
  EXPECT_GE(std::stod(run.output.substr(at + 20)), 0.9) << run.output;
  // eval normalises with the checkpoint's values: the test loss of training's last epoch (from
  // the metrics file) to the printed digits; the IDX default would give another loss.
  const test::ToolRun eval = test::run_tool(
      "eval --device cpu --threads 1 --batch 32 --model '" + dir.file("model.json") + "' --data '" +
      dir.path().string() + "' --weights '" + dir.file("c.safetensors") + "'");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const std::size_t eval_at = eval.output.find("accuracy ");
  ASSERT_NE(eval_at, std::string::npos) << eval.output;
  EXPECT_NEAR(std::stod(eval.output.substr(eval_at + 9)), std::stod(run.output.substr(at + 20)),
              0.5e-4 + 1e-9)
      << eval.output;
  std::ifstream csv(dir.file("m.csv"));
  std::string row, last;
  while (std::getline(csv, row)) last = row;
  // epoch,train_loss,train_acc,test_loss,...
  std::size_t comma = 0;
  for (int k = 0; k < 3; ++k) comma = last.find(',', comma) + 1;
  const double test_loss = std::stod(last.substr(comma));
  const std::size_t loss_at = eval.output.find(" loss ");
  ASSERT_NE(loss_at, std::string::npos) << eval.output;
  EXPECT_NEAR(std::stod(eval.output.substr(loss_at + 6)), test_loss, 0.5e-4 + 1e-6 * test_loss)
      << eval.output << " vs " << last;

  const test::ToolRun idx =
      test::run_tool("train --device cpu --epochs 1 --format idx --model '" +
                     dir.file("model.json") + "' --data '" + dir.path().string() + "'");
  EXPECT_EQ(idx.exit_code, 1) << idx.output;  // forced IDX: no IDX files there

  // --mean / --std given: one value for all channels or three; anything else is a usage error
  // found before the data is read.
  const std::string model = " --model '" + dir.file("model.json") + "' --data '" +
                            dir.path().string() + "' --epochs 1 --device cpu --train-limit 32 ";
  const test::ToolRun given = test::run_tool("train" + model + "--mean 0.5 --std 0.1,0.2,0.3 " +
                                             "--checkpoint '" + dir.file("g.safetensors") + "'");
  ASSERT_EQ(given.exit_code, 0) << given.output;
  const SafeTensors g = SafeTensors::load(dir.file("g.safetensors"));
  EXPECT_EQ(g.metadata.at("normalization_mean"), "0.5,0.5,0.5");
  EXPECT_EQ(g.metadata.at("normalization_std"), "0.1,0.2,0.3");
  for (const char* bad :
       {"--mean 0.1,0.2", "--std 0.1,0.2,0.3,0.4", "--std 0", "--std 0.1,-1,1", "--mean x"}) {
    SCOPED_TRACE(bad);
    const test::ToolRun r = test::run_tool("train" + model + bad);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_TRUE(test::contains(r.output, "cnnrt: error: ")) << r.output;
  }
}

// Each channel's mean and population std of byte / 255, by hand: channel 0 holds {0, 255, 0, 255}
// (mean 0.5, std 0.5), channel 1 holds 51 everywhere (std 0: 1 instead).
TEST(Normalization, ComputedPerChannelOverTheSet) {
  Dataset data;
  data.count = 2, data.channels = 2, data.height = 1, data.width = 2;
  data.images = {0, 255, 51, 51, 255, 0, 51, 51};
  data.labels = {0, 1};
  const Normalization n = compute_normalization(data);
  ASSERT_EQ(n.mean.size(), 2u);
  EXPECT_NEAR(n.mean[0], 0.5, 1e-7);
  EXPECT_NEAR(n.std[0], 0.5, 1e-7);
  EXPECT_NEAR(n.mean[1], 0.2, 1e-7);
  EXPECT_EQ(n.std[1], 1.0f);
  EXPECT_THROW(compute_normalization(Dataset{}), Error);
  EXPECT_EQ(parse_float_list("0.5,-1,2e-1", "x"), (std::vector<float>{0.5f, -1.0f, 0.2f}));
  for (const char* bad : {"", ",", "0.5,", "a", "1 2", "nan", "inf"})
    EXPECT_THROW(parse_float_list(bad, "x"), Error) << bad;
  EXPECT_THROW((Normalization{{0.1f, 0.2f}, {1.0f}}).check(2), Error);
  EXPECT_THROW((Normalization{{0.1f, 0.2f}, {1.0f, 1.0f}}).check(3), Error);
  EXPECT_NO_THROW((Normalization{{0.1f}, {1.0f}}).check(3));
}

}  // namespace
}  // namespace cnnrt
