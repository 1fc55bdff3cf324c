// Image folders (include/cnnrt/image_folder.hpp) and image decoding (include/cnnrt/image.hpp):
// generated PNG, JPEG and BMP trees, their bytes compared with the pictures the test wrote (PNG
// and BMP exactly, JPEG within its loss), channel conversion and the centre crop worked out here,
// the seeded split, skipped files, and the tool training on a folder.
#include "cnnrt/image_folder.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/image.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/safetensors.hpp"
#include "cnnrt/trainer.hpp"
#include "tests/image_files.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

// JPEG at quality 100 of a smooth ramp: each byte within this of the original.
constexpr int kJpegTolerance = 6;

std::vector<std::uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A split's image bytes, wherever the set holds them (a cache read is memory-mapped).
std::vector<std::uint8_t> images_of(const Dataset& d) {
  return std::vector<std::uint8_t>(d.image_data(), d.image_data() + d.image_data_size());
}

ByteImage decode_file(const std::string& path, int channels) {
  const std::vector<std::uint8_t> bytes = file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path, channels);
}

// [h, w, c] interleaved -> [c, h, w], as the data set holds samples.
std::vector<std::uint8_t> to_chw(const std::vector<std::uint8_t>& hwc, int w, int h, int c) {
  std::vector<std::uint8_t> chw(hwc.size());
  for (int k = 0; k < c; ++k)
    for (int p = 0; p < w * h; ++p) chw[std::size_t(k) * w * h + p] = hwc[std::size_t(p) * c + k];
  return chw;
}

TEST(DecodeImage, PngAndBmpAreExactJpegClose) {
  test::ScratchDir dir("decode");
  for (const int c : {1, 3}) {
    const std::vector<std::uint8_t> picture = test::test_picture(9, 7, c, 1, 2);
    for (const char* ext : {".png", ".bmp", ".jpg"}) {
      SCOPED_TRACE(std::string(ext) + " channels " + std::to_string(c));
      const std::string path = dir.file("p" + std::to_string(c) + ext);
      test::write_image(path, 9, 7, c, picture);
      const ByteImage image = decode_file(path, c);
      ASSERT_EQ(image.width, 9);
      ASSERT_EQ(image.height, 7);
      ASSERT_EQ(image.channels, c);
      ASSERT_EQ(image.pixels.size(), picture.size());
      int worst = 0;
      for (std::size_t i = 0; i < picture.size(); ++i)
        worst = std::max(worst, std::abs(int(image.pixels[i]) - int(picture[i])));
      EXPECT_LE(worst, std::string(ext) == ".jpg" ? kJpegTolerance : 0);
    }
  }
}

// Grey to RGB replicates; RGB to grey is stb_image's luma (77 R + 150 G + 29 B) >> 8.
TEST(DecodeImage, ChannelConversion) {
  test::ScratchDir dir("convert");
  const std::vector<std::uint8_t> grey = {0, 10, 200, 255};
  test::write_image(dir.file("g.png"), 2, 2, 1, grey);
  const ByteImage rgb = decode_file(dir.file("g.png"), 3);
  for (int p = 0; p < 4; ++p)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(rgb.pixels[std::size_t(p) * 3 + k], grey[p]);
  const std::vector<std::uint8_t> colour = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 100, 200};
  test::write_image(dir.file("c.png"), 2, 2, 3, colour);
  const ByteImage luma = decode_file(dir.file("c.png"), 1);
  for (int p = 0; p < 4; ++p) {
    const int r = colour[p * 3], g = colour[p * 3 + 1], b = colour[p * 3 + 2];
    EXPECT_EQ(luma.pixels[std::size_t(p)], (r * 77 + g * 150 + b * 29) >> 8) << p;
  }
  EXPECT_THROW(decode_file(dir.file("c.png"), 2), Error);
}

