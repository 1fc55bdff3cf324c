// CPU reference batch gather: index selection, (byte / 255 - mean) / std normalisation and int32
// labels, against hand values.
#include <cstdint>
#include <set>
#include <tuple>
#include <vector>

#include "cnnrt/error.hpp"
#include "kernels/cpu/data.hpp"
#include "kernels/ops.hpp"
#include "kernels/philox.hpp"
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
  cpu::gather_batch<float>({0.5f, 0.25f}, {}, 3, 4, kImages.data(), kLabels.data(), indices.data(),
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
  cpu::gather_batch<double>({0.0f, 1.0f}, {}, 1, 4, kImages.data(), kLabels.data(), indices.data(),
                            batch.data(), labels.data());
  EXPECT_TRUE(all_close(batch, std::vector<double>{10.0 / 255, 20.0 / 255, 30.0 / 255, 40.0 / 255},
                        test::Tolerance{1e-15, 1e-15}, "batch"));
  EXPECT_EQ(labels[0], 3);
}

// Two channels of two values each: channel 0 is values 0-1, channel 1 values 2-3 of a sample.
TEST(CpuGatherBatch, NormalisesEachChannelWithItsOwnMeanAndStd) {
  NormalizeParams norm;
  norm.channels = 2, norm.plane = 2;
  norm.mean[0] = 0.5f, norm.std[0] = 0.25f;
  norm.mean[1] = 0.0f, norm.std[1] = 2.0f;
  const std::vector<std::int32_t> indices = {0, 1};
  std::vector<double> batch = nan_vector<double>(8);
  std::vector<std::int32_t> labels(2, -1);
  cpu::gather_batch<double>(norm, {}, 2, 4, kImages.data(), kLabels.data(), indices.data(),
                            batch.data(), labels.data());
  // sample 0 {0, 255 | 51, 102}: (b/255 - 0.5) * 4, then b / 255 / 2
  // sample 1 {10, 20 | 30, 40}
  const std::vector<double> expected = {
      -2, 2, 0.1, 0.2, (10.0 / 255 - 0.5) * 4, (20.0 / 255 - 0.5) * 4, 30.0 / 510, 40.0 / 510};
  EXPECT_TRUE(all_close(batch, expected, kFloatTol, "batch"));
}

TEST(CpuGatherBatch, RejectsNormalisationThatDoesNotFitTheSample) {
  std::vector<float> batch(4);
  std::vector<std::int32_t> labels(1);
  const std::int32_t first = 0;
  NormalizeParams three;
  three.channels = 3, three.plane = 2;  // 6 values, the sample has 4
  EXPECT_THROW(cpu::gather_batch<float>(three, {}, 1, 4, kImages.data(), kLabels.data(), &first,
                                        batch.data(), labels.data()),
               Error);
  NormalizeParams zero_in_second;
  zero_in_second.channels = 2, zero_in_second.plane = 2, zero_in_second.std[1] = 0.0f;
  EXPECT_THROW(cpu::gather_batch<float>(zero_in_second, {}, 1, 4, kImages.data(), kLabels.data(),
                                        &first, batch.data(), labels.data()),
               Error);
}

TEST(CpuGatherBatch, RejectsZeroStdAndNegativeIndex) {
  std::vector<float> batch(4);
  std::vector<std::int32_t> labels(1);
  const std::int32_t good = 0, negative = -1;
  EXPECT_THROW(cpu::gather_batch<float>({0.5f, 0.0f}, {}, 1, 4, kImages.data(), kLabels.data(),
                                        &good, batch.data(), labels.data()),
               Error);
  EXPECT_THROW(cpu::gather_batch<float>({0.5f, 0.25f}, {}, 1, 4, kImages.data(), kLabels.data(),
                                        &negative, batch.data(), labels.data()),
               Error);
}

// Augmentation: images of distinct non-zero bytes, so each output identifies the one shift and
// flip that made it. The candidate outputs are built here by plain loops over the definition
// (zero bytes outside the image, then the mirror), and the draw is checked against the Philox
// words computed here too.
constexpr int kC = 2, kH = 5, kW = 6, kPixels = kC * kH * kW;

std::vector<std::uint8_t> distinct_images(int samples) {
  std::vector<std::uint8_t> images(std::size_t(samples) * kPixels);
  for (std::size_t i = 0; i < images.size(); ++i) images[i] = std::uint8_t(1 + (i * 7) % 251);
  return images;
}

// The sample shifted by (dx, dy) with zeros let in, then mirrored when flip: bytes.
std::vector<std::uint8_t> shifted(const std::uint8_t* src, int dx, int dy, bool flip) {
  std::vector<std::uint8_t> out(kPixels);
  for (int c = 0; c < kC; ++c)
    for (int y = 0; y < kH; ++y)
      for (int x = 0; x < kW; ++x) {
        const int xs = flip ? kW - 1 - x : x;
        const int sy = y + dy, sx = xs + dx;
        out[std::size_t((c * kH + y) * kW + x)] =
            sy < 0 || sy >= kH || sx < 0 || sx >= kW ? 0 : src[(c * kH + sy) * kW + sx];
      }
  return out;
}

AugmentParams augment(int pad, bool flip) {
  AugmentParams a;
  a.pad = pad, a.flip = flip, a.channels = kC, a.height = kH, a.width = kW;
  a.seed = 0x1234567890abcdefull;
  return a;
}

