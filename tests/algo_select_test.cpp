// Algorithm selection (host/algo_select.hpp) with a fake timer: the fastest median wins, the cache
// is read back by a later selector (the timer is not called again), fixed:NAME and its errors,
// corrupt and unwritable cache files, unusable candidates.
#include "host/algo_select.hpp"

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

// Each candidate's run times in turn (cycled); counts the calls.
struct FakeTimer {
  std::map<std::string, std::vector<double>> times;
  std::map<std::string, int> calls;

  AlgoTimer timer() {
    return [this](const std::string& name) {
      const std::vector<double>& t = times.at(name);
      return t[std::size_t(calls[name]++) % t.size()];
    };
  }
  int total_calls() const {
    int total = 0;
    for (const auto& [name, count] : calls) total += count;
    return total;
  }
};

const std::vector<std::string> kCandidates = {"direct", "implicit_gemm_fp32", "implicit_gemm_tf32"};

AlgoKey conv2_key() {
  Conv2dGeometry g;
  g.n = 32, g.c = 96, g.h = 27, g.w = 27, g.k = 256, g.kh = 5, g.kw = 5;
  g.pad_top = 2, g.pad_left = 2, g.out_h = 27, g.out_w = 27;
  return {"conv2d.forward", conv2d_shape_key(g), "tf32", "NVIDIA H200"};
}

class AlgoSelectTest : public test::ScratchDirTest {
 protected:
  AlgoSelectTest() : ScratchDirTest("algo_select") {}
  std::string cache() const { return path("algos.json"); }
  AlgoWarning collect() {
    return [this](const std::string& m) { warnings.push_back(m); };
  }
  std::vector<std::string> warnings;
};

TEST_F(AlgoSelectTest, ShapeKeyNamesEveryDimension) {
  EXPECT_EQ(conv2_key().shape, "n32 c96 h27 w27 k256 5x5 s1x1 p2x2 o27x27");
}

// One outlier per candidate must not decide: the median of 5 does.
TEST_F(AlgoSelectTest, PicksTheLowestMedian) {
  FakeTimer fake;
  fake.times = {{"direct", {5.0, 5.1, 0.1, 5.2, 5.0}},               // one fast outlier: median 5.0
                {"implicit_gemm_fp32", {2.0, 2.1, 1.9, 40.0, 2.0}},  // median 2.0
                {"implicit_gemm_tf32", {3.0, 3.0, 3.0, 3.0, 3.0}}};
  AlgoSelector selector(cache(), 5, collect());
  const AlgoChoice c = selector.select(conv2_key(), kCandidates, fake.timer(), AlgoPolicy{});
  EXPECT_EQ(c.name, "implicit_gemm_fp32");
  EXPECT_FALSE(c.from_cache);
  ASSERT_EQ(c.medians_ms.size(), 3u);
  EXPECT_DOUBLE_EQ(c.medians_ms[0].second, 5.0);
  EXPECT_DOUBLE_EQ(c.medians_ms[1].second, 2.0);
  EXPECT_DOUBLE_EQ(c.medians_ms[2].second, 3.0);
  EXPECT_EQ(fake.calls["direct"], 5);
  EXPECT_EQ(fake.calls["implicit_gemm_tf32"], 5);
  EXPECT_TRUE(warnings.empty());
}

// Equal medians: the earlier candidate (the preferred one) wins.
TEST_F(AlgoSelectTest, TiesGoToTheEarlierCandidate) {
  FakeTimer fake;
  fake.times = {{"direct", {1.0}}, {"implicit_gemm_fp32", {1.0}}, {"implicit_gemm_tf32", {1.0}}};
  AlgoSelector selector("", 3, collect());
  EXPECT_EQ(selector.select(conv2_key(), kCandidates, fake.timer(), {}).name, "direct");
}

