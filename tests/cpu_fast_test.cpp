// The fast CPU path (kernels/cpu/*_fast.cpp) held against the plain-loop twins, as the CUDA
// kernels are: every op forward and backward over odd shapes (stride, padding, non-square
// kernels, a batch of 1, channel counts that are not a multiple of the vector width), outputs and
// scratch NaN-poisoned first. The reference runs in double on the same inputs, so the comparison
// is against an independent computation, not the fast code's own output. Then whole models:
// --device cpu against --device reference, and the fast path's run-to-run determinism.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cnnrt/model.hpp"
#include "cnnrt/network.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/activation_fast.hpp"
#include "kernels/cpu/batch_norm.hpp"
#include "kernels/cpu/batch_norm_fast.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cpu/conv_fast.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cpu/dense_fast.hpp"
#include "kernels/cpu/pool.hpp"
#include "kernels/cpu/pool_fast.hpp"
#include "kernels/cpu/sgemm.hpp"
#include "kernels/ops.hpp"
#include "tests/fused_activation_util.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

using namespace test;  // the helpers of tests/test_util.hpp

// Float sums in another order than the double reference: rounding of a few ulps per term.
constexpr Tolerance kFastForward{1e-4, 1e-4};
// Weight gradients sum over the batch and every output position: more terms, more rounding.
constexpr Tolerance kFastWeightGradient{1e-3, 1e-4};
// Max pooling picks and copies values: exact. (Overlapping windows sum in float; kFastForward.)
constexpr Tolerance kExact{0, 0};
// The fast sigmoid's exp is within 2 ulp of expf: a few ulp of the result after the division.
constexpr Tolerance kFastSigmoid{1e-7, 5e-7};
// Whole models after one forward/backward: every layer's rounding compounds.
constexpr Tolerance kFastModel{2e-4, 2e-3};

std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

struct ConvCase {
  int n, c, h, w, k, kh, kw, sh, sw;
  Padding padding;
};

std::string describe(const ConvCase& cc) {
  return "n" + std::to_string(cc.n) + " c" + std::to_string(cc.c) + " " + std::to_string(cc.h) +
         "x" + std::to_string(cc.w) + " k" + std::to_string(cc.k) + " " + std::to_string(cc.kh) +
         "x" + std::to_string(cc.kw) + " /" + std::to_string(cc.sh) + "," + std::to_string(cc.sw) +
         " " + cc.padding.to_string();
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases{
      {4, 1, 28, 28, 6, 5, 5, 1, 1, Padding::same()},    // LeNet conv1
      {3, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid()},  // LeNet conv2
      {1, 3, 9, 11, 5, 3, 5, 1, 1, Padding::same()},     // batch of 1, non-square kernel
      {2, 5, 13, 10, 7, 3, 3, 2, 2, Padding::same()},    // stride 2, asymmetric same padding
      {2, 2, 8, 9, 3, 2, 3, 2, 1, Padding::explicit_pad(1, 2)},  // mixed strides, explicit padding
      {3, 9, 7, 7, 10, 1, 1, 1, 1, Padding::valid()},            // 1x1: the input read as it lies
      {2, 4, 7, 6, 3, 1, 1, 2, 2, Padding::valid()},             // 1x1 with a stride: unfolded
      {2, 3, 4, 5, 2, 5, 5, 1, 1, Padding::explicit_pad(2, 2)},  // kernel as large as the input
      {5, 11, 6, 6, 9, 3, 3, 3, 3, Padding::valid()},            // stride equal to the kernel
      {2, 3, 8, 8, 4, 3, 3, 2, 2, Padding::valid()},  // windows never read the last row, column
      // Several samples to a GEMM, the last group shorter (GroupsOfSamplesWithARemainder):
      {13, 6, 14, 14, 16, 5, 5, 1, 1, Padding::valid()},          // LeNet conv2, 11 + 2
      {40, 2, 8, 9, 3, 2, 3, 2, 1, Padding::explicit_pad(1, 2)},  // 19 + 19 + 2, padded, strided
  };
  return cases;
}

Conv2dGeometry geometry(const ConvCase& cc) {
  return make_conv2d_geometry("test", cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw, cc.sh, cc.sw,
                              cc.padding);
}

