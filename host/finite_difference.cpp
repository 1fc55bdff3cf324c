#include "host/finite_difference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "cnnrt/error.hpp"

namespace cnnrt {

namespace {

constexpr std::size_t kListedFailures = 5;

void append(std::string& message, const std::string& part) {
  if (!message.empty()) message += "; ";
  message += part;
}

// How far into its tolerance an error is (past 1: out of it); a NaN error is the worst of all.
double tolerance_ratio(double err, double bound) {
  if (std::isnan(err)) return HUGE_VAL;
  if (bound > 0) return err / bound;
  return err > 0 ? HUGE_VAL : 0;
}

}  // namespace

FdResult fd_check_gradient(const std::vector<double>& x, const std::vector<double>& analytic,
                           const FdLoss& loss, const std::vector<std::size_t>& points,
                           const FdTolerances& tol) {
  FdResult r;
  if (x.size() != analytic.size()) {
    r.message = fmt::format("gradient has {} elements, input {}", analytic.size(), x.size());
    return r;
  }
  for (std::size_t i : points)
    if (i >= x.size())
      throw Error(fmt::format("fd_check_gradient: point {} is outside the {} inputs", i, x.size()));
  for (double a : analytic) r.max_abs_analytic = std::max(r.max_abs_analytic, std::fabs(a));

  const double h = tol.step;
  std::string failures;
  double center = 0;
  if (!points.empty()) center = loss(points.front(), x[points.front()]);
  for (std::size_t i : points) {
    const double plus = loss(i, x[i] + h);
    const double minus = loss(i, x[i] - h);
    const double forward = (plus - center) / h, backward = (center - minus) / h;
    if (std::fabs(forward - backward) >
        tol.kink_atol + tol.kink_rtol * std::max(std::fabs(forward), std::fabs(backward))) {
      ++r.skipped;  // a kink lies within h of this point
      continue;
    }
    ++r.checked;
    const double numeric = (plus - minus) / (2 * h);
    const double a = analytic[i];
    const double err = std::fabs(a - numeric);
    const double bound = tol.atol + tol.rtol * std::max(std::fabs(a), std::fabs(numeric));
    r.max_abs_error = std::max(r.max_abs_error, err);
    if (numeric != 0) r.max_rel_error = std::max(r.max_rel_error, err / std::fabs(numeric));
    const double ratio = tolerance_ratio(err, bound);
    if (r.checked == 1 || ratio > r.worst_ratio) {
      r.worst_index = i;
      r.worst_analytic = a;
      r.worst_numeric = numeric;
      r.worst_ratio = ratio;
    }
    if (!(err <= bound)) {  // NaN included
      if (r.failed < kListedFailures)
        append(failures, fmt::format("[{}]: analytic {:.9g}, numeric {:.9g}", i, a, numeric));
      ++r.failed;
    }
  }

  if (r.failed > 0)
    append(r.message,
           fmt::format("{} of {} compared points out of tolerance (atol {:g} + rtol {:g} * "
                       "max(|analytic|, |numeric|)): {}",
                       r.failed, r.checked, tol.atol, tol.rtol, failures));
  const std::size_t tried = r.checked + r.skipped;
  if (double(r.skipped) > tol.max_skipped_fraction * double(tried))
    append(r.message, fmt::format("{} of {} points skipped as kinks, more than the {:g} allowed: "
                                  "too few left to trust",
                                  r.skipped, tried, tol.max_skipped_fraction));
  if (r.max_abs_analytic == 0) append(r.message, "analytic gradient is all zeros");
  if (r.checked == 0) append(r.message, "no point compared");
  r.passed = r.message.empty();
  if (r.passed)
    r.message = fmt::format(
        "{} points compared, {} skipped as kinks; worst [{}]: analytic {:.9g}, numeric {:.9g}, "
        "{:.3g} of the tolerance",
        r.checked, r.skipped, r.worst_index, r.worst_analytic, r.worst_numeric, r.worst_ratio);
  return r;
}

FdResult fd_check_gradient(const std::vector<double>& x, const std::vector<double>& analytic,
                           const FdLoss& loss, const FdTolerances& tol) {
  std::vector<std::size_t> every(x.size());
  std::iota(every.begin(), every.end(), std::size_t(0));
  return fd_check_gradient(x, analytic, loss, every, tol);
}

}  // namespace cnnrt
