#pragma once
// Shared helpers for the test suites: named tolerances, seeded random data, NaN poisoning and the
// GPU guard. Comparisons are |a - b| <= atol + rtol * |b| with b the reference.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"

// Every GPU test starts with this: without a device it skips with the reason, never fails.
#define CNNRT_REQUIRE_GPU()                                           \
  do {                                                                \
    if (!::cnnrt::cuda_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace cnnrt::test {

// Paths baked in at build time can be overridden from the environment: the GPU machine runs the
// binaries from a copy of the tree at another path (tools/device_check.sh sets these).
inline std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}
inline std::string test_data_dir() {
  return env_or("CNNRT_TEST_DATA_DIR", CNNRT_TEST_DATA_DIR);
}
inline std::string tool_path() {
  return env_or("CNNRT_TOOL_PATH", CNNRT_TOOL_PATH);
}
// Fashion-MNIST: CNNRT_DATA_DIR, else Debian's package location.
inline std::string fashion_mnist_dir() {
  return env_or("CNNRT_DATA_DIR", "/usr/share/datasets/fashion-mnist");
}
// Whether the training split is there, gzipped or not.
inline bool have_fashion_mnist() {
  return std::filesystem::exists(fashion_mnist_dir() + "/train-images-idx3-ubyte.gz") ||
         std::filesystem::exists(fashion_mnist_dir() + "/train-images-idx3-ubyte");
}

struct Tolerance {
  double atol;
  double rtol;
};

// Seeded uniform values in [lo, hi), never all zero.
template <typename T>
std::vector<T> random_vector(std::size_t count, std::uint64_t seed, double lo = -1.0,
                             double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> values(count);
  for (auto& v : values) v = static_cast<T>(dist(rng));
  return values;
}

template <typename T>
std::vector<T> nan_vector(std::size_t count) {
  return std::vector<T>(count, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
bool any_nonzero(const std::vector<T>& values) {
  for (const T& v : values)
    if (v != T(0)) return true;
  return false;
}

template <typename T>
bool all_finite(const std::vector<T>& values) {
  for (const T& v : values)
    if (!std::isfinite(v)) return false;
  return true;
}

template <typename T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Compares element-wise; reports the first few mismatches (NaN always mismatches).
template <typename A, typename B>
::testing::AssertionResult all_close(const std::vector<A>& actual, const std::vector<B>& expected,
                                     Tolerance tol, const std::string& what = "") {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << what << ": size " << actual.size() << " vs " << expected.size();
  std::size_t bad = 0;
  auto failure = ::testing::AssertionFailure();
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]);
    const double b = static_cast<double>(expected[i]);
    if (!(std::fabs(a - b) <= tol.atol + tol.rtol * std::fabs(b))) {
      if (bad < 5) failure << what << "[" << i << "]: got " << a << ", expected " << b << "\n";
      ++bad;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return failure << bad << " of " << actual.size() << " elements out of tolerance (atol "
                 << tol.atol << ", rtol " << tol.rtol << ")";
}

// Passes when `text` contains `part`; prints both otherwise.
inline ::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The whole number written right after the first `prefix` in `text`, or -1 when `prefix` is
// missing or no digits follow it. (Tests avoid <regex>: GCC 12 warns inside it at -O3.)
inline long long number_after(const std::string& text, const std::string& prefix) {
  const std::size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  std::size_t end = at + prefix.size();
  long long value = 0;
  bool digits = false;
  for (; end < text.size() && text[end] >= '0' && text[end] <= '9'; ++end, digits = true)
    value = value * 10 + (text[end] - '0');
  return digits ? value : -1;
}

// The message of the cnnrt::Error that `body` throws; fails the test when it throws nothing.
template <typename Body>
std::string error_message(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a cnnrt::Error";
  return "";
}

// Runs `load` expecting a cnnrt::Error whose message contains every one of `parts`.
template <typename Load>
void expect_error(Load load, const std::vector<std::string>& parts) {
  try {
    load();
    FAIL() << "expected cnnrt::Error containing '" << parts.front() << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "message: " << message;
  }
}

// A whole file's bytes ("" when it cannot be read: the comparison that follows fails).
inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The lines of a metrics CSV (header included) cut after the fifth column: epoch, train_loss,
// train_acc, test_loss, test_acc; the timing columns (seconds, images_per_second, wall_s) differ
// from run to run.
inline std::vector<std::string> metrics_rows_without_timing(const std::string& csv_path) {
  std::vector<std::string> rows;
  std::ifstream csv(csv_path);
  for (std::string line; std::getline(csv, line);) {
    std::size_t cut = 0;
    for (int comma = 0; comma < 5 && cut != std::string::npos; ++comma)
      cut = line.find(',', comma == 0 ? 0 : cut + 1);
    rows.push_back(line.substr(0, cut));
  }
  return rows;
}

// A fresh directory under the system's temp directory, cnnrt_<tag>_<pid>, removed with everything
// in it.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("cnnrt_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A fixture whose every test gets its own ScratchDir, cnnrt_<tag>_<test name>_<pid>.
class ScratchDirTest : public ::testing::Test {
 protected:
  explicit ScratchDirTest(const std::string& tag)
      : scratch_(tag + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name()) {}
  const std::filesystem::path& dir() const { return scratch_.path(); }
  std::string path(const std::string& name) const { return scratch_.file(name); }

 private:
  ScratchDir scratch_;
};

}  // namespace cnnrt::test
