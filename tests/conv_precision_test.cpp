// CompileOptions::conv_precision: parsing, the CPU's refusal of tf32, and (with a GPU) a LeNet-5
// model whose convolutions run the TF32 implicit-GEMM kernel: its logits stay near the FP32
// model's from the same weights but are not the same bits (the TF32 path really ran).
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

TEST(ConvPrecision, ParsesItsNamesOnly) {
  EXPECT_EQ(parse_conv_precision("fp32"), ConvPrecision::fp32);
  EXPECT_EQ(parse_conv_precision("tf32"), ConvPrecision::tf32);
  EXPECT_STREQ(to_string(ConvPrecision::tf32), "tf32");
  EXPECT_STREQ(to_string(ConvPrecision::fp32), "fp32");
  EXPECT_EQ(CompileOptions{}.conv_precision, ConvPrecision::fp32) << "fp32 unless asked";
  try {
    parse_conv_precision("bf16");
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_TRUE(test::contains(e.what(), "'bf16' (fp32, tf32)"));
  }
}

TEST(ConvPrecision, CpuRefusesTf32) {
  CompileOptions o = test::cpu_options(2);
  o.conv_precision = ConvPrecision::tf32;
  try {
    const Model model(load_network("lenet5"), o);
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_TRUE(test::contains(e.what(), "CUDA device only"));
  }
}

// Logits of the same initial weights: TF32 rounds each operand by up to 2^-11 relative, so the
// logits move by far less than this, and by more than float summation order alone would.
constexpr test::Tolerance kTf32Logits{2e-2, 2e-2};

TEST(ConvPrecision, CudaLenetLogitsNearFp32) {
  CNNRT_REQUIRE_GPU();
  constexpr int kBatch = 16;
  const Network network = load_network("lenet5");
  CompileOptions o;
  o.device = Device::cuda;
  o.batch_size = kBatch;
  o.seed = 3;
  const std::vector<float> images = test::random_vector<float>(std::size_t(kBatch) * 28 * 28, 9);
  Model fp32(network, o);
  o.conv_precision = ConvPrecision::tf32;
  Model tf32(network, o);
  const std::vector<float> expected = fp32.logits(images.data(), kBatch);
  const std::vector<float> got = tf32.logits(images.data(), kBatch);
  ASSERT_TRUE(test::any_nonzero(expected));
  EXPECT_TRUE(test::all_finite(got));
  EXPECT_TRUE(test::all_close(got, expected, kTf32Logits, "tf32 logits"));
  EXPECT_FALSE(test::bitwise_equal(got, expected)) << "the TF32 kernel did not run";
}

}  // namespace
}  // namespace cnnrt
