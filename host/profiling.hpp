#pragma once
// Hooks for Nsight Systems and Nsight Compute: NVTX ranges that name what the host is doing
// (epochs, steps, each layer's forward and backward), and the CUDA profiler's capture switch, so
// `nsys profile --capture-range=cudaProfilerApi` records only the chosen steps.
#include <cstdint>
#include <string>

#include "cnnrt/profiling.hpp"  // ProfileSteps

namespace cnnrt {

// One NVTX range on the calling thread: pushed on construction, popped on destruction. With no
// profiler attached an NVTX call is a test of a null pointer, so ranges stay in release builds.
class ScopedRange {
 public:
  explicit ScopedRange(const char* name);
  explicit ScopedRange(const std::string& name);
  ~ScopedRange();
  ScopedRange(const ScopedRange&) = delete;
  ScopedRange& operator=(const ScopedRange&) = delete;
};

// cudaProfilerStart / cudaProfilerStop; a refusal (no device, say) throws cnnrt::Error.
void start_cuda_profiler();
void stop_cuda_profiler();

// Starts the CUDA profiler before the first step of `steps` and stops it after the last, or on
// destruction when the run ends inside the window. With empty steps it never calls CUDA.
class ProfilerCapture {
 public:
  explicit ProfilerCapture(ProfileSteps steps) : steps_(steps) {}
  ~ProfilerCapture();  // stops a capture still running; never throws
  ProfilerCapture(const ProfilerCapture&) = delete;
  ProfilerCapture& operator=(const ProfilerCapture&) = delete;

  void before_step(std::int64_t step);
  void after_step(std::int64_t step);
  bool capturing() const { return capturing_; }
  const ProfileSteps& steps() const { return steps_; }

 private:
  ProfileSteps steps_;
  bool capturing_ = false;
};

}  // namespace cnnrt
