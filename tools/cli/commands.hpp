#pragma once
// Each `cnnrt` subcommand lives in its own file and registers itself on the app here. A command's
// callback does the work and throws cnnrt::Error on failure; main() maps errors to exit codes:
// 0 success, 1 error (one line "cnnrt: error: ..." on stderr), 2 usage error, and ExitCode's
// own code (128 + the signal when a signal stopped training).
#include <CLI/CLI.hpp>

#include "cnnrt/error.hpp"

namespace cnnrt::cli {

// An error that ends the tool with its own exit code instead of 1.
class ExitCode : public Error {
 public:
  ExitCode(const std::string& message, int code) : Error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// A training run that a stop request ended (every rank of a distributed run stops at the same
// step).
class StoppedRun : public ExitCode {
 public:
  using ExitCode::ExitCode;
};

void add_info_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_gradcheck_command(CLI::App& app);
void add_summary_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_filter_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_export_command(CLI::App& app);

}  // namespace cnnrt::cli
