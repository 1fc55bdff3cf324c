// CUDA batch gather against the CPU reference (kernels/cpu/data.cpp): uint8 images and labels on
// the device, a shuffled index array with repeats, normalised float batches and int32 labels.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/data.hpp"
#include "kernels/cuda/data.cuh"
#include "kernels/ops.hpp"
#include "tests/cuda_test_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp and tests/cuda_test_util.hpp

// (byte / 255 - mean) / std: the same IEEE operations on both sides.
constexpr test::Tolerance kNormalised{1e-7, 1e-6};
constexpr test::Tolerance kExact{0.0, 0.0};

TEST(CudaData, GatherMatchesCpu) {
  CNNRT_REQUIRE_GPU();
  const int samples = 50;
  const NormalizeParams norms[] = {{0.0f, 1.0f}, {0.2860f, 0.3530f}};
  std::mt19937 rng(1234);
  for (const int pixels : {1, 3, 33, 784})
    for (const int n : {1, 7, 64})
      for (const NormalizeParams& norm : norms) {
        SCOPED_TRACE("pixels " + std::to_string(pixels) + " n " + std::to_string(n) + " mean " +
                     std::to_string(norm.mean));
        std::vector<std::uint8_t> images(std::size_t(samples) * pixels), labels(samples);
        for (auto& b : images) b = std::uint8_t(rng() & 0xFF);
        for (auto& l : labels) l = std::uint8_t(rng() % 10);
        std::vector<std::int32_t> indices(static_cast<std::size_t>(n));
        for (auto& i : indices) i = std::int32_t(rng() % samples);  // repeats allowed

        std::vector<float> batch_expected(std::size_t(n) * pixels);
        std::vector<std::int32_t> labels_expected(static_cast<std::size_t>(n));
        cpu::gather_batch(norm, n, pixels, images.data(), labels.data(), indices.data(),
                          batch_expected.data(), labels_expected.data());

        const auto images_dev = to_device(images);
        const auto labels_dev = to_device(labels);
        const auto indices_dev = to_device(indices);
        auto batch_dev = poisoned<float>(batch_expected.size());
        auto batch_labels_dev = poisoned<std::int32_t>(labels_expected.size());
        cuda::gather_batch(norm, n, pixels, images_dev.data(), labels_dev.data(),
                           indices_dev.data(), batch_dev.data(), batch_labels_dev.data(), nullptr);
        ASSERT_TRUE(any_nonzero(batch_expected));
        EXPECT_TRUE(all_close(batch_dev.download(), batch_expected, kNormalised, "batch"));
        EXPECT_TRUE(all_close(batch_labels_dev.download(), labels_expected, kExact, "labels"));
      }
}

// std = 0 would divide by zero: rejected on the host before any device work (no GPU needed).
TEST(CudaData, RejectsZeroStd) {
  EXPECT_THROW(
      cuda::gather_batch({0.5f, 0.0f}, 0, 0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr),
      Error);
}

}  // namespace
}  // namespace cnnrt
