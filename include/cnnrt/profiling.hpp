#pragma once
// Profiling chosen training steps with Nsight (Model::set_profile_steps): the steps to bracket
// with cudaProfilerStart/Stop, so `nsys profile --capture-range=cudaProfilerApi` records only them.
#include <cstdint>
#include <string>

#include "cnnrt/export.hpp"

namespace cnnrt {

// The steps to capture, inclusive and 0-based, counted over the whole run (Model::step_counter).
struct CNNRT_API ProfileSteps {
  std::int64_t first = -1;  // < 0: capture nothing
  std::int64_t last = -1;

  bool empty() const { return first < 0; }
  bool contains(std::int64_t step) const { return !empty() && step >= first && step <= last; }
  // "A:B" with 0 <= A <= B, e.g. "100:110"; anything else throws cnnrt::Error quoting the text.
  static ProfileSteps parse(const std::string& text);
};

}  // namespace cnnrt
