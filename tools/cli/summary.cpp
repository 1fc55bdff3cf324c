// `cnnrt summary`: the model as a table of shapes, parameters and forward FLOPs.
#include <fmt/format.h>

#include "cnnrt/network.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

void add_summary_command(CLI::App& app) {
  auto model = std::make_shared<std::string>("lenet5");
  auto batch = std::make_shared<int>(1);
  CLI::App* cmd = app.add_subcommand("summary",
                                     "Print the model's layers, shapes, parameters "
                                     "and FLOPs");
  add_model_option(cmd, *model, "Preset name or JSON file");
  cmd->add_option("--batch", *batch, "Batch size for the FLOP totals")
      ->check(positive_number())
      ->capture_default_str();
  cmd->callback([model, batch] {
    const Network network = load_network(*model);
    const std::vector<LayerCost> costs = layer_costs(network);
    fmt::print("{} (input {}, {} classes)\n", network.name(), network.input().to_string(),
               network.classes());
    fmt::print("{:<10} {:<22} {:>12} {:>12} {:>14} {:>18}\n", "layer", "kind", "output", "params",
               "forward FLOPs", "as dense: params");
    std::int64_t total_params = 0, total_flops = 0;
    for (const LayerCost& cost : costs) {
      total_params += cost.parameters;
      total_flops += cost.flops;
      fmt::print("{:<10} {:<22} {:>12} {:>12} {:>14} {:>18}\n", cost.name, cost.description,
                 cost.output.to_string(), cost.parameters, cost.flops,
                 cost.dense_equivalent > 0 ? std::to_string(cost.dense_equivalent) : "");
    }
    fmt::print(
        "total: {} parameters ({:.2f} MB as float32), {} forward FLOPs per image, {} "
        "per batch of {}\n",
        total_params, total_params * 4.0 / 1e6, total_flops, total_flops * *batch, *batch);
    fmt::print(
        "A convolution sees only its window (local connection) and reuses one kernel "
        "across the map (weight sharing); 'as dense' is what a fully connected layer "
        "between the same input and output would need.\n");
  });
}

}  // namespace cnnrt::cli