TEST(CpuGatherAugment, MirrorFlipsEveryRow) {
  const std::vector<std::uint8_t> images = distinct_images(2);
  const std::vector<std::uint8_t> labels = {4, 5};
  AugmentParams a = augment(0, false);
  a.mirror = true;
  const std::vector<std::int32_t> indices = {1, 0};
  std::vector<double> batch = nan_vector<double>(2 * kPixels);
  std::vector<std::int32_t> batch_labels(2, -1);
  cpu::gather_batch<double>({0.0f, 1.0f}, a, 2, kPixels, images.data(), labels.data(),
                            indices.data(), batch.data(), batch_labels.data());
  for (int s = 0; s < 2; ++s)
    for (int c = 0; c < kC; ++c)
      for (int y = 0; y < kH; ++y)
        for (int x = 0; x < kW; ++x) {
          const std::uint8_t byte = images[std::size_t(indices[s]) * kPixels +
                                           std::size_t((c * kH + y) * kW + kW - 1 - x)];
          EXPECT_EQ(batch[std::size_t(s) * kPixels + std::size_t((c * kH + y) * kW + x)],
                    double(byte) / 255.0);
        }
  EXPECT_EQ(batch_labels, (std::vector<std::int32_t>{5, 4}));
}

TEST(CpuGatherAugment, CropAndFlipAreTheDrawnShiftOfThePaddedImage) {
  const int samples = 40, pad = 2;
  const std::vector<std::uint8_t> images = distinct_images(samples);
  const std::vector<std::uint8_t> labels(samples, 1);
  std::vector<std::int32_t> indices(samples);
  for (int s = 0; s < samples; ++s) indices[std::size_t(s)] = (s * 13) % samples;
  AugmentParams a = augment(pad, true);
  a.step = 7, a.epoch = 3;
  std::vector<float> batch = nan_vector<float>(std::size_t(samples) * kPixels);
  std::vector<std::int32_t> batch_labels(samples, -1);
  cpu::gather_batch<float>({0.0f, 1.0f}, a, samples, kPixels, images.data(), labels.data(),
                           indices.data(), batch.data(), batch_labels.data());
  std::set<std::tuple<int, int, bool>> seen;
  for (int s = 0; s < samples; ++s) {
    const std::uint8_t* src = images.data() + std::size_t(indices[std::size_t(s)]) * kPixels;
    int matches = 0;
    std::tuple<int, int, bool> found;
    for (int dy = -pad; dy <= pad; ++dy)
      for (int dx = -pad; dx <= pad; ++dx)
        for (const bool flip : {false, true}) {
          const std::vector<std::uint8_t> expected = shifted(src, dx, dy, flip);
          bool same = true;
          for (int p = 0; p < kPixels && same; ++p)
            same = batch[std::size_t(s) * kPixels + std::size_t(p)] ==
                   float(expected[std::size_t(p)]) / 255.0f;
          if (same) ++matches, found = {dx, dy, flip};
        }
    ASSERT_EQ(matches, 1) << "sample " << s;
    // The draw: philox({sample, step, epoch, kAugmentStream}, seed) words 0, 1, 2.
    const Philox4 bits =
        philox4x32_10({{std::uint32_t(indices[std::size_t(s)]), 7u, 3u, kAugmentStream}},
                      0x90abcdefu, 0x12345678u);
    EXPECT_EQ(found, std::make_tuple(int(bits.v[0] % 5) - 2, int(bits.v[1] % 5) - 2,
                                     (bits.v[2] & 1u) != 0))
        << "sample " << s;
    seen.insert(found);
  }
  EXPECT_GT(seen.size(), 20u);  // 40 draws over 50 outcomes: the draws differ
}

TEST(CpuGatherAugment, AtStepDrawsAtTheCounterStepAndEpoch) {
  const int samples = 12, n = 4;
  const std::vector<std::uint8_t> images = distinct_images(samples);
  const std::vector<std::uint8_t> labels(samples, 2);
  std::vector<std::int32_t> order(samples);
  for (int s = 0; s < samples; ++s) order[std::size_t(s)] = samples - 1 - s;
  const AugmentParams a = augment(3, true);
  auto at_step = [&](std::int32_t step, std::int32_t epoch) {
    const std::int32_t counter[2] = {step, epoch};
    std::vector<float> batch = nan_vector<float>(std::size_t(n) * kPixels);
    std::vector<std::int32_t> batch_labels(n, -1);
    cpu::gather_batch_at_step<float>({0.0f, 1.0f}, a, n, kPixels, images.data(), labels.data(),
                                     order.data(), counter, batch.data(), batch_labels.data());
    return batch;
  };
  AugmentParams direct = a;
  direct.step = 2, direct.epoch = 9;
  std::vector<float> expected = nan_vector<float>(std::size_t(n) * kPixels);
  std::vector<std::int32_t> expected_labels(n, -1);
  cpu::gather_batch<float>({0.0f, 1.0f}, direct, n, kPixels, images.data(), labels.data(),
                           order.data() + 2 * n, expected.data(), expected_labels.data());
  EXPECT_EQ(at_step(2, 9), expected);
  EXPECT_NE(at_step(2, 10), expected);  // another epoch draws other crops
}

TEST(CpuGatherAugment, RejectsAShapeThatIsNotTheSamplesAndAPadPastTheImage) {
  const std::vector<std::uint8_t> images = distinct_images(1);
  const std::vector<std::uint8_t> labels = {0};
  const std::int32_t index = 0;
  std::vector<float> batch(kPixels);
  std::int32_t label = 0;
  AugmentParams wrong_shape = augment(1, false);
  wrong_shape.height = kH + 1;
  EXPECT_THROW(cpu::gather_batch<float>({0.0f, 1.0f}, wrong_shape, 1, kPixels, images.data(),
                                        labels.data(), &index, batch.data(), &label),
               Error);
  EXPECT_THROW(cpu::gather_batch<float>({0.0f, 1.0f}, augment(kH, false), 1, kPixels, images.data(),
                                        labels.data(), &index, batch.data(), &label),
               Error);
}

}  // namespace
}  // namespace cnnrt
