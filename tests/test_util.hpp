#pragma once
// Shared helpers for the test suites: named tolerances, seeded random data, NaN poisoning and the
// GPU guard. Comparisons are |a - b| <= atol + rtol * |b| with b the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cnnrt/device.hpp"

// Every GPU test starts with this: without a device it skips with the reason, never fails.
#define CNNRT_REQUIRE_GPU()                                        \
  do {                                                             \
    if (!::cnnrt::cuda_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace cnnrt::test {

// Paths baked in at build time can be overridden from the environment: the GPU machine runs the
// binaries from a copy of the tree at another path (tools/device_check.sh sets these).
inline std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}
inline std::string test_data_dir() { return env_or("CNNRT_TEST_DATA_DIR", CNNRT_TEST_DATA_DIR); }
inline std::string tool_path() { return env_or("CNNRT_TOOL_PATH", CNNRT_TOOL_PATH); }
// Fashion-MNIST: CNNRT_DATA_DIR, else Debian's package location.
inline std::string fashion_mnist_dir() {
  return env_or("CNNRT_DATA_DIR", "/usr/share/datasets/fashion-mnist");
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

// Compares element-wise; reports the first few mismatches (NaN always mismatches).
template <typename A, typename B>
::testing::AssertionResult all_close(const std::vector<A>& actual, const std::vector<B>& expected,
                                     Tolerance tol, const std::string& what = "") {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " vs "
                                         << expected.size();
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

}  // namespace cnnrt::test