// The fast path's one matrix product (oneDNN) against a double triple loop: each transpose, rows
// stored wider than they are (lda, ldb, ldc), beta 0 on a NaN-poisoned c (not read), then beta 1.
TEST(CpuFastSgemm, MatchesALoopForEachTranspose) {
  const int m = 5, n = 7, k = 13, pad = 3;
  for (const cpu::Op op_a : {cpu::Op::plain, cpu::Op::transposed})
    for (const cpu::Op op_b : {cpu::Op::plain, cpu::Op::transposed}) {
      SCOPED_TRACE(std::to_string(int(op_a)) + std::to_string(int(op_b)));
      const bool ta = op_a == cpu::Op::transposed, tb = op_b == cpu::Op::transposed;
      const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      const std::vector<float> a = random_vector<float>(std::size_t(ta ? k : m) * lda, 41);
      const std::vector<float> b = random_vector<float>(std::size_t(tb ? n : k) * ldb, 42);
      const std::vector<float> c0 = random_vector<float>(std::size_t(m) * ldc, 43);
      std::vector<double> product(std::size_t(m) * n, 0.0);
      for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j)
          for (int r = 0; r < k; ++r)
            product[std::size_t(i) * n + j] +=
                double(ta ? a[std::size_t(r) * lda + i] : a[std::size_t(i) * lda + r]) *
                (tb ? b[std::size_t(j) * ldb + r] : b[std::size_t(r) * ldb + j]);
      ASSERT_TRUE(any_nonzero(product));
      for (const float beta : {0.0f, 1.0f}) {
        std::vector<float> c = beta == 0.0f ? nan_vector<float>(c0.size()) : c0;
        cpu::sgemm(op_a, op_b, m, n, k, 2.0f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        std::vector<float> got;
        std::vector<double> expected;
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            got.push_back(c[std::size_t(i) * ldc + j]);
            expected.push_back(2.0 * product[std::size_t(i) * n + j] +
                               beta * c0[std::size_t(i) * ldc + j]);
          }
        EXPECT_TRUE(all_close(got, expected, kFastForward, "c"));
        // The padding past each row of c is left alone.
        for (int i = 0; i < m; ++i)
          for (int j = n; j < ldc; ++j)
            EXPECT_EQ(std::isnan(c[std::size_t(i) * ldc + j]), beta == 0.0f);
      }
    }
  EXPECT_FALSE(cpu::sgemm_isa().empty());
}

TEST(CpuFastConv, ForwardMatchesReference) {
  std::uint64_t seed = 100;
  for (const ConvCase& cc : conv_cases()) {
    SCOPED_TRACE(describe(cc));
    const Conv2dGeometry g = geometry(cc);
    const std::vector<float> in = random_vector<float>(g.in_size(), ++seed);
    const std::vector<float> w = random_vector<float>(g.weight_size(), ++seed);
    const std::vector<float> b = random_vector<float>(std::size_t(g.k), ++seed);
    std::vector<double> expected(g.out_size());
    const std::vector<double> in_d = to_double(in), w_d = to_double(w), b_d = to_double(b);
    cpu::conv2d_forward<double>(g, in_d.data(), w_d.data(), b_d.data(), expected.data(), {});
    std::vector<float> col = nan_vector<float>(cpu::fast::conv2d_col_floats(g));
    std::vector<float> out = nan_vector<float>(g.out_size());
    cpu::fast::conv2d_forward(g, in.data(), w.data(), b.data(), out.data(), {}, col.data());
    EXPECT_TRUE(all_close(out, expected, kFastForward, "out"));
    // The fused activation: the same bits as the fast convolution followed by the activation.
    expect_fused_forward_same_bits<float>(
        g.out_size(),
        [&](float* z, FusedActivation<float> f) {
          std::fill(col.begin(), col.end(), std::nanf(""));
          cpu::fast::conv2d_forward(g, in.data(), w.data(), b.data(), z, f, col.data());
        },
        &cpu::fast::activation_forward);
  }
}

// The cases above that exercise grouping really do: several samples to a GEMM, and a last group
// shorter than the others.
TEST(CpuFastConv, GroupsOfSamplesWithARemainder) {
  int grouped = 0;
  for (const ConvCase& cc : conv_cases()) {
    const Conv2dGeometry g = geometry(cc);
    const int group = cpu::fast::conv2d_samples_per_gemm(g);
    EXPECT_GE(group, 1);
    EXPECT_LE(group, g.n);
    if (group > 1 && g.n % group != 0) ++grouped;
  }
  EXPECT_GE(grouped, 2);
  // A 1x1 kernel read in place multiplies each sample where it lies.
  EXPECT_EQ(
      cpu::fast::conv2d_samples_per_gemm(geometry({8, 9, 7, 7, 10, 1, 1, 1, 1, Padding::valid()})),
      1);
}

TEST(CpuFastConv, ForwardWithoutBias) {
  const ConvCase cc{2, 3, 6, 7, 4, 3, 3, 1, 1, Padding::same()};
  const Conv2dGeometry g = geometry(cc);
  const std::vector<float> in = random_vector<float>(g.in_size(), 7);
  const std::vector<float> w = random_vector<float>(g.weight_size(), 8);
  std::vector<double> expected(g.out_size());
  const std::vector<double> in_d = to_double(in), w_d = to_double(w);
  cpu::conv2d_forward<double>(g, in_d.data(), w_d.data(), nullptr, expected.data(), {});
  std::vector<float> col = nan_vector<float>(cpu::fast::conv2d_col_floats(g));
  std::vector<float> out = nan_vector<float>(g.out_size());
  cpu::fast::conv2d_forward(g, in.data(), w.data(), nullptr, out.data(), {}, col.data());
  EXPECT_TRUE(all_close(out, expected, kFastForward, "out"));
}