TEST_F(AlgoSelectTest, LaterRunReadsTheCacheWithoutTiming) {
  FakeTimer fake;
  fake.times = {{"direct", {4.0}}, {"implicit_gemm_fp32", {3.0}}, {"implicit_gemm_tf32", {1.0}}};
  {
    AlgoSelector first(cache(), 3, collect());
    EXPECT_EQ(first.select(conv2_key(), kCandidates, fake.timer(), {}).name, "implicit_gemm_tf32");
  }
  ASSERT_EQ(fake.total_calls(), 9);
  ASSERT_TRUE(std::filesystem::exists(cache()));
  EXPECT_FALSE(std::filesystem::exists(cache() + ".tmp"));
  const nlohmann::json doc = nlohmann::json::parse(std::ifstream(cache()));
  EXPECT_EQ(doc["choices"][conv2_key().text()]["algo"], "implicit_gemm_tf32");

  AlgoSelector second(cache(), 3, collect());
  const AlgoChoice c = second.select(conv2_key(), kCandidates, fake.timer(), {});
  EXPECT_EQ(c.name, "implicit_gemm_tf32");
  EXPECT_TRUE(c.from_cache);
  EXPECT_EQ(fake.total_calls(), 9) << "the timer ran again";

  // Another GPU, precision or shape is another key: timed afresh.
  AlgoKey other = conv2_key();
  other.gpu = "NVIDIA A100-SXM4-80GB";
  EXPECT_FALSE(second.select(other, kCandidates, fake.timer(), {}).from_cache);
  EXPECT_EQ(fake.total_calls(), 18);
  other = conv2_key();
  other.precision = "bf16";
  EXPECT_FALSE(second.select(other, kCandidates, fake.timer(), {}).from_cache);
  EXPECT_TRUE(warnings.empty());
}

// A cached name that is no longer a candidate (another build) is timed again.
TEST_F(AlgoSelectTest, CachedNameNoLongerOfferedIsRetimed) {
  FakeTimer fake;
  fake.times = {{"direct", {4.0}}, {"implicit_gemm_fp32", {3.0}}, {"implicit_gemm_tf32", {1.0}}};
  AlgoSelector(cache(), 1, collect()).select(conv2_key(), kCandidates, fake.timer(), {});
  AlgoSelector later(cache(), 1, collect());
  const AlgoChoice c =
      later.select(conv2_key(), {"direct", "implicit_gemm_fp32"}, fake.timer(), {});
  EXPECT_EQ(c.name, "implicit_gemm_fp32");
  EXPECT_FALSE(c.from_cache);
}

TEST_F(AlgoSelectTest, FixedOverrideSkipsTimingAndCache) {
  FakeTimer fake;
  AlgoSelector selector(cache(), 3, collect());
  const AlgoChoice c =
      selector.select(conv2_key(), kCandidates, fake.timer(), AlgoPolicy::parse("fixed:direct"));
  EXPECT_EQ(c.name, "direct");
  EXPECT_EQ(fake.total_calls(), 0);
  EXPECT_FALSE(std::filesystem::exists(cache()));
}

TEST_F(AlgoSelectTest, FixedOverrideOfAnUnknownNameNamesTheCandidates) {
  FakeTimer fake;
  AlgoSelector selector(cache(), 3, collect());
  try {
    selector.select(conv2_key(), kCandidates, fake.timer(), AlgoPolicy::parse("fixed:winograd"));
    FAIL() << "no error";
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(test::contains(m, "conv2d.forward"));
    EXPECT_TRUE(test::contains(m, "'winograd'"));
    EXPECT_TRUE(test::contains(m, "direct, implicit_gemm_fp32, implicit_gemm_tf32"));
    EXPECT_FALSE(test::contains(m, "--")) << "a library message names no flag";
  }
  EXPECT_EQ(fake.total_calls(), 0);
}

TEST_F(AlgoSelectTest, PolicyParsing) {
  EXPECT_FALSE(AlgoPolicy::parse("fastest").fixed);
  const AlgoPolicy p = AlgoPolicy::parse("fixed:implicit_gemm_tf32");
  EXPECT_TRUE(p.fixed);
  EXPECT_EQ(p.name, "implicit_gemm_tf32");
  for (const char* bad : {"", "fixed:", "fast", "FIXED:direct", "direct"})
    EXPECT_THROW(AlgoPolicy::parse(bad), ValueError) << "'" << bad << "'";
}

