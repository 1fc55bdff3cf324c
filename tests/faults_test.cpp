// `cnnrt train` when things go wrong, run as a process on the CPU over a small synthetic MNIST-
// format directory: a diverging run names the epoch and step; SIGINT / SIGTERM stop after the
// step in flight with a checkpoint that resumes bit-identically (a second signal kills); output
// paths that cannot be written (missing directory, a file as parent, a read-only directory, a
// full disk) fail with the path and the system's reason and leave the previous checkpoint as it
// was; a batch too large for memory names the bytes; two runs with one seed write the same bytes.
#include <fmt/format.h>
#include <sys/resource.h>

#include <cctype>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cnnrt/device.hpp"
#include "tests/model_util.hpp"
#include "tests/test_util.hpp"
#include "tests/tool_util.hpp"

namespace cnnrt {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// 1024 training images at batch 16: 64 steps per epoch, a few milliseconds each on one thread.
constexpr int kTrainImages = 1024;
constexpr int kBatch = 16;
constexpr int kSteps = kTrainImages / kBatch;
// Generous: the machine running the tests may be busy.
constexpr auto kToolTimeout = 120s;

class FaultsTest : public test::ScratchDirTest {
 protected:
  FaultsTest() : ScratchDirTest("faults_test") {
    fs::create_directory(dir() / "data");
    test::write_synthetic_mnist_dir(path("data"), kTrainImages, 128);
  }

