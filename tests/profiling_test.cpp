// Profiling hooks: the --profile-steps parser, the capture window's start/stop decisions, and the
// CUDA profiler calls (checked: they throw without a device, succeed with one).
#include "host/profiling.hpp"

#include <gtest/gtest.h>

#include <string>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

TEST(ProfileSteps, ParsesFirstAndLast) {
  const ProfileSteps steps = ProfileSteps::parse("100:110");
  EXPECT_EQ(steps.first, 100);
  EXPECT_EQ(steps.last, 110);
  EXPECT_FALSE(steps.empty());
  EXPECT_FALSE(steps.contains(99));
  EXPECT_TRUE(steps.contains(100));
  EXPECT_TRUE(steps.contains(110));
  EXPECT_FALSE(steps.contains(111));
  const ProfileSteps single = ProfileSteps::parse("0:0");
  EXPECT_TRUE(single.contains(0));
  EXPECT_FALSE(single.contains(1));
}

TEST(ProfileSteps, DefaultIsEmpty) {
  const ProfileSteps none;
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.contains(0));
}

TEST(ProfileSteps, RejectsMalformedText) {
  for (const std::string text : {"", "5", ":5", "5:", "a:b", "-1:3", "3:-1", "1:2:3", "1.5:2",
                                 " 1:2", "99999999999999999999:1"}) {
    try {
      ProfileSteps::parse(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("'" + text + "'"), std::string::npos)
          << "message does not quote the text: " << error.what();
    }
  }
}

TEST(ProfileSteps, RejectsFirstAfterLast) {
  try {
    ProfileSteps::parse("10:9");
    ADD_FAILURE() << "accepted 10:9";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("comes after"), std::string::npos) << error.what();
  }
}

// An empty window must never touch the CUDA runtime, so it works on machines without a GPU.
TEST(ProfilerCapture, EmptyWindowNeverCaptures) {
  ProfilerCapture capture{ProfileSteps{}};
  for (int step = 0; step < 5; ++step) {
    capture.before_step(step);
    EXPECT_FALSE(capture.capturing());
    capture.after_step(step);
    EXPECT_FALSE(capture.capturing());
  }
}

TEST(ProfilerCapture, StepsBeforeTheWindowDoNotStart) {
  ProfilerCapture capture{ProfileSteps::parse("3:4")};
  for (int step = 0; step < 3; ++step) {
    capture.before_step(step);
    capture.after_step(step);
    EXPECT_FALSE(capture.capturing()) << "step " << step;
  }
}

// On a GPU the profiler switch works; without one it throws, naming the call.
TEST(CudaProfiler, StartWorksOnADeviceAndNamesTheCallWithout) {
  if (cuda_available()) {
    EXPECT_NO_THROW(start_cuda_profiler());
    EXPECT_NO_THROW(stop_cuda_profiler());
    return;
  }
  try {
    start_cuda_profiler();
    ADD_FAILURE() << "cudaProfilerStart succeeded without a CUDA device";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cudaProfilerStart"), std::string::npos)
        << error.what();
  }
}

TEST(CudaProfiler, WindowStartsAndStopsOnDevice) {
  CNNRT_REQUIRE_GPU();
  ProfilerCapture capture{ProfileSteps::parse("2:3")};
  const bool expected[] = {false, false, true, true, false, false};
  for (int step = 0; step < 6; ++step) {
    {
      ScopedRange range("step " + std::to_string(step));
      capture.before_step(step);
      EXPECT_EQ(capture.capturing(), expected[step]) << "step " << step;
    }
    capture.after_step(step);
    EXPECT_FALSE(capture.capturing() && step >= 3) << "still capturing after step " << step;
  }
  EXPECT_FALSE(capture.capturing());
}

}  // namespace
}  // namespace cnnrt