TEST(CpuFastConv, BackwardDataMatchesReference) {
  std::uint64_t seed = 200;
  for (const ConvCase& cc : conv_cases()) {
    SCOPED_TRACE(describe(cc));
    const Conv2dGeometry g = geometry(cc);
    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    const std::vector<float> w = random_vector<float>(g.weight_size(), ++seed);
    std::vector<double> expected(g.in_size());
    const std::vector<double> dout_d = to_double(dout), w_d = to_double(w);
    cpu::conv2d_backward_data<double>(g, dout_d.data(), w_d.data(), expected.data());
    ASSERT_TRUE(any_nonzero(expected));
    std::vector<float> col = nan_vector<float>(cpu::fast::conv2d_col_floats(g));
    std::vector<float> din = nan_vector<float>(g.in_size());
    cpu::fast::conv2d_backward_data(g, dout.data(), w.data(), din.data(), col.data());
    EXPECT_TRUE(all_close(din, expected, kFastForward, "din"));
  }
}

TEST(CpuFastConv, BackwardWeightsMatchesReference) {
  std::uint64_t seed = 300;
  for (const ConvCase& cc : conv_cases()) {
    SCOPED_TRACE(describe(cc));
    const Conv2dGeometry g = geometry(cc);
    const std::vector<float> in = random_vector<float>(g.in_size(), ++seed);
    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    std::vector<double> dw_expected(g.weight_size()), db_expected(std::size_t(g.k));
    const std::vector<double> in_d = to_double(in), dout_d = to_double(dout);
    cpu::conv2d_backward_weights<double>(g, in_d.data(), dout_d.data(), dw_expected.data(),
                                         db_expected.data(), nullptr);
    ASSERT_TRUE(any_nonzero(dw_expected));
    ASSERT_TRUE(any_nonzero(db_expected));
    std::vector<float> col = nan_vector<float>(cpu::fast::conv2d_col_floats(g));
    std::vector<float> dw = nan_vector<float>(g.weight_size());
    std::vector<float> db = nan_vector<float>(std::size_t(g.k));
    cpu::fast::conv2d_backward_weights(g, in.data(), dout.data(), dw.data(), db.data(), col.data());
    EXPECT_TRUE(all_close(dw, dw_expected, kFastWeightGradient, "dweight"));
    EXPECT_TRUE(all_close(db, db_expected, kFastWeightGradient, "dbias"));
  }
}

struct DenseCase {
  int n, in, out;
};

const std::vector<DenseCase>& dense_cases() {
  static const std::vector<DenseCase> cases{
      {1, 7, 3},      // batch of 1
      {5, 400, 120},  // LeNet fc1
      {3, 17, 9},     // nothing a multiple of the vector width
      {64, 84, 10},   // LeNet fc3 at a training batch
  };
  return cases;
}

std::string describe(const DenseCase& dc) {
  return "n" + std::to_string(dc.n) + " " + std::to_string(dc.in) + "->" + std::to_string(dc.out);
}

// f(first, count) over `columns` in `blocks` blocks: the layer splits a large weight matrix's
// results by columns across threads (output units forward, input features in the data gradient).
template <typename F>
void in_column_blocks(int columns, int blocks, F&& f) {
  const int per = (columns + blocks - 1) / blocks;
  for (int first = 0; first < columns; first += per) f(first, std::min(per, columns - first));
}

TEST(CpuFastDense, ForwardMatchesReferenceInColumnBlocks) {
  std::uint64_t seed = 400;
  for (const DenseCase& dc : dense_cases()) {
    SCOPED_TRACE(describe(dc));
    const DenseGeometry g{dc.n, dc.in, dc.out};
    const std::vector<float> in = random_vector<float>(g.in_size(), ++seed);
    const std::vector<float> w = random_vector<float>(g.weight_size(), ++seed);
    const std::vector<float> b = random_vector<float>(std::size_t(g.out_features), ++seed);
    std::vector<double> expected(g.out_size());
    const std::vector<double> in_d = to_double(in), w_d = to_double(w), b_d = to_double(b);
    cpu::dense_forward<double>(g, in_d.data(), w_d.data(), b_d.data(), expected.data(), {});
    for (int blocks = 1; blocks <= 3; ++blocks) {
      SCOPED_TRACE("blocks " + std::to_string(blocks));
      auto forward = [&](float* z, FusedActivation<float> f) {
        in_column_blocks(g.out_features, blocks, [&](int first, int count) {
          cpu::fast::dense_forward(g, first, count, in.data(), w.data(), b.data(), z, f);
        });
      };
      std::vector<float> out = nan_vector<float>(g.out_size());
      forward(out.data(), {});
      EXPECT_TRUE(all_close(out, expected, kFastForward, "out"));
      expect_fused_forward_same_bits<float>(g.out_size(), forward, &cpu::fast::activation_forward);
    }
  }
}

TEST(CpuFastDense, BackwardDataMatchesReferenceInColumnBlocks) {
  std::uint64_t seed = 500;
  for (const DenseCase& dc : dense_cases()) {
    SCOPED_TRACE(describe(dc));
    const DenseGeometry g{dc.n, dc.in, dc.out};
    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    const std::vector<float> w = random_vector<float>(g.weight_size(), ++seed);
    std::vector<double> expected(g.in_size());
    const std::vector<double> dout_d = to_double(dout), w_d = to_double(w);
    cpu::dense_backward_data<double>(g, dout_d.data(), w_d.data(), expected.data(), {});
    for (int blocks = 1; blocks <= 3; ++blocks) {
      SCOPED_TRACE("blocks " + std::to_string(blocks));
      auto backward_data = [&](float* dz, FusedActivationGrad<float> f) {
        in_column_blocks(g.in_features, blocks, [&](int first, int count) {
          cpu::fast::dense_backward_data(g, first, count, dout.data(), w.data(), dz, f);
        });
      };
      std::vector<float> din = nan_vector<float>(g.in_size());
      backward_data(din.data(), {});
      EXPECT_TRUE(all_close(din, expected, kFastForward, "din"));
      expect_fused_backward_same_bits<float>(g.in_size(), ++seed, backward_data);
    }
  }
}

