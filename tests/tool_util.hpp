#pragma once
// Running the `cnnrt` tool from a test: its exit code and everything it printed, or as a process
// that the test watches and signals while it runs. Scratch directories for its files are
// test::ScratchDir (tests/test_util.hpp).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tests/test_util.hpp"

namespace cnnrt::test {

struct ToolRun {
  int exit_code = -1;  // -1 when a signal ended it
  int signal = 0;      // the signal that ended it, if one did
  std::string output;  // stdout and stderr together
};

// Runs `cnnrt <arguments>` through the shell; arguments must already be quoted where needed.
// `environment`: shell assignments put before the command (e.g. "CUDA_VISIBLE_DEVICES=").
inline ToolRun run_tool(const std::string& arguments, const std::string& environment = "") {
  const std::string command = (environment.empty() ? "" : environment + " ") + "'" + tool_path() +
                              "' " + arguments + " 2>&1";
  ToolRun run;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed for " << command;
    return run;
  }
  char buffer[4096];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, got);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// `[prefix...] cnnrt arguments...` started without a shell, its stdout and stderr read while it
// runs. With `terminal` it runs on a pseudo-terminal (as from a shell: `train` then draws its
// progress bar). `in_child` runs in the child just before exec (only async-signal-safe calls:
// setrlimit, signal). `prefix` is looked up on PATH (e.g. {"setpriv", "--reuid=65534", ...}).
class ToolProcess {
 public:
  struct Options {
    std::vector<std::string> prefix;
    bool terminal = false;
    void (*in_child)() = nullptr;
  };

  explicit ToolProcess(const std::vector<std::string>& arguments) : ToolProcess(arguments, {}) {}
  ToolProcess(const std::vector<std::string>& arguments, const Options& options) {
    std::vector<std::string> words = options.prefix;
    words.push_back(tool_path());
    words.insert(words.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    if (options.terminal) {
      pid_ = ::forkpty(&fd_, nullptr, nullptr, nullptr);
    } else {
      int pipe_fds[2];
      if (::pipe(pipe_fds) != 0) {
        ADD_FAILURE() << "pipe failed";
        return;
      }
      pid_ = ::fork();
      if (pid_ == 0) {
        ::dup2(pipe_fds[1], STDOUT_FILENO);
        ::dup2(pipe_fds[1], STDERR_FILENO);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
      } else {
        ::close(pipe_fds[1]);
        fd_ = pipe_fds[0];
      }
    }
    if (pid_ == 0) {
      if (options.in_child != nullptr) options.in_child();
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid_ < 0) ADD_FAILURE() << "fork failed for " << words.front();
  }
  ~ToolProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  ToolProcess(const ToolProcess&) = delete;
  ToolProcess& operator=(const ToolProcess&) = delete;

  // Reads output until it contains `text` after position `from`; false when the output ends or
  // `timeout` passes first.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout, std::size_t from = 0) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(text, from) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(int(left.count()))) return false;
    }
    return true;
  }

  void send(int signal) const { ::kill(pid_, signal); }

  // Reads to the end of the output and waits for the process.
  ToolRun finish() {
    while (read_some(-1)) {
    }
    ToolRun run;
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) {
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      run.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    pid_ = -1;
    run.output = output_;
    return run;
  }

  const std::string& output() const { return output_; }

 private:
  // One read of whatever is there, waiting up to `timeout_ms` (-1: no limit); false at the end.
  bool read_some(int timeout_ms) {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready == 0) return true;  // nothing yet
    if (ready < 0) return errno == EINTR;
    char buffer[4096];
    const ssize_t got = ::read(fd_, buffer, sizeof(buffer));
    if (got <= 0) return got < 0 && errno == EINTR;  // a terminal reports its end as EIO
    output_.append(buffer, std::size_t(got));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

}  // namespace cnnrt::test
