#pragma once
// The one finite-difference gradient checker: `cnnrt gradcheck --reference fd` runs it per
// parameter tensor of a whole model, and the CPU kernel tests (tests/gradient_check.hpp) per
// kernel input. Internal: in the static archive, not exported from libcnnrt.so.
//
// For each point i it compares the analytic dL/dx_i with the central difference
//   numeric = (L(x + h e_i) - L(x - h e_i)) / 2h
// and passes it when |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) (the max:
// the central difference is no more the truth than the analytic value is).
//
// Kinks. A point within h of a kink (ReLU at 0, a max-pool tie changing hands) is skipped: there
// the one-sided slopes f = (L(x+h) - L(x)) / h and b = (L(x) - L(x-h)) / h disagree by the part
// of the slope jump that the kink covers, and the central difference (f + b) / 2 is off by half
// of |f - b| from the side the analytic gradient takes. Skipping every point where
//   |f - b| > kink_atol + kink_rtol * max(|f|, |b|)
// therefore means a kink that is not skipped moves the central difference by at most half that
// tolerance. At smooth points f - b is only h L'' plus rounding (about 2 eps |L| / h), which the
// kink tolerance has to stay above or smooth points are skipped: that is why it is looser than
// the gradient's. An unskipped kink between the two shows as a failure, never as a pass, and the
// skip decision reads the loss alone, never the analytic gradient, so it cannot hide a wrong one.
// The check fails when more than `max_skipped_fraction` of the points were skipped (too few left
// to trust), and when the analytic gradient is all zeros (finite differences agree with a dead
// gradient, which must not count as a pass).
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "cnnrt/gradcheck.hpp"

namespace cnnrt {

// The defaults are the documented ones of include/cnnrt/gradcheck.hpp.
struct FdTolerances {
  double step = kFdStep;  // h
  double atol = kFdAtol;
  double rtol = kFdRtol;
  double kink_atol = kFdKinkAtol;
  double kink_rtol = kFdKinkRtol;
  double max_skipped_fraction = kFdMaxSkippedFraction;
};

struct FdResult {
  bool passed = false;
  std::size_t checked = 0;  // points compared with the tolerance
  std::size_t skipped = 0;  // points within h of a kink, not compared
  std::size_t failed = 0;   // compared points out of tolerance
  double max_abs_error = 0;
  double max_rel_error = 0;     // |analytic - numeric| / |numeric|, where numeric != 0
  double max_abs_analytic = 0;  // over the whole gradient, not only the points: 0 is all zeros
  // The compared point with the largest |analytic - numeric| / tolerance (past 1: out of it).
  std::size_t worst_index = 0;
  double worst_analytic = 0;
  double worst_numeric = 0;
  double worst_ratio = 0;
  std::string message;  // why it failed (the first few bad points), or a summary when it passed
};

// L at x with x[index] replaced by value and every other coordinate as in x. It may change state
// to evaluate (the model's parameter slot), but must leave it as it found it.
using FdLoss = std::function<double(std::size_t index, double value)>;

// Checks the points `points` (indices into x); the second form checks every point.
FdResult fd_check_gradient(const std::vector<double>& x, const std::vector<double>& analytic,
                           const FdLoss& loss, const std::vector<std::size_t>& points,
                           const FdTolerances& tolerances = {});
FdResult fd_check_gradient(const std::vector<double>& x, const std::vector<double>& analytic,
                           const FdLoss& loss, const FdTolerances& tolerances = {});

}  // namespace cnnrt