TEST(CpuFastDense, BackwardWeightsMatchesReferenceInBlocks) {
  std::uint64_t seed = 600;
  for (const DenseCase& dc : dense_cases()) {
    SCOPED_TRACE(describe(dc));
    const DenseGeometry g{dc.n, dc.in, dc.out};
    const std::vector<float> in = random_vector<float>(g.in_size(), ++seed);
    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    std::vector<double> dw_expected(g.weight_size()), db_expected(std::size_t(g.out_features));
    const std::vector<double> in_d = to_double(in), dout_d = to_double(dout);
    cpu::dense_backward_weights<double>(g, in_d.data(), dout_d.data(), dw_expected.data(),
                                        db_expected.data());
    ASSERT_TRUE(any_nonzero(dw_expected));
    // The unit hands each thread a block of output units: 1, 2 and 3 blocks cover them all.
    for (int blocks = 1; blocks <= 3; ++blocks) {
      SCOPED_TRACE("blocks " + std::to_string(blocks));
      std::vector<float> dw = nan_vector<float>(g.weight_size());
      std::vector<float> db = nan_vector<float>(std::size_t(g.out_features));
      in_column_blocks(g.out_features, blocks, [&](int first, int count) {
        cpu::fast::dense_backward_weights(g, first, count, in.data(), dout.data(), dw.data(),
                                          db.data());
      });
      EXPECT_TRUE(all_close(dw, dw_expected, kFastWeightGradient, "dweight"));
      EXPECT_TRUE(all_close(db, db_expected, kFastWeightGradient, "dbias"));
    }
  }
}

// Batch norm: a plane of 1 (after a dense layer), planes that are not a multiple of the eight
// lanes, a batch of 1 with a plane, and LeNet-sized planes.
const std::vector<BatchNormGeometry>& batch_norm_cases() {
  static const std::vector<BatchNormGeometry> cases{{5, 7, 1},       {3, 4, 13}, {1, 3, 9},
                                                    {4, 6, 28 * 28}, {2, 9, 8},  {7, 2, 49}};
  return cases;
}

std::string describe(const BatchNormGeometry& g) {
  return "n" + std::to_string(g.n) + " c" + std::to_string(g.c) + " plane" +
         std::to_string(g.plane);
}

// The inputs of one batch-norm case: values with a channel-dependent offset, so a mean that is
// not subtracted shows, and gamma, beta, running statistics of either sign.
template <typename T>
struct BatchNormInputs {
  std::vector<T> in, dout, gamma, beta, running_mean, running_var;
};

// The same inputs in double, for the reference.
BatchNormInputs<double> to_double(const BatchNormInputs<float>& x) {
  return {to_double(x.in),   to_double(x.dout),         to_double(x.gamma),
          to_double(x.beta), to_double(x.running_mean), to_double(x.running_var)};
}

BatchNormInputs<float> batch_norm_inputs(const BatchNormGeometry& g, std::uint64_t seed) {
  BatchNormInputs<float> x;
  x.in = random_vector<float>(g.size(), seed);
  for (std::size_t i = 0; i < x.in.size(); ++i) x.in[i] += float((i / g.plane) % g.c) * 0.5f + 3;
  x.dout = random_vector<float>(g.size(), seed + 1);
  x.gamma = random_vector<float>(std::size_t(g.c), seed + 2, 0.5, 1.5);
  x.beta = random_vector<float>(std::size_t(g.c), seed + 3);
  x.running_mean = random_vector<float>(std::size_t(g.c), seed + 4);
  x.running_var = random_vector<float>(std::size_t(g.c), seed + 5, 0.5, 2.0);
  return x;
}