// A wider image keeps its full height and the centre columns; a taller one the centre rows; the
// same size is the image itself; scaling a constant image gives the constant.
TEST(FitImage, CentreCropThenResize) {
  ByteImage wide{10, 4, 1, {}};
  for (int i = 0; i < 40; ++i) wide.pixels.push_back(std::uint8_t(i));
  const ByteImage crop = fit_image(wide, 4, 4);  // columns 3..6
  std::vector<std::uint8_t> expected;
  for (int y = 0; y < 4; ++y)
    for (int x = 3; x < 7; ++x) expected.push_back(std::uint8_t(y * 10 + x));
  EXPECT_EQ(crop.pixels, expected);

  ByteImage tall{2, 6, 2, {}};
  for (int i = 0; i < 24; ++i) tall.pixels.push_back(std::uint8_t(i * 3));
  const ByteImage rows = fit_image(tall, 2, 2);  // rows 2..3, both channels
  const std::vector<std::uint8_t> middle(tall.pixels.begin() + 8, tall.pixels.begin() + 16);
  EXPECT_EQ(rows.pixels, middle);
  EXPECT_EQ(fit_image(tall, 2, 6).pixels, tall.pixels);

  for (const auto& [from_w, from_h, to_w, to_h] :
       {std::tuple{1, 1, 5, 5}, {64, 48, 8, 8}, {3, 9, 7, 2}}) {
    const ByteImage flat{from_w, from_h, 3, std::vector<std::uint8_t>(from_w * from_h * 3, 77)};
    const ByteImage out = fit_image(flat, to_w, to_h);
    ASSERT_EQ(out.pixels.size(), std::size_t(to_w * to_h * 3));
    for (const std::uint8_t v : out.pixels) EXPECT_EQ(v, 77);
  }
}

TEST(ImageFolder, TrainAndTestFoldersGiveTheBytesOfEachPicture) {
  test::ScratchDir dir("folder_bytes");
  const fs::path root = dir.path();
  test::write_class_tree(root / "train", {"zebra", "ant", "moth"}, 3, 6, 5, 3, ".png");
  test::write_class_tree(root / "test", {"ant", "zebra"}, 2, 6, 5, 3, ".bmp");
  test::write_text((root / "train" / "ant" / "README").string(), "notes\n");
  test::write_text((root / "train" / "ant" / ".DS_Store").string(), "");
  ASSERT_TRUE(looks_like_image_folder(root.string()));
  ImageFolderOptions o;
  o.channels = 3, o.height = 5, o.width = 6, o.threads = 2;
  int calls = 0;
  o.progress = [&](int done, int total) {
    EXPECT_LE(done, total);
    ++calls;
  };
  const ImageFolderData data = load_image_folder(root.string(), o, true, true);
  EXPECT_GE(calls, 1);
  EXPECT_EQ(data.skipped, 2);
  EXPECT_EQ(data.decoded, 13);
  // Sorted folder names: ant 0, moth 1, zebra 2 (the tree wrote them as labels 1, 2, 0).
  EXPECT_EQ(data.train.class_names, (std::vector<std::string>{"ant", "moth", "zebra"}));
  EXPECT_EQ(data.train.classes, 3);
  ASSERT_EQ(data.train.count, 9);
  ASSERT_EQ(data.test.count, 4);
  const int written_label[3] = {1, 2, 0};  // the picture index each class was written with
  const std::size_t sample = 3 * 5 * 6;
  for (int i = 0; i < data.train.count; ++i) {
    const int label = i / 3;
    EXPECT_EQ(data.train.labels[std::size_t(i)], label);
    const std::vector<std::uint8_t> expected =
        to_chw(test::test_picture(6, 5, 3, written_label[label], i % 3), 6, 5, 3);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                           data.train.image_data() + std::ptrdiff_t(i * sample)))
        << "train sample " << i;
  }
  // test/: ant (written as label 0 of {"ant", "zebra"}) then zebra (label 1).
  for (int i = 0; i < data.test.count; ++i) {
    EXPECT_EQ(data.test.labels[std::size_t(i)], i < 2 ? 0 : 2);
    const std::vector<std::uint8_t> expected =
        to_chw(test::test_picture(6, 5, 3, i / 2, i % 2), 6, 5, 3);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(),
                           data.test.image_data() + std::ptrdiff_t(i * sample)))
        << "test sample " << i;
  }
  // The normalised batch is (byte / 255 - mean[c]) / std[c] with each channel's statistics,
  // both worked out here with plain loops.
  const Normalization norm = compute_normalization(data.train);
  const std::vector<float> batch = normalized_samples(data.train, 0, data.train.count, norm);
  for (int k = 0; k < 3; ++k) {
    double sum = 0, squares = 0;
    const int n = data.train.count * 30;
    for (int i = 0; i < data.train.count; ++i)
      for (int p = 0; p < 30; ++p) {
        const double v =
            data.train.image_data()[std::size_t(i) * sample + std::size_t(k) * 30 + p] / 255.0;
        sum += v, squares += v * v;
      }
    const double mean = sum / n, sd = std::sqrt(squares / n - mean * mean);
    EXPECT_NEAR(norm.mean[std::size_t(k)], mean, 1e-6);
    EXPECT_NEAR(norm.std[std::size_t(k)], sd, 1e-5);
    for (int i = 0; i < data.train.count; ++i)
      for (int p = 0; p < 30; ++p) {
        const std::size_t at = std::size_t(i) * sample + std::size_t(k) * 30 + p;
        EXPECT_NEAR(batch[at], (data.train.image_data()[at] / 255.0 - mean) / sd, 1e-4) << at;
      }
  }
}

