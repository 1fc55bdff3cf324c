#pragma once
// Each `cnnrt` subcommand lives in its own file and registers itself on the app here. A command's
// callback does the work and throws cnnrt::Error on failure; main() maps errors to exit codes:
// 0 success, 1 error (one line "cnnrt: error: ..." on stderr), 2 usage error.
#include <CLI/CLI.hpp>

namespace cnnrt::cli {

void add_info_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_gradcheck_command(CLI::App& app);
void add_summary_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_filter_command(CLI::App& app);
void add_predict_command(CLI::App& app);

}  // namespace cnnrt::cli
