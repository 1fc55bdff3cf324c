#pragma once
// Running the `cnnrt` tool from a test: its exit code and everything it printed. Scratch
// directories for its files are test::ScratchDir (tests/test_util.hpp).
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "tests/test_util.hpp"

namespace cnnrt::test {

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `cnnrt <arguments>` through the shell; arguments must already be quoted where needed.
inline ToolRun run_tool(const std::string& arguments) {
  const std::string command = "'" + tool_path() + "' " + arguments + " 2>&1";
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

}  // namespace cnnrt::test
