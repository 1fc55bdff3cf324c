#pragma once
// GoogleTest's face of the library's finite-difference checker (host/finite_difference.hpp,
// where the rule and its tolerances are explained), for the CPU reference backward kernels, run
// in double: every point of x is checked.
#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "host/finite_difference.hpp"

namespace cnnrt::test {

// loss: (const std::vector<double>& x) -> double; analytic: dL/dx at x.
template <typename LossFn>
::testing::AssertionResult check_gradient(const std::string& what, std::vector<double> x,
                                          const std::vector<double>& analytic, LossFn&& loss,
                                          const FdTolerances& tolerances = {}) {
  const std::vector<double> point = x;
  const FdResult r = fd_check_gradient(
      point, analytic,
      [&](std::size_t i, double value) {
        x[i] = value;
        const double l = loss(std::as_const(x));
        x[i] = point[i];
        return l;
      },
      tolerances);
  if (r.passed) return ::testing::AssertionSuccess() << what << ": " << r.message;
  return ::testing::AssertionFailure() << what << ": " << r.message;
}

// The scalar loss L = sum(out * upstream) whose gradient with respect to out is `upstream`.
inline double weighted_sum(const std::vector<double>& out, const std::vector<double>& upstream) {
  double sum = 0.0;
  for (std::size_t i = 0; i < out.size(); ++i) sum += out[i] * upstream[i];
  return sum;
}

}  // namespace cnnrt::test