TEST(ImageFolder, OneTreeSplitsEachClassBySeed) {
  test::ScratchDir dir("folder_split");
  test::write_class_tree(dir.path(), {"a", "b"}, 10, 4, 4, 1, ".png");
  test::write_class_tree(dir.path(), {"c"}, 1, 4, 4, 1, ".png");  // one image: train only
  ImageFolderOptions o;
  o.channels = 1, o.height = 4, o.width = 4, o.test_split = 0.3;
  auto split = [&](std::uint64_t seed) {
    o.seed = seed;
    return load_image_folder(dir.path().string(), o, true, true);
  };
  const ImageFolderData one = split(1), again = split(1), other = split(2);
  EXPECT_EQ(one.test.count, 6);  // 3 of each ten, none of c
  EXPECT_EQ(one.train.count, 15);
  EXPECT_EQ(std::count(one.test.labels.begin(), one.test.labels.end(), 0), 3);
  EXPECT_EQ(std::count(one.test.labels.begin(), one.test.labels.end(), 2), 0);
  EXPECT_EQ(images_of(one.test), images_of(again.test));
  EXPECT_EQ(images_of(one.train), images_of(again.train));
  EXPECT_NE(images_of(one.test), images_of(other.test));
  // Together the two splits hold every picture once.
  std::multiset<std::vector<std::uint8_t>> all, expected;
  for (const Dataset* d : {&one.train, &one.test})
    for (int i = 0; i < d->count; ++i)
      all.insert(
          std::vector<std::uint8_t>(d->image_data() + i * 16, d->image_data() + (i + 1) * 16));
  for (int label = 0; label < 3; ++label)
    for (int i = 0; i < (label < 2 ? 10 : 1); ++i)
      expected.insert(test::test_picture(4, 4, 1, label == 2 ? 0 : label, i));
  EXPECT_EQ(all, expected);
  // Without a split the tree needs train/ and test/.
  o.test_split = 0;
  test::expect_error([&] { load_image_folder(dir.path().string(), o, true, true); },
                     {dir.path().string(), "no train/ and test/"});
}

// Loads both splits of `root` (3 classes of 6x5 RGB PNGs in train/ and test/) with `cache`.
ImageFolderData load_rgb(const fs::path& root, const std::string& cache = "") {
  ImageFolderOptions o;
  o.channels = 3, o.height = 5, o.width = 6, o.threads = 2, o.cache = cache;
  return load_image_folder(root.string(), o, true, true);
}

void write_rgb_tree(const fs::path& root) {
  test::write_class_tree(root / "train", {"zebra", "ant", "moth"}, 3, 6, 5, 3, ".png");
  test::write_class_tree(root / "test", {"ant", "zebra"}, 2, 6, 5, 3, ".png");
}