TEST_F(AlgoSelectTest, CorruptCacheIsIgnoredWithAWarningAndRewritten) {
  for (const char* junk : {"{\"format\": 1, \"choices\": ", "[1, 2, 3]", "{\"format\": 99}",
                           "\x01\x02 not json", ""}) {
    SCOPED_TRACE(junk);
    std::ofstream(cache(), std::ios::binary | std::ios::trunc) << junk;
    warnings.clear();
    FakeTimer fake;
    fake.times = {{"direct", {2.0}}, {"implicit_gemm_fp32", {1.0}}, {"implicit_gemm_tf32", {3.0}}};
    AlgoSelector selector(cache(), 1, collect());
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(test::contains(warnings[0], cache()));
    EXPECT_EQ(selector.select(conv2_key(), kCandidates, fake.timer(), {}).name,
              "implicit_gemm_fp32");
    // Rewritten whole: a fresh selector reads it without a warning.
    AlgoSelector again(cache(), 1, collect());
    EXPECT_EQ(warnings.size(), 1u);
    EXPECT_TRUE(again.select(conv2_key(), kCandidates, fake.timer(), {}).from_cache);
  }
}

// Entries with a wrong shape are dropped one by one, the rest kept.
TEST_F(AlgoSelectTest, MalformedEntriesAreSkipped) {
  nlohmann::json doc = {
      {"format", 1},
      {"choices",
       {{"bad one", {{"algo", 7}}}, {conv2_key().text(), {{"algo", "implicit_gemm_fp32"}}}}}};
  std::ofstream(cache()) << doc.dump();
  FakeTimer fake;
  AlgoSelector selector(cache(), 1, collect());
  const AlgoChoice c = selector.select(conv2_key(), kCandidates, fake.timer(), {});
  EXPECT_EQ(c.name, "implicit_gemm_fp32");
  EXPECT_TRUE(c.from_cache);
  EXPECT_EQ(fake.total_calls(), 0);
}

TEST_F(AlgoSelectTest, CacheThatIsADirectoryOrUnwritableWarnsOnly) {
  std::filesystem::create_directories(cache());  // neither readable as a file nor replaceable
  FakeTimer fake;
  fake.times = {{"direct", {2.0}}, {"implicit_gemm_fp32", {1.0}}, {"implicit_gemm_tf32", {3.0}}};
  AlgoSelector selector(cache(), 1, collect());
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_EQ(selector.select(conv2_key(), kCandidates, fake.timer(), {}).name, "implicit_gemm_fp32");
  EXPECT_EQ(warnings.size(), 2u) << "the failed write is a warning too";
  // The choice is still remembered in memory.
  EXPECT_TRUE(selector.select(conv2_key(), kCandidates, fake.timer(), {}).from_cache);
}

// A candidate whose timer reports NaN or a negative time (it cannot run this shape) is skipped;
// when none can run, the error names them.
TEST_F(AlgoSelectTest, UnusableCandidatesAreSkipped) {
  FakeTimer fake;
  fake.times = {{"direct", {9.0}},
                {"implicit_gemm_fp32", {std::numeric_limits<double>::quiet_NaN()}},
                {"implicit_gemm_tf32", {-1.0}}};
  AlgoSelector selector("", 3, collect());
  const AlgoChoice c = selector.select(conv2_key(), kCandidates, fake.timer(), {});
  EXPECT_EQ(c.name, "direct");
  EXPECT_EQ(c.medians_ms.size(), 1u);
  fake.times["direct"] = {std::numeric_limits<double>::infinity()};
  AlgoKey other = conv2_key();
  other.gpu = "another";
  try {
    selector.select(other, kCandidates, fake.timer(), {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(test::contains(e.what(), "direct, implicit_gemm_fp32, implicit_gemm_tf32"));
  }
}

// One candidate: nothing to time, nothing cached.
TEST_F(AlgoSelectTest, SingleCandidateIsNotTimed) {
  FakeTimer fake;
  AlgoSelector selector(cache(), 3, collect());
  EXPECT_EQ(selector.select(conv2_key(), {"direct"}, fake.timer(), {}).name, "direct");
  EXPECT_EQ(fake.total_calls(), 0);
  EXPECT_FALSE(std::filesystem::exists(cache()));
  EXPECT_THROW(selector.select(conv2_key(), {}, fake.timer(), {}), Error);
}

}  // namespace
}  // namespace cnnrt