TEST(CpuFastBatchNorm, TrainingForwardMatchesReference) {
  std::uint64_t seed = 700;
  const BatchNormParams bn{0.1, 1e-5};
  for (const BatchNormGeometry& g : batch_norm_cases()) {
    SCOPED_TRACE(describe(g));
    const BatchNormInputs<float> x = batch_norm_inputs(g, seed += 10);
    const BatchNormInputs<double> d = to_double(x);
    const std::size_t c = std::size_t(g.c);
    std::vector<double> out_d(g.size()), mean_d(c), rstd_d(c), rm_d = d.running_mean,
                                                               rv_d = d.running_var;
    double tracked_d = 0;
    cpu::batch_norm_forward_training<double>(g, 0, g.c, bn, d.in.data(), d.gamma.data(),
                                             d.beta.data(), out_d.data(), {}, mean_d.data(),
                                             rstd_d.data(), rm_d.data(), rv_d.data(), &tracked_d);
    std::vector<float> out = nan_vector<float>(g.size()), mean = nan_vector<float>(c),
                       rstd = nan_vector<float>(c), rm = x.running_mean, rv = x.running_var;
    float tracked = 0;
    // Two channel slices, as two threads would run them.
    const int half = g.c / 2;
    for (const auto& [first, last] : {std::pair{0, half}, std::pair{half, g.c}})
      cpu::fast::batch_norm_forward_training(g, first, last, bn, x.in.data(), x.gamma.data(),
                                             x.beta.data(), out.data(), {}, mean.data(),
                                             rstd.data(), rm.data(), rv.data(), &tracked);
    EXPECT_TRUE(all_close(out, out_d, kFastForward, "out"));
    EXPECT_TRUE(all_close(mean, mean_d, kFastForward, "mean"));
    EXPECT_TRUE(all_close(rstd, rstd_d, kFastForward, "inv_std"));
    EXPECT_TRUE(all_close(rm, rm_d, kFastForward, "running_mean"));
    EXPECT_TRUE(all_close(rv, rv_d, kFastForward, "running_var"));
    EXPECT_EQ(tracked, 1.0f);
    expect_fused_forward_same_bits<float>(
        g.size(),
        [&](float* z, FusedActivation<float> f) {
          std::vector<float> m(c), r(c), rm2 = x.running_mean, rv2 = x.running_var;
          float t = 0;
          cpu::fast::batch_norm_forward_training(g, 0, g.c, bn, x.in.data(), x.gamma.data(),
                                                 x.beta.data(), z, f, m.data(), r.data(),
                                                 rm2.data(), rv2.data(), &t);
        },
        &cpu::fast::activation_forward);
  }
}

TEST(CpuFastBatchNorm, InferenceMatchesReference) {
  std::uint64_t seed = 800;
  const BatchNormParams bn{0.1, 1e-3};
  for (const BatchNormGeometry& g : batch_norm_cases()) {
    SCOPED_TRACE(describe(g));
    const BatchNormInputs<float> x = batch_norm_inputs(g, seed += 10);
    const BatchNormInputs<double> d = to_double(x);
    std::vector<double> out_d(g.size());
    cpu::batch_norm_forward_inference<double>(g, 0, g.c, bn, d.in.data(), d.gamma.data(),
                                              d.beta.data(), d.running_mean.data(),
                                              d.running_var.data(), out_d.data(), {});
    std::vector<float> out = nan_vector<float>(g.size());
    cpu::fast::batch_norm_forward_inference(g, 0, g.c, bn, x.in.data(), x.gamma.data(),
                                            x.beta.data(), x.running_mean.data(),
                                            x.running_var.data(), out.data(), {});
    EXPECT_TRUE(all_close(out, out_d, kFastForward, "out"));
  }
}

TEST(CpuFastBatchNorm, BackwardMatchesReference) {
  std::uint64_t seed = 900;
  for (const BatchNormGeometry& g : batch_norm_cases()) {
    SCOPED_TRACE(describe(g));
    const BatchNormInputs<float> x = batch_norm_inputs(g, seed += 10);
    const BatchNormInputs<double> d = to_double(x);
    const std::size_t c = std::size_t(g.c);
    // The statistics the training forward would keep, from the double reference.
    std::vector<double> out_d(g.size()), mean_d(c), rstd_d(c), rm_d(c), rv_d(c, 1.0);
    double tracked_d = 0;
    cpu::batch_norm_forward_training<double>(g, 0, g.c, {}, d.in.data(), d.gamma.data(),
                                             d.beta.data(), out_d.data(), {}, mean_d.data(),
                                             rstd_d.data(), rm_d.data(), rv_d.data(), &tracked_d);
    std::vector<double> dgamma_d(c), dbeta_d(c), din_d(g.size());
    cpu::batch_norm_backward_weights<double>(g, 0, g.c, d.in.data(), d.dout.data(), mean_d.data(),
                                             rstd_d.data(), dgamma_d.data(), dbeta_d.data());
    cpu::batch_norm_backward_data<double>(g, 0, g.c, d.in.data(), d.dout.data(), d.gamma.data(),
                                          mean_d.data(), rstd_d.data(), din_d.data(), {});
    ASSERT_TRUE(any_nonzero(dgamma_d));
    ASSERT_TRUE(any_nonzero(din_d));
    const std::vector<float> mean(mean_d.begin(), mean_d.end()), rstd(rstd_d.begin(), rstd_d.end());
    std::vector<float> dgamma = nan_vector<float>(c), dbeta = nan_vector<float>(c),
                       din = nan_vector<float>(g.size());
    const int half = g.c / 2;
    for (const auto& [first, last] : {std::pair{0, half}, std::pair{half, g.c}}) {
      cpu::fast::batch_norm_backward_weights(g, first, last, x.in.data(), x.dout.data(),
                                             mean.data(), rstd.data(), dgamma.data(), dbeta.data());
      cpu::fast::batch_norm_backward_data(g, first, last, x.in.data(), x.dout.data(),
                                          x.gamma.data(), mean.data(), rstd.data(), din.data(), {});
    }
    EXPECT_TRUE(all_close(dgamma, dgamma_d, kFastWeightGradient, "dgamma"));
    EXPECT_TRUE(all_close(dbeta, dbeta_d, kFastWeightGradient, "dbeta"));
    EXPECT_TRUE(all_close(din, din_d, kFastWeightGradient, "din"));
    expect_fused_backward_same_bits<float>(
        g.size(), ++seed, [&](float* dz, FusedActivationGrad<float> f) {
          cpu::fast::batch_norm_backward_data(g, 0, g.c, x.in.data(), x.dout.data(), x.gamma.data(),
                                              mean.data(), rstd.data(), dz, f);
        });
  }
}

