#pragma once
// Finite-difference gradient checker for the CPU reference backward kernels, run in double.
//
// For every coordinate i of x it compares the analytic dL/dx_i with the central difference
// (L(x + h e_i) - L(x - h e_i)) / 2h and passes when
//   |analytic - numeric| <= threshold * max(|analytic|, |numeric|, 1).
// Points within h of a kink (ReLU at 0, a max-pool tie changing hands) are skipped: there the
// one-sided differences (L(x+h) - L(x)) / h and (L(x) - L(x-h)) / h disagree by the slope jump,
// and the central difference is off by half of it. Skipping every point whose one-sided
// differences disagree by more than `threshold * scale` therefore means a kink that is not
// skipped can move the central difference by at most threshold / 2. Smooth points disagree by
// about h * L'' only, far below the threshold. The check fails when more than
// `max_skipped_fraction` of the points were skipped, and when the analytic gradient is all zeros.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace cnnrt::test {

struct GradientCheckConfig {
  double step = 1e-6;       // h
  double threshold = 1e-5;  // relative to max(|analytic|, |numeric|, 1)
  double max_skipped_fraction = 0.1;
};

// loss: (const std::vector<double>& x) -> double; analytic: dL/dx at x.
template <typename LossFn>
::testing::AssertionResult check_gradient(const std::string& what, std::vector<double> x,
                                          const std::vector<double>& analytic, LossFn&& loss,
                                          GradientCheckConfig config = {}) {
  if (x.size() != analytic.size())
    return ::testing::AssertionFailure()
           << what << ": gradient has " << analytic.size() << " elements, input " << x.size();
  bool nonzero = false;
  for (double a : analytic) nonzero = nonzero || a != 0.0;
  if (!nonzero) return ::testing::AssertionFailure() << what << ": analytic gradient is all zeros";

  const double h = config.step;
  const double center = loss(x);
  std::size_t skipped = 0, bad = 0;
  auto failure = ::testing::AssertionFailure();
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = loss(x);
    x[i] = saved - h;
    const double minus = loss(x);
    x[i] = saved;
    const double numeric = (plus - minus) / (2.0 * h);
    const double forward = (plus - center) / h, backward = (center - minus) / h;
    const double scale = std::max({std::fabs(analytic[i]), std::fabs(numeric), 1.0});
    if (std::fabs(forward - backward) > config.threshold * scale) {
      ++skipped;  // a kink lies within h of this point
      continue;
    }
    if (!(std::fabs(analytic[i] - numeric) <= config.threshold * scale)) {
      if (bad < 5)
        failure << what << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric
                << "\n";
      ++bad;
    }
  }
  if (bad > 0)
    return failure << what << ": " << bad << " of " << x.size()
                   << " gradient elements disagree (threshold " << config.threshold << ")";
  if (double(skipped) > config.max_skipped_fraction * double(x.size()))
    return ::testing::AssertionFailure() << what << ": " << skipped << " of " << x.size()
                                         << " points skipped as kinks, too many to trust";
  return ::testing::AssertionSuccess();
}

// The scalar loss L = sum(out * upstream) whose gradient with respect to out is `upstream`.
inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& upstream) {
  double sum = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) sum += out[i] * upstream[i];
  return sum;
}

}  // namespace cnnrt::test
