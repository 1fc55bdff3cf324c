// The `cnnrt` command: train, evaluate, check gradients, benchmark, filter images, describe the
// build. Exit codes: 0 success, 1 error, 2 usage error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cnnrt/error.hpp"
#include "tools/cli/commands.hpp"

namespace {

// Messages quote what input files hold (tensor and layer names, JSON): control characters there
// are escaped so that an error stays one line and cannot drive the terminal.
std::string one_line(const std::string& message) {
  std::string line;
  line.reserve(message.size());
  for (const char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n')
      line += "\\n";
    else if (byte < 0x20 || byte == 0x7f)
      line += fmt::format("\\x{:02x}", byte);
    else
      line += c;
  }
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cnnrt: train small convolutional networks on the GPU (CPU fallback)"};
  app.require_subcommand(1);
  cnnrt::cli::add_train_command(app);
  cnnrt::cli::add_eval_command(app);
  cnnrt::cli::add_gradcheck_command(app);
  cnnrt::cli::add_summary_command(app);
  cnnrt::cli::add_bench_command(app);
  cnnrt::cli::add_filter_command(app);
  cnnrt::cli::add_predict_command(app);
  cnnrt::cli::add_info_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "cnnrt: error: {}\n", one_line(e.what()));
    return 1;
  }
  return 0;
}
