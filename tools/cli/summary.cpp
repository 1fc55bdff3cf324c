// `cnnrt summary`: the model as a table of shapes, parameters and forward FLOPs.
#include <fmt/format.h>

#include "cnnrt/network.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct LayerCost {
  std::int64_t params = 0;
  std::int64_t flops = 0;             // forward, multiply and add counted separately
  std::int64_t dense_equivalent = 0;  // conv only: a dense layer's parameters for the same sizes
};

LayerCost layer_cost(const LayerSpec& s, const SampleShape& in, const SampleShape& out) {
  LayerCost cost;
  const std::int64_t outputs = out.size();
  switch (s.kind) {
    case LayerKind::conv2d: {
      const std::int64_t window = std::int64_t(in.c) * s.kernel_h * s.kernel_w;
      cost.params = window * s.filters + s.filters;
      cost.flops = 2 * window * outputs + outputs;
      cost.dense_equivalent = in.size() * outputs + outputs;
      break;
    }
    case LayerKind::dense:
      cost.params = in.size() * s.units + s.units;
      cost.flops = 2 * in.size() * s.units + s.units;
      break;
    case LayerKind::max_pool:
    case LayerKind::avg_pool:
      cost.flops = outputs * s.kernel_h * s.kernel_w;
      break;
    case LayerKind::activation:
      cost.flops = outputs * (s.activation == Activation::sigmoid ? 4 : 1);
      break;
    case LayerKind::dropout:
      cost.flops = outputs;
      break;
  }
  return cost;
}

std::string describe(const LayerSpec& s) {
  switch (s.kind) {
    case LayerKind::conv2d:
      return fmt::format("conv {}x{} /{} {}", s.kernel_h, s.kernel_w, s.stride_h,
                         s.padding.to_string());
    case LayerKind::max_pool:
    case LayerKind::avg_pool:
      return fmt::format("{} {}x{} /{}", s.kind == LayerKind::max_pool ? "max pool" : "avg pool",
                         s.kernel_h, s.kernel_w, s.stride_h);
    case LayerKind::dense:
      return "dense";
    case LayerKind::activation:
      return to_string(s.activation);
    case LayerKind::dropout:
      return fmt::format("dropout p={}", s.dropout_p);
  }
  return "";
}

}  // namespace

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
    const std::vector<SampleShape> shapes = network.infer_shapes();
    fmt::print("{} (input {}, {} classes)\n", network.name(), network.input().to_string(),
               network.classes());
    fmt::print("{:<10} {:<22} {:>12} {:>12} {:>14} {:>18}\n", "layer", "kind", "output", "params",
               "forward FLOPs", "as dense: params");
    std::int64_t total_params = 0, total_flops = 0;
    SampleShape in = network.input();
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const LayerSpec& s = network.layers()[i];
      const LayerCost cost = layer_cost(s, in, shapes[i]);
      total_params += cost.params;
      total_flops += cost.flops;
      fmt::print("{:<10} {:<22} {:>12} {:>12} {:>14} {:>18}\n", s.name, describe(s),
                 shapes[i].to_string(), cost.params, cost.flops,
                 cost.dense_equivalent > 0 ? std::to_string(cost.dense_equivalent) : "");
      in = shapes[i];
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
