#pragma once
// Whole-network gradient checks on one batch: the CUDA backend against the CPU backend, or CPU
// backpropagation (in double) against central finite differences.
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/export.hpp"
#include "cnnrt/network.hpp"

namespace cnnrt {

struct CNNRT_API GradcheckOptions {
  enum class Reference { cpu, fd };
  Reference reference = Reference::cpu;
  int batch = 8;
  std::uint64_t seed = 1;
  std::string weights_path;       // start from these weights instead of the seeded initialisation
  std::string data_dir;           // take the batch from this data set's test split when it fits the
                                  // model's input; otherwise (or when empty) seeded random inputs
  int fd_points_per_tensor = 24;  // finite differences: elements checked per parameter tensor
  std::string dump_path;          // write batch, parameters, gradients and loss (safetensors)
};

struct CNNRT_API TensorCheck {
  std::string name;
  std::int64_t compared = 0;  // elements compared
  std::int64_t skipped = 0;   // finite differences: points at a ReLU kink or max-pool tie
  double max_abs_error = 0;
  double max_rel_error = 0;
  double max_abs_reference = 0;
  bool passed = false;  // within tolerance and not all zero
};

struct CNNRT_API GradcheckReport {
  std::string reference;  // "cuda vs cpu" or "cpu (double) vs finite differences"
  std::string batch_source;
  double loss = 0;
  std::vector<TensorCheck> tensors;
  bool passed = false;
};

// Tolerances: CUDA vs CPU (float both): |gpu - cpu| <= kGpuAtolFraction * max|cpu| + kGpuRtol *
// |cpu| per tensor; finite differences (double): |analytic - numeric| <= kFdAtol + kFdRtol *
// max(|a|, |n|), numeric the central difference with step kFdStep. A point is skipped as a kink
// (ReLU at 0, a max-pool tie) when its one-sided slopes f and b disagree by more than
// kFdKinkAtol + kFdKinkRtol * max(|f|, |b|); a tensor fails when more than kFdMaxSkippedFraction
// of its points were skipped, or its gradient is all zeros.
inline constexpr double kGpuAtolFraction = 1e-4;
inline constexpr double kGpuRtol = 1e-3;
inline constexpr double kFdStep = 1e-6;
inline constexpr double kFdAtol = 1e-9;
inline constexpr double kFdRtol = 1e-5;
inline constexpr double kFdKinkAtol = 1e-7;
inline constexpr double kFdKinkRtol = 1e-3;
inline constexpr double kFdMaxSkippedFraction = 0.1;

CNNRT_API GradcheckReport gradcheck(const Network& network, const GradcheckOptions& options);

}  // namespace cnnrt
