// CUDA batch gather against the CPU reference (kernels/cpu/data.cpp): uint8 images and labels on
// the device, a shuffled index array with repeats, normalised float batches and int32 labels.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
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
                     std::to_string(norm.mean[0]));
        std::vector<std::uint8_t> images(std::size_t(samples) * pixels), labels(samples);
        for (auto& b : images) b = std::uint8_t(rng() & 0xFF);
        for (auto& l : labels) l = std::uint8_t(rng() % 10);
        std::vector<std::int32_t> indices(static_cast<std::size_t>(n));
        for (auto& i : indices) i = std::int32_t(rng() % samples);  // repeats allowed

        std::vector<float> batch_expected(std::size_t(n) * pixels);
        std::vector<std::int32_t> labels_expected(static_cast<std::size_t>(n));
        cpu::gather_batch(norm, {}, n, pixels, images.data(), labels.data(), indices.data(),
                          batch_expected.data(), labels_expected.data());

        const auto images_dev = to_device(images);
        const auto labels_dev = to_device(labels);
        const auto indices_dev = to_device(indices);
        auto batch_dev = poisoned<float>(batch_expected.size());
        auto batch_labels_dev = poisoned<std::int32_t>(labels_expected.size());
        cuda::gather_batch(norm, {}, n, pixels, images_dev.data(), labels_dev.data(),
                           indices_dev.data(), batch_dev.data(), batch_labels_dev.data(), nullptr);
        ASSERT_TRUE(any_nonzero(batch_expected));
        EXPECT_TRUE(all_close(batch_dev.download(), batch_expected, kNormalised, "batch"));
        EXPECT_TRUE(all_close(batch_labels_dev.download(), labels_expected, kExact, "labels"));
      }
}

// Augmentation: the CPU and CUDA gathers draw the same crops and flips, bit for bit, both with
// the stream position given (gather_batch) and read from the device counter (at step).
TEST(CudaData, AugmentedGatherMatchesCpuBitForBit) {
  CNNRT_REQUIRE_GPU();
  const int samples = 60, n = 16;
  std::mt19937 rng(99);
  for (const auto& [c, h, w] : {std::tuple<int, int, int>{1, 28, 28}, {3, 32, 32}, {3, 7, 5}})
    for (const int pad : {0, 1, 4})
      for (const bool flip : {false, true}) {
        if (pad >= h || pad >= w) continue;
        SCOPED_TRACE("shape " + std::to_string(c) + "x" + std::to_string(h) + "x" +
                     std::to_string(w) + " pad " + std::to_string(pad) + " flip " +
                     std::to_string(flip));
        const int pixels = c * h * w;
        // Three channels: each its own mean and std (the channel is p / plane on both sides).
        NormalizeParams norm(0.2860f, 0.3530f);
        if (c == 3) {
          norm.channels = 3, norm.plane = h * w;
          const float means[] = {0.4914f, 0.4822f, 0.4465f}, stds[] = {0.247f, 0.243f, 0.261f};
          for (int k = 0; k < 3; ++k) norm.mean[k] = means[k], norm.std[k] = stds[k];
        }
        std::vector<std::uint8_t> images(std::size_t(samples) * pixels), labels(samples);
        for (auto& b : images) b = std::uint8_t(rng() & 0xFF);
        for (auto& l : labels) l = std::uint8_t(rng() % 10);
        std::vector<std::int32_t> order(samples);
        for (auto& i : order) i = std::int32_t(rng() % samples);
        AugmentParams aug;
        aug.pad = pad, aug.flip = flip, aug.mirror = pad == 0 && !flip;
        aug.channels = c, aug.height = h, aug.width = w, aug.seed = 77;
        const std::int32_t counter[2] = {2, 5};
        std::vector<float> expected(std::size_t(n) * pixels);
        std::vector<std::int32_t> expected_labels(n);
        cpu::gather_batch_at_step(norm, aug, n, pixels, images.data(), labels.data(), order.data(),
                                  counter, expected.data(), expected_labels.data());
        ASSERT_TRUE(any_nonzero(expected));

        const auto images_dev = to_device(images);
        const auto labels_dev = to_device(labels);
        const auto order_dev = to_device(order);
        const auto counter_dev = to_device(std::vector<std::int32_t>{2, 5});
        auto batch_dev = poisoned<float>(expected.size());
        auto batch_labels_dev = poisoned<std::int32_t>(expected_labels.size());
        cuda::gather_batch_at_step(norm, aug, n, pixels, images_dev.data(), labels_dev.data(),
                                   order_dev.data(), counter_dev.data(), batch_dev.data(),
                                   batch_labels_dev.data(), nullptr);
        EXPECT_TRUE(all_close(batch_dev.download(), expected, kExact, "batch at step"));
        EXPECT_TRUE(all_close(batch_labels_dev.download(), expected_labels, kExact, "labels"));

        AugmentParams direct = aug;
        direct.step = 2, direct.epoch = 5;
        auto direct_dev = poisoned<float>(expected.size());
        cuda::gather_batch(norm, direct, n, pixels, images_dev.data(), labels_dev.data(),
                           order_dev.data() + 2 * n, direct_dev.data(), batch_labels_dev.data(),
                           nullptr);
        EXPECT_TRUE(all_close(direct_dev.download(), expected, kExact, "batch"));
      }
}

// std = 0 would divide by zero: rejected on the host before any device work (no GPU needed).
TEST(CudaData, RejectsZeroStd) {
  EXPECT_THROW(cuda::gather_batch({0.5f, 0.0f}, {}, 0, 0, nullptr, nullptr, nullptr, nullptr,
                                  nullptr, nullptr),
               Error);
}

}  // namespace
}  // namespace cnnrt