  // `train` on the CPU over the synthetic data at `batch`, then `extra`.
  std::vector<std::string> train_args(const std::vector<std::string>& extra,
                                      int batch = kBatch) const {
    // The plain-loop reference: the signal tests time their signals inside a step, which the
    // fast path finishes too soon.
    std::vector<std::string> args = {
        "train",      "--device", "reference",           "--threads", "1", "--data",
        path("data"), "--batch",  std::to_string(batch), "--seed",    "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  static test::ToolRun run(const std::vector<std::string>& args,
                           const test::ToolProcess::Options& options = {}) {
    test::ToolProcess process(args, options);
    return process.finish();
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find_first_of("\r\n", begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) lines.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return lines;
}

// The lines that start with "cnnrt: error:" (exactly one is expected).
std::vector<std::string> error_lines(const std::string& output) {
  std::vector<std::string> found;
  for (const std::string& line : lines_of(output))
    if (line.rfind("cnnrt: error:", 0) == 0) found.push_back(line);
  return found;
}

// Sends `signal` once `text` shows in the output, waits for the end and checks the exit status;
// returns the one error line ("" with a failure when there is not exactly one).
std::string stop_on(test::ToolProcess& process, const std::string& text, int signal,
                    int exit_code) {
  if (!process.wait_for(text, kToolTimeout)) {
    ADD_FAILURE() << "no '" << text << "' in: " << process.output();
    return "";
  }
  process.send(signal);
  const test::ToolRun stopped = process.finish();
  EXPECT_EQ(stopped.exit_code, exit_code) << stopped.output;
  const std::vector<std::string> errors = error_lines(stopped.output);
  if (errors.size() == 1) return errors[0];
  ADD_FAILURE() << "expected one error line in: " << stopped.output;
  return "";
}

TEST_F(FaultsTest, DivergenceNamesEpochAndStepAndKeepsTheCheckpoint) {
  const std::string checkpoint = path("c.safetensors");
  const std::string metrics = path("m.csv");
  const test::ToolRun good =
      run(train_args({"--epochs", "1", "--checkpoint", checkpoint, "--metrics", metrics}));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  const std::vector<std::uint8_t> good_bytes = test::read_bytes(checkpoint);
  ASSERT_FALSE(good_bytes.empty());

  const test::ToolRun bad = run(train_args({"--epochs", "3", "--lr", "1e6", "--resume", checkpoint,
                                            "--checkpoint", checkpoint, "--metrics", metrics}));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  const std::vector<std::string> errors = error_lines(bad.output);
  ASSERT_EQ(errors.size(), 1u) << bad.output;
  const long long step = test::number_after(errors[0], "diverged in epoch 2 at step ");
  EXPECT_TRUE(test::contains(errors[0], fmt::format("at step {} of 64", step)));
  EXPECT_GE(step, 1);
  EXPECT_LE(step, kSteps);
  // The library says TrainOptions::optimizer.lr; the tool names its flag.
  EXPECT_TRUE(test::contains(errors[0], checkpoint + " is kept; try a smaller --lr"));
  EXPECT_FALSE(test::contains(errors[0], "TrainOptions"));
  EXPECT_EQ(test::read_bytes(checkpoint), good_bytes);
  EXPECT_FALSE(fs::exists(checkpoint + ".tmp"));
  EXPECT_EQ(test::metrics_rows_without_timing(metrics).size(), 2u);  // header and epoch 1 only
}

// Resuming a run that already has the epochs asked for is an error naming the flag to raise, and
// leaves the checkpoint as it was.
TEST_F(FaultsTest, ResumingAFinishedRunNamesTheEpochsFlag) {
  const std::string checkpoint = path("done.safetensors");
  const test::ToolRun done = run(train_args({"--epochs", "1", "--checkpoint", checkpoint}));
  ASSERT_EQ(done.exit_code, 0) << done.output;
  const std::vector<std::uint8_t> done_bytes = test::read_bytes(checkpoint);

  const test::ToolRun again =
      run(train_args({"--epochs", "1", "--resume", checkpoint, "--checkpoint", checkpoint}));
  EXPECT_EQ(again.exit_code, 1) << again.output;
  const std::vector<std::string> errors = error_lines(again.output);
  ASSERT_EQ(errors.size(), 1u) << again.output;
  EXPECT_EQ(errors[0], "cnnrt: error: " + checkpoint +
                           " already has 1 epochs; ask for more than that with --epochs (now 1)");
  EXPECT_EQ(test::read_bytes(checkpoint), done_bytes);
}

// SIGINT from a terminal while epoch 2 runs: the run stops after the step in flight, writes a
// checkpoint that records the position, exits 130 and says how to resume; resuming gives the
// same final checkpoint and metrics as an uninterrupted run.
TEST_F(FaultsTest, SigintStopsInsideAnEpochAndResumeIsBitIdentical) {
  const test::ToolRun straight =
      run(train_args({"--epochs", "3", "--checkpoint", path("straight.safetensors"), "--metrics",
                      path("straight.csv")}));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  const std::string checkpoint = path("c.safetensors");
  const std::vector<std::string> args =
      train_args({"--epochs", "3", "--checkpoint", checkpoint, "--metrics", path("m.csv")});
  test::ToolProcess::Options on_terminal;
  on_terminal.terminal = true;  // the progress bar shows where the run is
  test::ToolProcess process(args, on_terminal);
  // The bar is drawn every 8 steps: epoch 2 has taken at least 8 of its 64 steps.
  const std::string error = stop_on(process, "epoch 2/3 [", SIGINT, 130);
  const long long step = test::number_after(error, "interrupted in epoch 2 after step ");
  EXPECT_GE(step, 8);
  EXPECT_LE(step, kSteps);
  EXPECT_EQ(error, fmt::format("cnnrt: error: interrupted in epoch 2 after step {} of 64 (SIGINT); "
                               "checkpoint written to {}; resume with --resume {}",
                               step, checkpoint, checkpoint));
  EXPECT_FALSE(fs::exists(checkpoint + ".tmp"));

  std::vector<std::string> resume_args = args;
  resume_args.insert(resume_args.end(), {"--resume", checkpoint});
  const test::ToolRun resumed = run(resume_args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(test::contains(resumed.output, "resumed from " + checkpoint +
                                                 " in epoch 2 after step " + std::to_string(step)));
  EXPECT_EQ(test::read_bytes(checkpoint), test::read_bytes(path("straight.safetensors")));
  const std::vector<std::string> rows = test::metrics_rows_without_timing(path("m.csv"));
  EXPECT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows, test::metrics_rows_without_timing(path("straight.csv")));
}

TEST_F(FaultsTest, SigtermStopsWithExitStatus143) {
  test::ToolProcess process(train_args({"--epochs", "3"}));
  const std::string error = stop_on(process, "epoch 1/3", SIGTERM, 143);
  const long long epoch = test::number_after(error, "interrupted in epoch ");
  EXPECT_TRUE(epoch == 2 || epoch == 3) << error;
  const long long step = test::number_after(error, " after step ");
  EXPECT_TRUE(test::contains(
      error,
      fmt::format("interrupted in epoch {} after step {} of 64 (SIGTERM); no checkpoint written",
                  epoch, step)));
}

// The first signal asks for a stop after the step in flight; a second one, while that step still
// runs, kills the process at once. One step over all 1024 images takes long enough (about a
// second on one thread) for both to land inside it.
TEST_F(FaultsTest, SecondSignalKillsAtOnce) {
  test::ToolProcess process(
      train_args({"--epochs", "5", "--checkpoint", path("c.safetensors")}, kTrainImages));
  ASSERT_TRUE(process.wait_for("epoch 1/5", kToolTimeout)) << process.output();
  const std::vector<std::uint8_t> after_epoch_1 = test::read_bytes(path("c.safetensors"));
  std::this_thread::sleep_for(100ms);  // inside epoch 2's one step
  process.send(SIGTERM);
  std::this_thread::sleep_for(100ms);
  process.send(SIGINT);
  const test::ToolRun killed = process.finish();
  EXPECT_EQ(killed.signal, SIGINT) << "exit " << killed.exit_code << ": " << killed.output;
  EXPECT_TRUE(error_lines(killed.output).empty()) << killed.output;
  EXPECT_EQ(test::read_bytes(path("c.safetensors")), after_epoch_1);
}

TEST_F(FaultsTest, CheckpointPathsThatCannotBeCreatedFailFast) {
  test::write_text(path("file"), "a regular file");
  const struct {
    std::string option, target, reason;
  } cases[] = {
      {"--checkpoint", path("missing/c.safetensors"), "No such file or directory"},
      {"--checkpoint", path("file/c.safetensors"), "Not a directory"},
      {"--metrics", path("missing/m.csv"), "No such file or directory"},
      {"--metrics", path("file/m.csv"), "Not a directory"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.option + " " + c.target);
    const test::ToolRun r = run(train_args({"--epochs", "1", c.option, c.target}));
    EXPECT_EQ(r.exit_code, 1) << r.output;
    const std::vector<std::string> errors = error_lines(r.output);
    ASSERT_EQ(errors.size(), 1u) << r.output;
    EXPECT_TRUE(test::contains(errors[0], c.target));
    EXPECT_TRUE(test::contains(errors[0], c.reason));
    EXPECT_FALSE(test::contains(r.output, "training lenet5")) << "should fail before loading";
  }
  EXPECT_FALSE(fs::exists(path("missing")));
}

// A directory the tool may not write to. Root writes anywhere, so as root the tool runs as user
// nobody (65534) through setpriv; otherwise the directory is made read-only.
TEST_F(FaultsTest, ReadOnlyDirectoryFailsFastAndKeepsTheCheckpoint) {
  const std::string ro = path("ro");
  fs::create_directory(ro);
  const std::string checkpoint = ro + "/c.safetensors";
  const test::ToolRun good = run(train_args({"--epochs", "1", "--checkpoint", checkpoint}));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  const std::vector<std::uint8_t> good_bytes = test::read_bytes(checkpoint);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                          fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  test::ToolProcess::Options options;
  if (::geteuid() == 0) {
    if (std::system("setpriv --version >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "running as root without setpriv: no way to be refused a write";
    options.prefix = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  const test::ToolRun r = run(
      train_args({"--epochs", "2", "--resume", checkpoint, "--checkpoint", checkpoint}), options);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::vector<std::string> errors = error_lines(r.output);
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_TRUE(test::contains(errors[0], checkpoint));
  EXPECT_TRUE(test::contains(errors[0], "Permission denied"));
  EXPECT_EQ(test::read_bytes(checkpoint), good_bytes);
  EXPECT_FALSE(fs::exists(checkpoint + ".tmp"));
  fs::permissions(ro, fs::perms::owner_all);  // so that the scratch directory can be removed
}

// A full disk, simulated with a file size limit: the write of the next checkpoint fails with
// EFBIG (SIGXFSZ ignored), the error names the file and the reason, the old checkpoint stays.
constexpr rlim_t kFileSizeLimit = 64 * 1024;  // a LeNet-5 checkpoint is ~494 KB
void limit_file_size() {
  const rlimit limit{kFileSizeLimit, kFileSizeLimit};
  ::setrlimit(RLIMIT_FSIZE, &limit);
  ::signal(SIGXFSZ, SIG_IGN);
}

TEST_F(FaultsTest, FullDiskAtSaveKeepsThePreviousCheckpoint) {
  const std::string checkpoint = path("c.safetensors");
  const test::ToolRun good = run(train_args({"--epochs", "1", "--checkpoint", checkpoint}));
  ASSERT_EQ(good.exit_code, 0) << good.output;
  const std::vector<std::uint8_t> good_bytes = test::read_bytes(checkpoint);
  ASSERT_GT(good_bytes.size(), kFileSizeLimit);

  test::ToolProcess::Options options;
  options.in_child = limit_file_size;
  const test::ToolRun r = run(
      train_args({"--epochs", "2", "--resume", checkpoint, "--checkpoint", checkpoint}), options);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::vector<std::string> errors = error_lines(r.output);
  ASSERT_EQ(errors.size(), 1u) << r.output;
  // The check before training passes (it writes nothing); the save after epoch 2 fails.
  EXPECT_TRUE(test::contains(errors[0], checkpoint + ".tmp: write failed: File too large"));
  EXPECT_TRUE(test::contains(errors[0], "the previous " + checkpoint + " is untouched"));
  EXPECT_EQ(test::read_bytes(checkpoint), good_bytes);
  EXPECT_FALSE(fs::exists(checkpoint + ".tmp"));
}

// LeNet-5's arena per sample, in 4-byte words (tests/training_test.cpp has the breakdown).
constexpr std::int64_t kLeNet5BytesPerSample = 4 * (784 + 1 + 2 * 14602 + 1176 + 400);

std::int64_t bytes_named_in(const std::string& message) {
  // The number just before the first " bytes".
  const std::size_t end = message.find(" bytes");
  if (end == std::string::npos) return -1;
  std::size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(message[begin - 1]))) --begin;
  return begin == end ? -1 : std::stoll(message.substr(begin, end - begin));
}

void expect_out_of_memory(const test::ToolRun& r, const std::string& memory, int batch) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::vector<std::string> errors = error_lines(r.output);
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_TRUE(test::contains(errors[0], "out of " + memory + " memory"));
  EXPECT_GE(bytes_named_in(errors[0]), batch * kLeNet5BytesPerSample) << errors[0];
}

TEST_F(FaultsTest, BatchTooLargeForHostMemoryNamesTheBytes) {
  constexpr int kHuge = 100000000;
  expect_out_of_memory(run(train_args({"--epochs", "1"}, kHuge)), "host", kHuge);
}

TEST_F(FaultsTest, BatchTooLargeForDeviceMemoryNamesTheBytes) {
  CNNRT_REQUIRE_GPU();
  constexpr int kHuge = 100000000;
  const test::ToolRun r = run({"train", "--device", "cuda", "--data", path("data"), "--epochs", "1",
                               "--batch", std::to_string(kHuge)});
  expect_out_of_memory(r, "device", kHuge);
  EXPECT_TRUE(test::contains(r.output, " free of "));
}

// Two CPU runs with one seed write the same checkpoint bytes and the same metrics (timing columns
// aside). The thread count is part of the recipe: the CPU weight-gradient sums add per-thread
// partial sums, so another --threads gives other rounding.
TEST_F(FaultsTest, TwoCpuRunsWithOneSeedAreByteIdentical) {
  for (const char* name : {"a", "b"}) {
    const test::ToolRun r =
        run(train_args({"--epochs", "2", "--checkpoint", path(std::string(name) + ".safetensors"),
                        "--metrics", path(std::string(name) + ".csv")}));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  const std::vector<std::uint8_t> a = test::read_bytes(path("a.safetensors"));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, test::read_bytes(path("b.safetensors")));
  const std::vector<std::string> rows = test::metrics_rows_without_timing(path("a.csv"));
  EXPECT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows, test::metrics_rows_without_timing(path("b.csv")));
}

}  // namespace
}  // namespace cnnrt