// A second load reads each split's cache: nothing decoded, the same samples, labels and classes
// as the first load decoded (which the test above holds against the pictures written).
TEST(ImageFolderCache, SecondLoadReadsTheSameSamples) {
  test::ScratchDir dir("cache_reuse");
  write_rgb_tree(dir.path());
  const ImageFolderData first = load_rgb(dir.path());
  EXPECT_EQ(first.decoded, 13);
  EXPECT_EQ(first.cached, 0);
  EXPECT_EQ(first.train_cache.status, "written");
  EXPECT_EQ(first.test_cache.status, "written");
  EXPECT_EQ(first.train_cache.path, (dir.path() / ".cnnrt-cache" / "train-3x5x6.cache").string());
  ASSERT_TRUE(fs::exists(first.train_cache.path));
  ASSERT_TRUE(fs::exists(first.test_cache.path));
  const ImageFolderData second = load_rgb(dir.path());
  EXPECT_EQ(second.decoded, 0);
  EXPECT_EQ(second.cached, 13);
  EXPECT_EQ(second.train_cache.status, "read");
  EXPECT_EQ(second.test_cache.status, "read");
  for (const auto& [a, b] : {std::pair{&first.train, &second.train}, {&first.test, &second.test}}) {
    EXPECT_EQ(b->count, a->count);
    EXPECT_EQ(images_of(*b), images_of(*a));
    EXPECT_EQ(b->labels, a->labels);
    EXPECT_EQ(b->class_names, a->class_names);
    EXPECT_EQ(b->classes, a->classes);
    EXPECT_EQ(b->channels * b->height * b->width, 90);
  }
}

// An added image, or an image rewritten with other pixels, makes the split decode again.
TEST(ImageFolderCache, ChangedFilesAreDecodedAgain) {
  test::ScratchDir dir("cache_changed");
  write_rgb_tree(dir.path());
  load_rgb(dir.path());
  test::write_image((dir.path() / "train" / "ant" / "extra.png").string(), 6, 5, 3,
                    test::test_picture(6, 5, 3, 2, 7));
  const ImageFolderData added = load_rgb(dir.path());
  EXPECT_EQ(added.train_cache.status, "written");
  EXPECT_EQ(added.test_cache.status, "read");  // test/ did not change
  EXPECT_EQ(added.train.count, 10);
  EXPECT_EQ(added.decoded, 10);

  // ant/0.png rewritten with the picture of another class: new bytes at sample 0 (ant is label 0,
  // its first file 0.png). Its size may stay the same; its modification time moves on.
  const fs::path changed = dir.path() / "train" / "ant" / "0.png";
  const std::vector<std::uint8_t> picture = test::test_picture(6, 5, 3, 0, 1);
  test::write_image(changed.string(), 6, 5, 3, picture);
  fs::last_write_time(changed, fs::last_write_time(changed) + std::chrono::seconds(2));
  const ImageFolderData rewritten = load_rgb(dir.path());
  EXPECT_EQ(rewritten.train_cache.status, "written");
  const std::vector<std::uint8_t> expected = to_chw(picture, 6, 5, 3);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), rewritten.train.image_data()));
  EXPECT_EQ(load_rgb(dir.path()).train_cache.status, "read");
}

// Damaged caches are errors naming the file and saying how to rebuild; a cache moved in from
// another folder says so.
TEST(ImageFolderCache, DamagedOrForeignCacheIsAnError) {
  test::ScratchDir dir("cache_damaged");
  write_rgb_tree(dir.path() / "a");
  write_rgb_tree(dir.path() / "b");
  const std::string cache = load_rgb(dir.path() / "a").train_cache.path;
  const std::uintmax_t size = fs::file_size(cache);
  fs::resize_file(cache, size - 3);
  test::expect_error([&] { load_rgb(dir.path() / "a"); },
                     {cache, "truncated image cache", "rebuild it by removing the file"});
  test::write_text(cache, "not a cache at all\n");
  test::expect_error([&] { load_rgb(dir.path() / "a"); }, {cache, "not a cnnrt image cache"});
  fs::remove(cache);
  EXPECT_EQ(load_rgb(dir.path() / "a").train_cache.status, "written");

  const std::string other = load_rgb(dir.path() / "b").train_cache.path;
  fs::copy_file(cache, other, fs::copy_options::overwrite_existing);
  test::expect_error(
      [&] { load_rgb(dir.path() / "b"); },
      {other, "image cache of the folder " + (dir.path() / "a").string(), "remove it to rebuild"});
}

