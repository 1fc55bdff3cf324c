// The `cnnrt` command: train, evaluate, check gradients, benchmark, filter images, export, describe
// the build. Exit codes:
//   0    success
//   1    an error while running: "cnnrt: error: <message>", one line on stderr (a missing device
//        or file, an unwritable path, a diverged run, a batch that does not fit in memory, ...)
//   2    a usage error found while parsing (an unknown option or command, a value a check
//        rejects: --batch 0, a negative --lr, an unknown --schedule or --init): the same one line,
//        then "run 'cnnrt <command> --help' for usage"
//   130, 143  `train` stopped by SIGINT or SIGTERM (128 + the signal), after writing a
//        checkpoint when --checkpoint is given; the message says where and how to resume
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

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
  cnnrt::cli::add_export_command(app);
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
    // CLI11's own report spans lines and another format; the tool's is one line, then where to
    // look, for the command that was being parsed.
    std::string command = "cnnrt";
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      command += " " + sub->get_name();
    }
    std::string message = one_line(cnnrt::cli::in_flag_terms(e.what()));
    if (command == "cnnrt" && argc > 1 && argv[1][0] != '-') {
      // CLI11 says only "A subcommand is required" for a word that names none.
      std::vector<std::string> names;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        names.push_back(sub->get_name());
      message = fmt::format("unknown command '{}' (commands: {})", argv[1], fmt::join(names, ", "));
    }
    fmt::print(stderr, "cnnrt: error: {}\nrun '{} --help' for usage\n", message, command);
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    const auto* with_code = dynamic_cast<const cnnrt::cli::ExitCode*>(&e);
    const int code = dynamic_cast<const cnnrt::ValueError*>(&e) != nullptr ? 2  // a chosen value
                     : with_code != nullptr                                ? with_code->code()
                                                                           : 1;
    // Ranks of a distributed run: an error all of them raised alike (a stop, options that differ)
    // is printed once, by rank 0, and each rank ends normally. An error of one rank ends the whole
    // job, which would otherwise wait for that rank in its next sum.
    const std::shared_ptr<cnnrt::Communicator> ranks = cnnrt::active_communicator();
    const bool collective = dynamic_cast<const cnnrt::CollectiveError*>(&e) != nullptr ||
                            dynamic_cast<const cnnrt::cli::StoppedRun*>(&e) != nullptr;
    const std::string message = one_line(cnnrt::cli::in_flag_terms(e.what()));
    if (!ranks || ranks->size() == 1 || (collective && ranks->rank() == 0))
      fmt::print(stderr, "cnnrt: error: {}\n", message);
    else if (!collective)
      fmt::print(stderr, "cnnrt: error: rank {} of {}: {}\n", ranks->rank(), ranks->size(),
                 message);
    if (ranks && ranks->size() > 1 && !collective) {
      std::fflush(stderr);
      ranks->abort(code);
    }
    return code;
  }
  return 0;
}
