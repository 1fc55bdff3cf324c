// `cnnrt gradcheck`: one batch, gradients per parameter tensor against a reference.
#include "cnnrt/gradcheck.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

void add_gradcheck_command(CLI::App& app) {
  struct Args {
    std::string model = "lenet5", weights, data = default_data_dir(), reference = "cpu", dump;
    int batch = 8;
    std::uint64_t seed = 1;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("gradcheck",
                         "Compare one batch's gradients: CUDA against CPU, or CPU against finite "
                         "differences (exit 1 when a tolerance is exceeded)");
  add_model_option(cmd, args->model, "Preset name or JSON file");
  cmd->add_option("--weights", args->weights, "Start from these weights (safetensors)");
  add_data_option(cmd, args->data, "Take the batch from this data set's test split");
  cmd->add_option("--batch", args->batch, "Batch size")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed for the initial weights")->capture_default_str();
  cmd->add_option("--reference", args->reference,
                  "cpu (CUDA against CPU) or fd (CPU against "
                  "finite differences in double)")
      ->check(CLI::IsMember({"cpu", "fd"}))
      ->capture_default_str();
  cmd->add_option("--dump", args->dump, "Write batch, parameters, gradients and loss here");
  cmd->callback([args, cmd] {
    GradcheckOptions o;
    o.reference = args->reference == "fd" ? GradcheckOptions::Reference::fd
                                          : GradcheckOptions::Reference::cpu;
    o.batch = args->batch;
    o.seed = args->seed;
    o.weights_path = args->weights;
    o.data_dir = args->data;
    // The default data directory is a convenience: without it, use seeded random inputs.
    if (cmd->count("--data") == 0 && !std::filesystem::exists(args->data)) o.data_dir.clear();
    o.dump_path = args->dump;
    const Network network = load_network(args->model);
    const GradcheckReport r = gradcheck(network, o);
    fmt::print("gradcheck {}: {}, batch {} from {}, loss {:.6f}\n", network.name(), r.reference,
               o.batch, r.batch_source, r.loss);
    fmt::print("{:<16} {:>9} {:>8} {:>12} {:>12} {:>12}  {}\n", "tensor", "compared", "skipped",
               "max |ref|", "max abs err", "max rel err", "result");
    for (const TensorCheck& t : r.tensors)
      fmt::print("{:<16} {:>9} {:>8} {:>12.4e} {:>12.4e} {:>12.4e}  {}\n", t.name, t.compared,
                 t.skipped, t.max_abs_reference, t.max_abs_error, t.max_rel_error,
                 t.passed ? "ok" : (t.max_abs_reference > 0 ? "FAIL" : "FAIL (all zero)"));
    if (!r.passed) throw Error("gradcheck failed: a gradient is out of tolerance or all zero");
    fmt::print("gradcheck passed\n");
  });
}

}  // namespace cnnrt::cli