// A network with every layer kind and both conv paths (1x1 read as is, strided and padded).
Network mixed_network() {
  return network_from_json(R"({"name": "mixed", "input": [1, 28, 28], "classes": 10, "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 6, "kernel": [3, 5], "padding": [1, 2]},
    {"type": "leaky_relu", "slope": 0.1},
    {"type": "avg_pool", "window": 2, "stride": 2},
    {"type": "conv2d", "name": "conv2", "filters": 8, "kernel": 3, "stride": 2, "padding": "same"},
    {"type": "batch_norm", "name": "bn1"},
    {"type": "sigmoid"},
    {"type": "conv2d", "name": "conv3", "filters": 5, "kernel": 1},
    {"type": "relu"},
    {"type": "max_pool", "window": 3, "stride": 2},
    {"type": "dense", "name": "fc1", "units": 32},
    {"type": "batch_norm", "name": "bn2"},
    {"type": "relu"},
    {"type": "dense", "name": "fc2", "units": 10}]})",
                           "mixed");
}

// A dense layer of over 2^20 weights after a convolution: its forward pass and data gradient
// split the threads by columns (host/layers/dense.cpp), the fused ReLU included.
Network wide_dense_network() {
  return network_from_json(R"({"name": "wide", "input": [1, 28, 28], "classes": 10, "layers": [
    {"type": "conv2d", "name": "conv1", "filters": 4, "kernel": 3},
    {"type": "relu"},
    {"type": "dense", "name": "fc1", "units": 512},
    {"type": "relu"},
    {"type": "dense", "name": "fc2", "units": 10}]})",
                           "wide");
}

// Values a sigmoid sees, and its edges: 0, where exp over- and underflows, past both.
std::vector<float> activation_inputs(std::size_t count, std::uint64_t seed) {
  std::vector<float> z = random_vector<float>(count, seed, -12.0, 12.0);
  const float edges[] = {0.0f, -0.0f, 88.0f, -88.0f, 87.5f, -87.5f, 100.0f, -100.0f, 1e-8f, -1e-8f};
  for (std::size_t i = 0; i < count && i < std::size(edges); ++i) z[i * 3 % count] = edges[i];
  return z;
}

TEST(CpuFastActivation, SigmoidMatchesReference) {
  std::uint64_t seed = 800;
  for (const std::size_t count : {1u, 3u, 4u, 5u, 1027u}) {  // whole vectors and a tail
    SCOPED_TRACE("count " + std::to_string(count));
    const std::vector<float> z = activation_inputs(count, ++seed);
    const std::vector<double> z_d = to_double(z);
    std::vector<double> expected(count);
    cpu::activation_forward<double>(Activation::sigmoid, 0.1, count, z_d.data(), expected.data());
    ASSERT_TRUE(any_nonzero(expected));
    std::vector<float> a = nan_vector<float>(count);
    cpu::fast::activation_forward(Activation::sigmoid, 0.1f, count, z.data(), a.data());
    EXPECT_TRUE(all_close(a, expected, kFastSigmoid, "sigmoid"));
    std::vector<float> in_place = z;  // a may alias z
    cpu::fast::activation_forward(Activation::sigmoid, 0.1f, count, in_place.data(),
                                  in_place.data());
    EXPECT_TRUE(bitwise_equal(in_place, a));
  }
  const std::vector<float> nan_in = nan_vector<float>(5);
  std::vector<float> out(5, 0.0f);
  cpu::fast::activation_forward(Activation::sigmoid, 0.1f, 5, nan_in.data(), out.data());
  for (const float v : out) EXPECT_TRUE(std::isnan(v)) << "NaN in, NaN out";
}

// Every lane width this processor runs gives the 4-lane path's bits, and each is within the
// tolerance of the double reference itself; over every length of a vector and a tail, and over
// the edges.
TEST(CpuFastActivation, SigmoidPathsGiveTheSameBits) {
  using cpu::fast::SigmoidPath;
  ASSERT_TRUE(cpu::fast::sigmoid_path_available(SigmoidPath::lanes4));
  EXPECT_TRUE(cpu::fast::sigmoid_path_available(cpu::fast::chosen_sigmoid_path()));
  std::uint64_t seed = 850;
  int compared = 0;
  for (const SigmoidPath path : {SigmoidPath::avx2, SigmoidPath::avx512}) {
    if (!cpu::fast::sigmoid_path_available(path)) {
      EXPECT_THROW(cpu::fast::sigmoid_forward(path, 1, nullptr, nullptr), Error);
      continue;
    }
    SCOPED_TRACE(cpu::fast::sigmoid_path_name(path));
    for (std::size_t count = 1; count <= 40; ++count) {
      const std::vector<float> z = activation_inputs(count + 4093, ++seed);
      const std::vector<double> z_d = to_double(z);
      std::vector<double> expected(z.size());
      cpu::activation_forward<double>(Activation::sigmoid, 0.1, z.size(), z_d.data(),
                                      expected.data());
      std::vector<float> four = nan_vector<float>(z.size()), wide = nan_vector<float>(z.size());
      cpu::fast::sigmoid_forward(SigmoidPath::lanes4, z.size(), z.data(), four.data());
      cpu::fast::sigmoid_forward(path, z.size(), z.data(), wide.data());
      ASSERT_TRUE(all_close(wide, expected, kFastSigmoid, "sigmoid"));
      ASSERT_TRUE(bitwise_equal(wide, four)) << "count " << z.size();
      ++compared;
    }
  }
  if (compared == 0) GTEST_SKIP() << "this processor has neither AVX2 nor AVX-512";
}

