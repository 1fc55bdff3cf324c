// CPU reference batch gather: index selection, (byte / 255 - mean) / std normalisation and int32
// labels, against hand values.
#include <cstdint>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/data.hpp"
#include "kernels/ops.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

constexpr test::Tolerance kFloatTol{1e-6, 1e-6};

// Three samples of four pixels.
const std::vector<std::uint8_t> kImages = {0, 255, 51, 102, 10, 20, 30, 40, 255, 0, 128, 1};
const std::vector<std::uint8_t> kLabels = {7, 3, 9};

TEST(CpuGatherBatch, NormalisesTheIndexedSamples) {
  const std::vector<std::int32_t> indices = {2, 0, 2};  // repeats are allowed
  std::vector<float> batch = nan_vector<float>(12);
  std::vector<std::int32_t> labels(3, -1);
  cpu::gather_batch<float>({0.5f, 0.25f}, 3, 4, kImages.data(), kLabels.data(), indices.data(),
                           batch.data(), labels.data());
  // (b / 255 - 0.5) / 0.25: 255 -> 2, 0 -> -2, 51 -> -1.2, 102 -> -0.4,
  // 128 -> (128/255 - 0.5) * 4 = 0.00784313725, 1 -> (1/255 - 0.5) * 4 = -1.98431372549
  const std::vector<double> sample2 = {2, -2, 0.00784313725, -1.98431372549};
  const std::vector<double> sample0 = {-2, 2, -1.2, -0.4};
  std::vector<double> expected = sample2;
  expected.insert(expected.end(), sample0.begin(), sample0.end());
  expected.insert(expected.end(), sample2.begin(), sample2.end());
  EXPECT_TRUE(all_close(batch, expected, kFloatTol, "batch"));
  EXPECT_EQ(labels, (std::vector<std::int32_t>{9, 7, 9}));
}

TEST(CpuGatherBatch, IdentityNormalisationGivesByteOver255) {
  const std::vector<std::int32_t> indices = {1};
  std::vector<double> batch = nan_vector<double>(4);
  std::vector<std::int32_t> labels(1, -1);
  cpu::gather_batch<double>({0.0f, 1.0f}, 1, 4, kImages.data(), kLabels.data(), indices.data(),
                            batch.data(), labels.data());
  EXPECT_TRUE(all_close(batch, std::vector<double>{10.0 / 255, 20.0 / 255, 30.0 / 255, 40.0 / 255},
                        test::Tolerance{1e-15, 1e-15}, "batch"));
  EXPECT_EQ(labels[0], 3);
}

TEST(CpuGatherBatch, RejectsZeroStdAndNegativeIndex) {
  std::vector<float> batch(4);
  std::vector<std::int32_t> labels(1);
  const std::int32_t good = 0, negative = -1;
  EXPECT_THROW(cpu::gather_batch<float>({0.5f, 0.0f}, 1, 4, kImages.data(), kLabels.data(), &good,
                                        batch.data(), labels.data()),
               Error);
  EXPECT_THROW(cpu::gather_batch<float>({0.5f, 0.25f}, 1, 4, kImages.data(), kLabels.data(),
                                        &negative, batch.data(), labels.data()),
               Error);
}

}  // namespace
}  // namespace cnnrt
