// IDX reader: good files (plain and gzipped) written here byte by byte, every kind of bad file the
// loader must refuse with a message naming the file, and the real Fashion-MNIST test split when
// it is installed (facts checked against Python's gzip module, not against this code).
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "tests/file_formats.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class IdxTest : public test::ScratchDirTest {
 protected:
  IdxTest() : ScratchDirTest("idx_test") {}
};

using test::idx_bytes;

void write_gzip(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  test::write_bytes(path, test::gzip_bytes(bytes));
}

constexpr int kCount = 5, kHeight = 3, kWidth = 4;

std::vector<std::uint8_t> sample_pixels() {
  std::vector<std::uint8_t> pixels(kCount * kHeight * kWidth);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return pixels;
}
const std::vector<std::uint8_t> kLabels = {3, 0, 9, 1, 7};

TEST_F(IdxTest, LoadsPlainFiles) {
  test::write_bytes(path("img"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("lab"), idx_bytes(0x08, {kCount}, kLabels));
  const Dataset data = load_idx_dataset(path("img"), path("lab"));
  EXPECT_EQ(data.count, kCount);
  EXPECT_EQ(data.channels, 1);
  EXPECT_EQ(data.height, kHeight);
  EXPECT_EQ(data.width, kWidth);
  EXPECT_EQ(data.classes, 10);
  EXPECT_EQ(data.sample_size(), kHeight * kWidth);
  EXPECT_EQ(data.images, sample_pixels());
  EXPECT_EQ(data.labels, kLabels);
}

TEST_F(IdxTest, LoadsGzippedFiles) {
  write_gzip(path("img.gz"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  write_gzip(path("lab.gz"), idx_bytes(0x08, {kCount}, kLabels));
  const auto raw = test::read_bytes(path("img.gz"));
  ASSERT_GE(raw.size(), 2u);
  ASSERT_EQ(raw[0], 0x1f);  // really gzip on disk
  ASSERT_EQ(raw[1], 0x8b);
  const Dataset data = load_idx_dataset(path("img.gz"), path("lab.gz"));
  EXPECT_EQ(data.count, kCount);
  EXPECT_EQ(data.images, sample_pixels());
  EXPECT_EQ(data.labels, kLabels);
}

TEST_F(IdxTest, ReadIdxFileReturnsDims) {
  write_gzip(path("x.gz"), idx_bytes(0x08, {2, 3, 1, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
  std::vector<int> dims;
  const auto data = read_idx_file(path("x.gz"), &dims);
  EXPECT_EQ(dims, (std::vector<int>{2, 3, 1, 2}));
  EXPECT_EQ(data, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}

TEST_F(IdxTest, WriterProducesTheStandardHeader) {
  write_idx_file(path("w"), {kCount, kHeight, kWidth}, sample_pixels());
  EXPECT_EQ(test::read_bytes(path("w")),
            idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  const auto bytes = test::read_bytes(path("w"));
  EXPECT_EQ(bytes[2], 0x08);
  EXPECT_EQ(bytes[3], 3);
  EXPECT_THROW(write_idx_file(path("w2"), {2, 2}, {1, 2, 3}), Error);
  EXPECT_THROW(write_idx_file(path("w3"), {0}, {}), Error);
}

TEST_F(IdxTest, BadMagicIsRefused) {
  auto bytes = idx_bytes(0x08, {kCount}, kLabels);
  bytes[0] = 0x12;
  test::write_bytes(path("bad"), bytes);
  test::expect_error([&] { read_idx_file(path("bad"), nullptr); }, {path("bad"), "magic"});
  // Float elements (type 0x0d) are not unsigned bytes.
  test::write_bytes(path("float"), idx_bytes(0x0d, {kCount}, kLabels));
  test::expect_error([&] { read_idx_file(path("float"), nullptr); }, {path("float"), "0x0d"});
  // A labels file where the images should be, and the reverse.
  test::write_bytes(path("img"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("lab"), idx_bytes(0x08, {kCount}, kLabels));
  test::expect_error([&] { load_idx_dataset(path("lab"), path("img")); },
                     {path("lab"), "0x00000803", "1 dimensions"});
  test::expect_error([&] { load_idx_dataset(path("img"), path("img")); },
                     {path("img"), "0x00000801", "3 dimensions"});
  // Zero dimensions and zero-sized dimensions.
  test::write_bytes(path("nodims"), {0, 0, 0x08, 0});
  test::expect_error([&] { read_idx_file(path("nodims"), nullptr); },
                     {path("nodims"), "0 dimensions"});
  test::write_bytes(path("zerodim"), idx_bytes(0x08, {4, 0, 2}, {}));
  test::expect_error([&] { read_idx_file(path("zerodim"), nullptr); }, {path("zerodim"), "is 0"});
}

TEST_F(IdxTest, TruncatedDataIsRefused) {
  auto bytes = idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels());
  bytes.resize(bytes.size() - 7);
  test::write_bytes(path("img"), bytes);
  test::write_bytes(path("lab"), idx_bytes(0x08, {kCount}, kLabels));
  test::expect_error([&] { load_idx_dataset(path("img"), path("lab")); },
                     {path("img"), "expected 60 bytes of pixels", "found 53"});
  // Cut inside the header's dimensions.
  test::write_bytes(path("hdr"), {0, 0, 0x08, 3, 0, 0, 0, 5, 0});
  test::expect_error([&] { read_idx_file(path("hdr"), nullptr); }, {path("hdr"), "truncated"});
  test::write_bytes(path("tiny"), {0, 0});
  test::expect_error([&] { read_idx_file(path("tiny"), nullptr); }, {path("tiny"), "too short"});
  test::write_bytes(path("empty"), {});
  test::expect_error([&] { read_idx_file(path("empty"), nullptr); }, {path("empty"), "empty"});
}

TEST_F(IdxTest, TruncatedGzipIsRefused) {
  std::vector<std::uint8_t> pixels(64 * 64 * 8);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * i);
  write_gzip(path("full.gz"), idx_bytes(0x08, {8, 64, 64}, pixels));
  auto compressed = test::read_bytes(path("full.gz"));
  compressed.resize(compressed.size() / 2);
  test::write_bytes(path("half.gz"), compressed);
  test::expect_error([&] { read_idx_file(path("half.gz"), nullptr); },
                     {path("half.gz"), "truncated gzip data"});
  // Corrupted deflate data in the middle of the stream.
  auto corrupt = test::read_bytes(path("full.gz"));
  for (std::size_t i = 20; i < 60 && i < corrupt.size(); ++i) corrupt[i] ^= 0x5a;
  test::write_bytes(path("corrupt.gz"), corrupt);
  test::expect_error([&] { read_idx_file(path("corrupt.gz"), nullptr); },
                     {path("corrupt.gz"), "corrupt gzip data"});
}

TEST_F(IdxTest, TrailingBytesAreRefused) {
  auto bytes = idx_bytes(0x08, {kCount}, kLabels);
  bytes.push_back(42);
  bytes.push_back(43);
  test::write_bytes(path("lab"), bytes);
  test::expect_error([&] { read_idx_file(path("lab"), nullptr); },
                     {path("lab"), "2 trailing bytes"});
  // Gzipped, only one byte past the header's promise is inflated to see that there is more.
  write_gzip(path("lab.gz"), bytes);
  test::expect_error([&] { read_idx_file(path("lab.gz"), nullptr); },
                     {path("lab.gz"), "trailing bytes after the 5 bytes of data"});
}

// A gzip stream that inflates to far more than its header promises (a "bomb") is refused after
// the promise plus one byte, as is a header promising more than the stream holds.
TEST_F(IdxTest, GzipBombAndOverpromiseAreRefused) {
  std::vector<std::uint8_t> bomb = idx_bytes(0x08, {4}, {1, 2, 3, 4});
  bomb.resize(bomb.size() + (std::size_t{64} << 20), 0);  // 64 MiB of zeros: ~64 KiB gzipped
  const auto compressed = test::gzip_bytes(bomb);
  ASSERT_LT(compressed.size(), bomb.size() / 100);
  test::expect_error([&] { parse_idx(compressed.data(), compressed.size(), "bomb.gz", nullptr); },
                     {"bomb.gz", "trailing bytes after the 4 bytes of data"});
  // 2^31 - 1 images of 1x2 promised (4 GiB less 2 bytes), 5 images' worth in the stream.
  const auto short_stream = test::gzip_bytes(idx_bytes(0x08, {2147483647u, 1, 2}, sample_pixels()));
  test::expect_error(
      [&] { parse_idx(short_stream.data(), short_stream.size(), "short.gz", nullptr); },
      {"short.gz", "expected 4294967294 bytes of data", "found 60"});
}

TEST_F(IdxTest, GzipMembersAndWhatFollowsThem) {
  // Two members, as `cat a.gz b.gz` makes: one file.
  const auto whole = idx_bytes(0x08, {kCount}, kLabels);
  auto two = test::gzip_bytes(std::vector<std::uint8_t>(whole.begin(), whole.begin() + 6));
  const auto rest = test::gzip_bytes(std::vector<std::uint8_t>(whole.begin() + 6, whole.end()));
  two.insert(two.end(), rest.begin(), rest.end());
  std::vector<int> dims;
  EXPECT_EQ(parse_idx(two.data(), two.size(), "two.gz", &dims), kLabels);
  EXPECT_EQ(dims, std::vector<int>{kCount});
  // Bytes after the stream that are not another member.
  auto garbage = test::gzip_bytes(whole);
  garbage.insert(garbage.end(), {'j', 'u', 'n', 'k'});
  test::expect_error([&] { parse_idx(garbage.data(), garbage.size(), "junk.gz", nullptr); },
                     {"junk.gz", "4 bytes after the end of the gzip stream", "trailing garbage"});
  // A damaged checksum in the gzip trailer (CRC-32 of the data, 8 bytes from the end).
  auto crc = test::gzip_bytes(whole);
  crc[crc.size() - 8] ^= 0xff;
  test::expect_error([&] { parse_idx(crc.data(), crc.size(), "crc.gz", nullptr); },
                     {"crc.gz", "corrupt gzip data", "incorrect data check"});
  // The trailer cut off: all the data is there, the stream's end is not.
  auto cut = test::gzip_bytes(whole);
  cut.resize(cut.size() - 4);
  test::expect_error([&] { parse_idx(cut.data(), cut.size(), "cut.gz", nullptr); },
                     {"cut.gz", "truncated gzip data"});
  // The trailer's length (ISIZE, the last 4 bytes) off by one, smaller and larger: the one-call
  // inflate sized from it fails, the streaming inflate names the problem.
  for (const int delta : {-1, 1}) {
    auto length = test::gzip_bytes(whole);
    length[length.size() - 4] = std::uint8_t(length[length.size() - 4] + delta);
    test::expect_error([&] { parse_idx(length.data(), length.size(), "len.gz", nullptr); },
                       {"len.gz", "corrupt gzip data", "incorrect length check"});
  }
  // gzip inside gzip is not an IDX file, whichever inflate runs first.
  const auto nested = test::gzip_bytes(test::gzip_bytes(whole));
  test::expect_error([&] { parse_idx(nested.data(), nested.size(), "nested.gz", nullptr); },
                     {"nested.gz", "not an IDX file"});
}

TEST_F(IdxTest, AbsurdDimensionsAreRefusedBeforeReading) {
  // 2^31 images: past int, whatever the file holds.
  const auto many = idx_bytes(0x08, {2147483648u, 28, 28}, {});
  test::expect_error([&] { parse_idx(many.data(), many.size(), "many", nullptr); },
                     {"many", "dimension 0 is 2147483648"});
  // (2^31 - 1)^3 overflows 64 bits; refused as soon as the product passes the limit.
  const auto huge = idx_bytes(0x08, {2147483647u, 2147483647u, 2147483647u}, {1, 2, 3});
  test::expect_error([&] { parse_idx(huge.data(), huge.size(), "huge", nullptr); },
                     {"huge", "more than 4294967296 bytes"});
  // Within the limit but more than the file holds: refused from the header alone.
  const auto big = idx_bytes(0x08, {65536, 65535}, {1, 2, 3});
  test::expect_error([&] { parse_idx(big.data(), big.size(), "big", nullptr); },
                     {"big", "expected 4294901760 bytes of data", "found 3"});
}

TEST_F(IdxTest, NotAFileIsNamed) {
  test::expect_error([&] { read_idx_file(dir().string(), nullptr); },
                     {dir().string(), "is a directory"});
  test::expect_error([&] { parse_idx(nullptr, 0, "nothing", nullptr); },
                     {"nothing", "the file is empty"});
}

TEST_F(IdxTest, LabelOutOfRangeIsRefused) {
  test::write_bytes(path("img"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("lab"), idx_bytes(0x08, {kCount}, {3, 0, 10, 1, 7}));
  test::expect_error([&] { load_idx_dataset(path("img"), path("lab")); },
                     {path("lab"), "label 10 of sample 2", "10 classes"});
  // The same labels are fine with eleven classes, and not with three.
  EXPECT_EQ(load_idx_dataset(path("img"), path("lab"), 11).labels[2], 10);
  test::expect_error([&] { load_idx_dataset(path("img"), path("lab"), 3); },
                     {"label 3 of sample 0"});
  // load_mnist_split checks the labels against the classes it is given.
  fs::create_directory(path("split"));
  fs::rename(path("img"), path("split/t10k-images-idx3-ubyte"));
  fs::rename(path("lab"), path("split/t10k-labels-idx1-ubyte"));
  EXPECT_EQ(load_mnist_split(path("split"), false, 11).count, kCount);
  test::expect_error([&] { load_mnist_split(path("split"), false, 5); },
                     {path("split/t10k-labels-idx1-ubyte"), "label 10 of sample 2", "5 classes"});
  EXPECT_THROW(load_idx_dataset(path("img"), path("lab"), 0), Error);
}

TEST_F(IdxTest, CountMismatchIsRefused) {
  test::write_bytes(path("img"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("lab"), idx_bytes(0x08, {4}, {3, 0, 9, 1}));
  test::expect_error([&] { load_idx_dataset(path("img"), path("lab")); },
                     {path("img"), "5 images", path("lab"), "4 labels"});
}

TEST_F(IdxTest, MissingFilesAreNamed) {
  test::expect_error([&] { read_idx_file(path("nope"), nullptr); }, {path("nope"), "cannot open"});
  test::expect_error(
      [&] { load_mnist_split(dir().string(), true); },
      {dir().string(), "train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]"});
  test::expect_error([&] { load_mnist_split(path("no_such_dir"), false); },
                     {"no_such_dir", "does not exist", "t10k-images-idx3-ubyte"});
}

TEST_F(IdxTest, SplitFindsPlainAndGzippedFiles) {
  write_gzip(path("t10k-images-idx3-ubyte.gz"),
             idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("t10k-labels-idx1-ubyte"), idx_bytes(0x08, {kCount}, kLabels));
  const Dataset test = load_mnist_split(dir().string(), false);
  EXPECT_EQ(test.count, kCount);
  EXPECT_EQ(test.labels, kLabels);
  EXPECT_THROW(load_mnist_split(dir().string(), true), Error);
  // Only the training labels are missing: the message says which one.
  test::write_bytes(path("train-images-idx3-ubyte"),
                    idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::expect_error([&] { load_mnist_split(dir().string(), true); },
                     {"missing: train-labels-idx1-ubyte ("});
}

TEST_F(IdxTest, TakeKeepsTheFirstSamples) {
  test::write_bytes(path("img"), idx_bytes(0x08, {kCount, kHeight, kWidth}, sample_pixels()));
  test::write_bytes(path("lab"), idx_bytes(0x08, {kCount}, kLabels));
  const Dataset data = load_idx_dataset(path("img"), path("lab"));
  const Dataset two = data.take(2);
  EXPECT_EQ(two.count, 2);
  EXPECT_EQ(two.labels, (std::vector<std::uint8_t>{3, 0}));
  const auto pixels = sample_pixels();
  EXPECT_EQ(two.images,
            std::vector<std::uint8_t>(pixels.begin(), pixels.begin() + 2 * kHeight * kWidth));
  EXPECT_EQ(data.take(100).count, kCount);
  EXPECT_EQ(data.take(0).images.size(), 0u);
  EXPECT_THROW(data.take(-1), Error);
}

TEST(FashionMnist, TestSplitMatchesKnownFacts) {
  const std::string dir = test::fashion_mnist_dir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing (dataset-fashion-mnist)";
  const Dataset test = load_mnist_split(dir, false);
  ASSERT_EQ(test.count, 10000);
  EXPECT_EQ(test.height, 28);
  EXPECT_EQ(test.width, 28);
  ASSERT_EQ(test.images.size(), 10000u * 28 * 28);
  ASSERT_EQ(test.labels.size(), 10000u);
  std::array<int, 10> histogram{};
  for (std::uint8_t label : test.labels) {
    ASSERT_LT(label, 10);
    ++histogram[label];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(histogram[c], 1000) << "class " << c;
  // Values from Python's gzip module: the first ten labels (ankle boot, pullover, trouser, ...),
  // the first image's pixel sum and the whole split's pixel sum.
  EXPECT_EQ(std::vector<std::uint8_t>(test.labels.begin(), test.labels.begin() + 10),
            (std::vector<std::uint8_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  std::uint64_t first_sum = 0, total_sum = 0;
  for (int i = 0; i < 784; ++i) first_sum += test.images[i];
  for (std::uint8_t p : test.images) total_sum += p;
  EXPECT_EQ(first_sum, 33456u);
  EXPECT_EQ(total_sum, 573469082u);
}

TEST(FashionMnist, TrainSplitHasSixThousandPerClass) {
  const std::string dir = test::fashion_mnist_dir();
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing (dataset-fashion-mnist)";
  const Dataset train = load_mnist_split(dir, true);
  ASSERT_EQ(train.count, 60000);
  std::array<int, 10> histogram{};
  for (std::uint8_t label : train.labels) ++histogram[label];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(histogram[c], 6000) << "class " << c;
}

TEST(DataDir, DefaultIsTheDebianPackagePathUnlessOverridden) {
  // The variable is restored afterwards: the GPU machine's device check sets it for every test.
  const char* set = std::getenv("CNNRT_DATA_DIR");
  const std::string saved = set != nullptr ? set : "";
  unsetenv("CNNRT_DATA_DIR");
  EXPECT_EQ(default_data_dir(), "/usr/share/datasets/fashion-mnist");
  setenv("CNNRT_DATA_DIR", "/elsewhere/fmnist", 1);
  EXPECT_EQ(default_data_dir(), "/elsewhere/fmnist");
  if (set != nullptr)
    setenv("CNNRT_DATA_DIR", saved.c_str(), 1);
  else
    unsetenv("CNNRT_DATA_DIR");
}

}  // namespace
}  // namespace cnnrt