// The other kinds are the reference loops: the same bits; and the fused form writes act(z) of
// its slice only.
TEST(CpuFastActivation, OtherKindsAndFusedForm) {
  const std::size_t count = 37;
  const std::vector<float> z = activation_inputs(count, 900);
  for (const Activation kind : kFusibleActivations) {
    SCOPED_TRACE("activation " + std::to_string(int(kind)));
    std::vector<float> expected = nan_vector<float>(count), a = nan_vector<float>(count);
    if (kind == Activation::sigmoid)
      cpu::fast::activation_forward(kind, kFusedLeakySlope, count, z.data(), expected.data());
    else
      cpu::activation_forward(kind, kFusedLeakySlope, count, z.data(), expected.data());
    ASSERT_TRUE(all_finite(expected));
    cpu::fast::activation_forward(kind, kFusedLeakySlope, count, z.data(), a.data());
    EXPECT_TRUE(bitwise_equal(a, expected));
    std::vector<float> fused = nan_vector<float>(count);
    cpu::fast::fused_activation_forward(
        FusedActivation<float>{kind, kFusedLeakySlope, fused.data()}, 5, 20, z.data());
    for (std::size_t i = 0; i < count; ++i)
      if (i >= 5 && i < 25)
        EXPECT_EQ(fused[i], expected[i]) << i;
      else
        EXPECT_TRUE(std::isnan(fused[i])) << i << " outside the slice was written";
  }
}

struct PoolCase {
  int n, c, h, w, win, stride;
};

std::string describe(const PoolCase& pc) {
  return "n" + std::to_string(pc.n) + " c" + std::to_string(pc.c) + " " + std::to_string(pc.h) +
         "x" + std::to_string(pc.w) + " window " + std::to_string(pc.win) + " /" +
         std::to_string(pc.stride);
}

const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> cases{
      {3, 6, 28, 28, 2, 2},   // LeNet pool1: 14 windows a row, 4 at a time and 2 left
      {2, 16, 10, 10, 2, 2},  // LeNet pool2: 5 a row
      {1, 3, 7, 9, 2, 2},     // odd sizes: a last row and column no window covers
      {2, 5, 16, 16, 2, 2},   // 8 a row: no scalar remainder
      {2, 2, 2, 2, 2, 2},     // one window
      {2, 3, 9, 11, 3, 2},    // overlapping windows: the reference loops
      {1, 2, 6, 6, 3, 3},     // 3x3 windows by 3
      {2, 3, 55, 55, 3, 2},   // AlexNet pool1: 27 a row, the last vectors short of the row's end
      {1, 4, 13, 13, 3, 2},   // AlexNet pool3: 6 a row
      {2, 2, 9, 12, 3, 1},    // overlapping windows moved by 1
      {1, 2, 8, 11, 2, 1},    // 2x2 moved by 1
  };
  return cases;
}

Pool2dGeometry geometry(const PoolCase& pc) {
  return make_pool2d_geometry("test", pc.n, pc.c, pc.h, pc.w, pc.win, pc.win, pc.stride, pc.stride);
}

// Inputs on a coarse grid with many exact zeros (a ReLU's output): windows with ties, where the
// first maximum in row-major order must win.
std::vector<float> pool_input(std::size_t count, std::uint64_t seed) {
  std::vector<float> v = random_vector<float>(count, seed);
  for (float& x : v) x = x < 0 ? 0.0f : std::round(x * 3.0f) / 3.0f;
  return v;
}

TEST(CpuFastPool, MaxForwardMatchesReference) {
  std::uint64_t seed = 500;
  for (const PoolCase& pc : pool_cases()) {
    SCOPED_TRACE(describe(pc));
    const Pool2dGeometry g = geometry(pc);
    const std::vector<float> in = pool_input(g.in_size(), ++seed);
    const std::vector<double> in_d = to_double(in);
    std::vector<double> expected(g.out_size());
    std::vector<std::int32_t> expected_argmax(g.out_size(), -1);
    cpu::max_pool_forward<double>(g, in_d.data(), expected.data(), expected_argmax.data());
    ASSERT_TRUE(any_nonzero(expected));
    std::vector<float> out = nan_vector<float>(g.out_size());
    std::vector<std::int32_t> argmax(g.out_size(), -1);
    cpu::fast::max_pool_forward(g, in.data(), out.data(), argmax.data());
    EXPECT_TRUE(all_close(out, expected, kExact, "out"));
    EXPECT_EQ(argmax, expected_argmax);
  }
}