// cache = a folder: one sub-folder per image folder there, nothing written beside the images;
// "none": no cache at all; a cache that cannot be written is reported and the data still loads.
TEST(ImageFolderCache, CacheFolderNoneAndUnwritable) {
  test::ScratchDir dir("cache_where");
  write_rgb_tree(dir.path() / "photos");
  const ImageFolderData elsewhere = load_rgb(dir.path() / "photos", dir.file("caches"));
  EXPECT_EQ(elsewhere.train_cache.status, "written");
  const fs::path written(elsewhere.train_cache.path);
  EXPECT_EQ(written.parent_path().parent_path(), fs::path(dir.file("caches")));
  EXPECT_EQ(written.parent_path().filename().string().rfind("photos-", 0), 0u);
  EXPECT_FALSE(fs::exists(dir.path() / "photos" / ".cnnrt-cache"));
  EXPECT_EQ(load_rgb(dir.path() / "photos", dir.file("caches")).train_cache.status, "read");

  const ImageFolderData none = load_rgb(dir.path() / "photos", "none");
  EXPECT_EQ(none.train_cache.status, "off");
  EXPECT_TRUE(none.train_cache.path.empty());
  EXPECT_EQ(none.decoded, 13);
  EXPECT_FALSE(fs::exists(dir.path() / "photos" / ".cnnrt-cache"));

  // The temporary file is named per process: a stale "<cache>.tmp" (here a folder, which no file
  // can replace) is not in the way, nor is another rank writing the same cache at once.
  const fs::path cache = elsewhere.train_cache.path;
  fs::create_directory(cache.string() + ".tmp");
  const fs::path touched = dir.path() / "photos" / "train" / "ant" / "0.png";
  fs::last_write_time(touched, fs::last_write_time(touched) + std::chrono::seconds(2));
  EXPECT_EQ(load_rgb(dir.path() / "photos", dir.file("caches")).train_cache.status, "written");
  for (const auto& entry : fs::directory_iterator(cache.parent_path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
  fs::remove(cache.string() + ".tmp");

  test::write_text(dir.file("a-file"), "a file where the cache folder would go\n");
  const ImageFolderData unwritable = load_rgb(dir.path() / "photos", dir.file("a-file"));
  EXPECT_TRUE(test::contains(unwritable.train_cache.status, "not written: "))
      << unwritable.train_cache.status;
  EXPECT_EQ(images_of(unwritable.train), images_of(none.train));
}

// A split read from its cache, or just written to it, stays in the mapped file; without a cache
// it is in memory. Training on the CPU gathers straight from the mapping, with the same bits as
// from the same bytes in memory (crops and flips included).
TEST(ImageFolderCache, TrainingFromTheMappedCacheGivesTheSameBits) {
  test::ScratchDir dir("cache_train");
  test::write_class_tree(dir.path(), {"a", "b", "c"}, 14, 8, 8, 3, ".png");
  ImageFolderOptions o;
  o.channels = 3, o.height = 8, o.width = 8, o.threads = 2, o.test_split = 0.25;
  const ImageFolderData written = load_image_folder(dir.path().string(), o, true, true);
  ASSERT_EQ(written.train_cache.status, "written");
  const ImageFolderData read = load_image_folder(dir.path().string(), o, true, true);
  ASSERT_EQ(read.train_cache.status, "read");
  o.cache = "none";
  const ImageFolderData none = load_image_folder(dir.path().string(), o, true, true);
  for (const Dataset* d : {&written.train, &written.test, &read.train, &read.test}) {
    EXPECT_TRUE(d->mapped_images != nullptr);
    EXPECT_TRUE(d->images.empty());
  }
  EXPECT_TRUE(none.train.mapped_images == nullptr);
  ASSERT_EQ(none.train.images.size(), std::size_t(30 * 3 * 8 * 8));
  EXPECT_EQ(images_of(read.train), none.train.images);
  EXPECT_EQ(images_of(read.test), none.test.images);

  const Network network =
      network_from_json(R"({"name": "rgb8", "input": [3, 8, 8], "classes": 3, "layers": [)"
                        R"({"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3},)"
                        R"({"type": "relu"}, {"type": "dense", "name": "fc1", "units": 3}]})",
                        "test");
  const std::vector<float> initial =
      Model(network, test::cpu_options(8, 3)).parameter("conv1.weight");
  auto weights = [&](const ImageFolderData& data) {
    TrainOptions t;
    t.epochs = 2;
    t.quiet = true;
    t.augment = "crop:2,flip";
    Model model(network, test::cpu_options(8, 3));
    train(model, data.train, data.test, t);
    return model.parameter("conv1.weight");
  };
  const std::vector<float> mapped = weights(read), in_memory = weights(none);
  ASSERT_NE(mapped, initial);  // it trained
  EXPECT_EQ(mapped, in_memory);
}

