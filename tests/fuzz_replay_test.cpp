// The fuzzers' seed corpora and past crash inputs (tests/fuzz/corpus/<target>/ and
// tests/fuzz/regressions/<target>/), replayed through the same functions the fuzzers call
// (tests/fuzz/targets.hpp), so the normal suite keeps every input a fuzzer once broke the
// parsers with. tests/fuzz/expected.tsv records each file's outcome, worked out from the file's
// bytes by hand: "ok", or a phrase of the cnnrt::Error it must end in. A file without an entry
// fails, so that a new input comes with its expectation.
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "tests/fuzz/targets.hpp"
#include "tests/test_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;

fs::path fuzz_dir() {
  return fs::path(test::test_data_dir()).parent_path() / "fuzz";
}

// expected.tsv: "<path under tests/fuzz>\t<ok | phrase>"; '#' starts a comment line.
std::map<std::string, std::string> expected_outcomes() {
  std::map<std::string, std::string> outcomes;
  std::ifstream in(fuzz_dir() / "expected.tsv");
  EXPECT_TRUE(in.good()) << "cannot read " << (fuzz_dir() / "expected.tsv");
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) {
      ADD_FAILURE() << "expected.tsv: no tab in '" << line << "'";
      continue;
    }
    outcomes[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return outcomes;
}

using Target = void (*)(const std::uint8_t*, std::size_t);

// "ok", or the message of the cnnrt::Error the input ends in.
std::string outcome(Target target, const std::vector<std::uint8_t>& bytes) {
  try {
    target(bytes.data(), bytes.size());
  } catch (const Error& e) {
    return e.what();
  }
  return "ok";
}

class FuzzReplay : public ::testing::TestWithParam<const char*> {};

TEST_P(FuzzReplay, EveryInputEndsAsRecorded) {
  const std::string target_name = GetParam();
  const std::map<std::string, Target> targets = {{"idx", &fuzz::idx},
                                                 {"safetensors", &fuzz::safetensors},
                                                 {"model_file", &fuzz::model_file},
                                                 {"cifar", &fuzz::cifar},
                                                 {"image_decode", &fuzz::image_decode},
                                                 {"image_cache", &fuzz::image_cache}};
  const Target target = targets.at(target_name);
  const auto expected = expected_outcomes();
  int replayed = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fuzz_dir() / kind / target_name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = fs::relative(entry.path(), fuzz_dir()).string();
      SCOPED_TRACE(name);
      const auto it = expected.find(name);
      if (it == expected.end()) {
        ADD_FAILURE() << name << " has no line in tests/fuzz/expected.tsv";
        continue;
      }
      std::string result;
      try {
        result = outcome(target, test::read_bytes(entry.path().string()));
      } catch (const std::exception& e) {  // the bug the fuzzer reported, if it is back
        ADD_FAILURE() << "not a cnnrt::Error: " << e.what();
        continue;
      }
      if (it->second == "ok")
        EXPECT_EQ(result, "ok");
      else
        EXPECT_TRUE(test::contains(result, it->second));
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0) << "no inputs for " << target_name << " under " << fuzz_dir();
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay,
                         ::testing::Values("idx", "safetensors", "model_file", "cifar",
                                           "image_decode", "image_cache"));

}  // namespace
}  // namespace cnnrt