TEST(CpuFastPool, MaxBackwardMatchesReference) {
  std::uint64_t seed = 600;
  for (const PoolCase& pc : pool_cases()) {
    SCOPED_TRACE(describe(pc));
    const Pool2dGeometry g = geometry(pc);
    const std::vector<float> in = pool_input(g.in_size(), ++seed);
    std::vector<float> out(g.out_size());
    std::vector<std::int32_t> argmax(g.out_size());
    cpu::max_pool_forward<float>(g, in.data(), out.data(), argmax.data());
    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    const std::vector<double> dout_d = to_double(dout);
    std::vector<double> expected(g.in_size());
    cpu::max_pool_backward<double>(g, dout_d.data(), argmax.data(), expected.data(), {});
    ASSERT_TRUE(any_nonzero(expected));
    std::vector<float> din = nan_vector<float>(g.in_size());
    cpu::fast::max_pool_backward(g, dout.data(), argmax.data(), din.data(), {});
    const Tolerance tol = cpu::fast::pool2d_is_2x2_by_2(g) ? kExact : kFastForward;
    EXPECT_TRUE(all_close(din, expected, tol, "din"));
    expect_fused_backward_same_bits<float>(g.in_size(), ++seed, [&](float* d, const auto& fused) {
      cpu::fast::max_pool_backward(g, dout.data(), argmax.data(), d, fused);
    });
  }
}

TEST(CpuFastPool, AverageMatchesReference) {
  std::uint64_t seed = 700;
  for (const PoolCase& pc : pool_cases()) {
    SCOPED_TRACE(describe(pc));
    const Pool2dGeometry g = geometry(pc);
    const std::vector<float> in = random_vector<float>(g.in_size(), ++seed);
    const std::vector<double> in_d = to_double(in);
    std::vector<double> expected(g.out_size());
    cpu::avg_pool_forward<double>(g, in_d.data(), expected.data());
    ASSERT_TRUE(any_nonzero(expected));
    std::vector<float> out = nan_vector<float>(g.out_size());
    cpu::fast::avg_pool_forward(g, in.data(), out.data());
    EXPECT_TRUE(all_close(out, expected, kFastForward, "out"));

    const std::vector<float> dout = random_vector<float>(g.out_size(), ++seed);
    const std::vector<double> dout_d = to_double(dout);
    std::vector<double> din_expected(g.in_size());
    cpu::avg_pool_backward<double>(g, dout_d.data(), din_expected.data(), {});
    ASSERT_TRUE(any_nonzero(din_expected));
    std::vector<float> din = nan_vector<float>(g.in_size());
    cpu::fast::avg_pool_backward(g, dout.data(), din.data(), {});
    EXPECT_TRUE(all_close(din, din_expected, kFastForward, "din"));
    expect_fused_backward_same_bits<float>(g.in_size(), ++seed, [&](float* d, const auto& fused) {
      cpu::fast::avg_pool_backward(g, dout.data(), d, fused);
    });
  }
}

// One forward/backward of `network` on a seeded batch; the loss and every gradient.
struct Pass {
  double loss = 0;
  std::vector<std::vector<float>> grads;
};
Pass one_pass(const Network& network, Device device, int threads, int batch) {
  CompileOptions o = cpu_options(batch, 3, threads);
  o.device = device;
  Model model(network, o);
  const std::size_t sample = std::size_t(network.input().size());
  const std::vector<float> images = random_vector<float>(std::size_t(batch) * sample, 11);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[std::size_t(i)] = i % network.classes();
  Pass pass;
  pass.loss = model.forward_backward(images.data(), labels.data(), batch).mean_loss();
  for (const ParameterInfo& p : model.parameters()) pass.grads.push_back(model.gradient(p.name));
  return pass;
}

TEST(CpuFastModel, GradientsMatchReference) {
  for (const int threads : {1, 2, 3})
    for (const Network& network : {mixed_network(), wide_dense_network()}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + " " + network.name());
      const Pass fast = one_pass(network, Device::cpu, threads, 7);
      const Pass ref = one_pass(network, Device::reference, threads, 7);
      EXPECT_NEAR(fast.loss, ref.loss, kFastModel.atol + kFastModel.rtol * std::fabs(ref.loss));
      ASSERT_EQ(fast.grads.size(), ref.grads.size());
      for (std::size_t i = 0; i < ref.grads.size(); ++i) {
        ASSERT_TRUE(any_nonzero(ref.grads[i])) << "gradient " << i;
        EXPECT_TRUE(all_close(fast.grads[i], to_double(ref.grads[i]), kFastModel,
                              "gradient " + std::to_string(i)));
      }
    }
}

TEST(CpuFastModel, SameBitsTwiceForOneThreadCount) {
  for (const Network& network : {mixed_network(), wide_dense_network()}) {
    SCOPED_TRACE(network.name());
    const Pass a = one_pass(network, Device::cpu, 2, 9), b = one_pass(network, Device::cpu, 2, 9);
    EXPECT_EQ(a.loss, b.loss);
    for (std::size_t i = 0; i < a.grads.size(); ++i)
      EXPECT_TRUE(bitwise_equal(a.grads[i], b.grads[i])) << "gradient " << i;
  }
}

}  // namespace
}  // namespace cnnrt