// The tool trains a few steps on a generated RGB JPEG folder split by --test-split; the
// checkpoint names the classes; a grey PNG tree feeds lenet5 through auto-detection.
TEST(ImageFolder, ToolTrainsOnAFolder) {
  test::ScratchDir dir("folder_train");
  test::write_class_tree(dir.path() / "photos", {"cat", "dog"}, 12, 20, 14, 3, ".jpg");
  test::write_text(dir.file("photos/cat/README"), "skip me\n");
  std::ofstream(dir.file("model.json"))
      << R"({"name": "rgb", "input": [3, 12, 12], "classes": 2, "layers": [)"
      << R"({"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3},)"
      << R"({"type": "relu"}, {"type": "dense", "name": "fc1", "units": 2}]})";
  const test::ToolRun run = test::run_tool(
      "train --device cpu --threads 2 --epochs 2 --batch 4 --test-split 0.25 --model '" +
      dir.file("model.json") + "' --data '" + dir.file("photos") + "' --checkpoint '" +
      dir.file("c.safetensors") + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(test::contains(run.output, "read 18 training images (2 classes, 3x12x12)"))
      << run.output;
  EXPECT_TRUE(test::contains(run.output, "1 non-image file skipped")) << run.output;
  EXPECT_TRUE(test::contains(run.output, "(18 train / 6 test images)")) << run.output;
  const SafeTensors file = SafeTensors::load(dir.file("c.safetensors"));
  EXPECT_EQ(file.metadata.at("class_names"), R"(["cat","dog"])");
  EXPECT_EQ(parse_float_list(file.metadata.at("normalization_mean"), "mean").size(), 3u);

  const test::ToolRun eval = test::run_tool(
      "eval --device cpu --test-split 0.25 --model '" + dir.file("model.json") + "' --data '" +
      dir.file("photos") + "' --weights '" + dir.file("c.safetensors") + "'");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_TRUE(test::contains(eval.output, "images 6")) << eval.output;

  test::write_class_tree(dir.path() / "grey" / "train", {"x", "y", "z"}, 4, 28, 28, 1, ".png");
  test::write_class_tree(dir.path() / "grey" / "test", {"x", "y", "z"}, 2, 28, 28, 1, ".png");
  const test::ToolRun lenet =
      test::run_tool("train --device cpu --epochs 1 --batch 4 --data '" + dir.file("grey") +
                     "' --checkpoint '" + dir.file("lenet.safetensors") + "'");
  ASSERT_EQ(lenet.exit_code, 0) << lenet.output;
  EXPECT_TRUE(test::contains(lenet.output, "(12 train / 6 test images)")) << lenet.output;
  // The preset's last layer follows the folder's three classes; eval and predict take that
  // network from the checkpoint.
  EXPECT_TRUE(test::contains(lenet.output, "lenet5: 3 outputs in fc3, one per class of"))
      << lenet.output;
  const SafeTensors lenet_file = SafeTensors::load(dir.file("lenet.safetensors"));
  EXPECT_EQ(lenet_file.get("fc3.weight").shape, (std::vector<std::int64_t>{3, 84}));
  const test::ToolRun lenet_eval =
      test::run_tool("eval --device cpu --data '" + dir.file("grey") + "' --weights '" +
                     dir.file("lenet.safetensors") + "'");
  ASSERT_EQ(lenet_eval.exit_code, 0) << lenet_eval.output;
  EXPECT_TRUE(test::contains(lenet_eval.output, "images 6")) << lenet_eval.output;
  const test::ToolRun lenet_predict =
      test::run_tool("predict --device cpu --top 3 --weights '" + dir.file("lenet.safetensors") +
                     "' '" + dir.file("grey/test/z/0.png") + "'");
  ASSERT_EQ(lenet_predict.exit_code, 0) << lenet_predict.output;
  for (const char* name : {"x (", "y (", "z ("})
    EXPECT_TRUE(test::contains(lenet_predict.output, name)) << lenet_predict.output;

  // A model file must already agree with the data: two outputs for three classes is an error.
  const test::ToolRun mismatch =
      test::run_tool("train --device cpu --epochs 1 --batch 4 --model '" + dir.file("model.json") +
                     "' --data '" + dir.file("grey") + "'");
  EXPECT_EQ(mismatch.exit_code, 1) << mismatch.output;
  EXPECT_TRUE(test::contains(mismatch.output, "holds 3 classes but")) << mismatch.output;
}

}  // namespace
}  // namespace cnnrt
