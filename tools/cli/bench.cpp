// `cnnrt bench`: per-layer forward/backward times, the whole step and images per second.
#include <fmt/format.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cnnrt/benchmark.hpp"
#include "cnnrt/distributed.hpp"
#include "cnnrt/error.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

void add_bench_command(CLI::App& app) {
  struct Args {
    std::string model = "lenet5", device = "auto", gemm = "tiled", json;
    int batch = 256, warmup = 10, repeats = 50, threads = 0;
    bool no_graphs = false, no_fuse = false, no_overlap = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("bench", "Time each layer, the training step and images/s");
  add_model_option(cmd, args->model, "Preset name or JSON file");
  add_device_option(cmd, args->device);
  cmd->add_option("--batch", args->batch, "Batch size")
      ->check(positive_number())
      ->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed steps first")
      ->check(non_negative_number())
      ->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "Timed repeats (the median is reported)")
      ->check(positive_number())
      ->capture_default_str();
  add_gemm_option(cmd, args->gemm);
  cmd->add_option("--threads", args->threads, "CPU backend threads (0: all cores)");
  cmd->add_flag("--no-graphs", args->no_graphs, "Do not time a graph-replayed step");
  cmd->add_flag("--no-fuse", args->no_fuse,
                "Run activations as layers of their own (time each op on its own)");
  cmd->add_flag("--no-overlap", args->no_overlap,
                "CUDA: run the weight gradients on the main stream in the whole-step times");
  cmd->add_option("--json", args->json, "Also write the report as JSON to this file ('-': stdout)");
  cmd->callback([args] {
    const Network network = load_network(args->model);
    CompileOptions o;
    o.device = resolve_device(args->device);
    o.batch_size = args->batch;
    o.gemm = parse_gemm_backend(args->gemm);
    o.cpu_threads = args->threads;
    o.cuda_graphs = !args->no_graphs;
    o.fuse_activations = !args->no_fuse;
    o.overlap_weight_gradients = !args->no_overlap;
    // Under a launcher every rank times its own model at the whole batch, then the gradient sum
    // of a training step over all of them; rank 0 reports.
    const std::shared_ptr<Communicator> ranks = launched_communicator();
    const BenchReport r = benchmark_model(network, o, args->warmup, args->repeats);
    double allreduce_ms = -1;
    std::int64_t parameters = 0;
    if (ranks) {
      for (const LayerCost& c : layer_costs(network)) parameters += c.parameters;
      allreduce_ms =
          time_gradient_sum(*ranks, std::size_t(parameters), args->warmup, args->repeats);
      if (ranks->rank() != 0) return;
    }
    std::string json = bench_report_json(r);
    if (ranks) {
      nlohmann::json report = nlohmann::json::parse(json);
      report["allreduce"] = {
          {"ranks", ranks->size()}, {"floats", parameters}, {"ms_per_step", allreduce_ms}};
      json = report.dump();
    }
    if (args->json == "-") {
      fmt::print("{}\n", json);
      return;
    }
    fmt::print("{} on {}, batch {}, median of {} repeats (times in ms{})\n", r.model, r.device,
               r.batch, r.repeats,
               r.fused_activations ? "; 'fused': run inside the layer next to it" : "");
    fmt::print("{:<12} {:<12} {:>10} {:>10}\n", "layer", "kind", "forward", "backward");
    double total_fwd = 0, total_bwd = 0;
    auto cell = [](bool fused, double ms) {
      return fused ? fmt::format("{:>10}", "fused") : fmt::format("{:>10.4f}", ms);
    };
    for (const LayerTiming& l : r.layers) {
      fmt::print("{:<12} {:<12} {} {}\n", l.name, l.kind, cell(l.forward_fused, l.forward_ms),
                 cell(l.backward_fused, l.backward_ms));
      total_fwd += l.forward_ms;
      total_bwd += l.backward_ms;
    }
    fmt::print("{:<12} {:<12} {:>10.4f}\n", "loss", "softmax-xent", r.loss_ms);
    fmt::print("{:<12} {:<12} {:>10.4f}\n", "update", "sgd", r.update_ms);
    fmt::print("{:<25} {:>10.4f} {:>10.4f}\n", "sum of layers", total_fwd, total_bwd);
    fmt::print("training step, op by op:   {:.4f} ms\n", r.step_ms);
    if (r.graph_step_ms >= 0)
      fmt::print("training step, CUDA graph: {:.4f} ms ({} graph nodes)\n", r.graph_step_ms,
                 r.graph_nodes);
    fmt::print("images per second:         {:.0f}\n", r.images_per_second);
    fmt::print("inference (forward, eval): {:.4f} ms, {:.0f} images per second\n", r.inference_ms,
               r.inference_images_per_second);
    if (ranks)
      fmt::print("gradient sum over {} ranks: {:.4f} ms a step ({} floats, {:.2f} MB; {})\n",
                 ranks->size(), allreduce_ms, parameters, double(parameters) * 4 / 1e6,
                 ranks->describe());
    fmt::print("memory: arena {:.1f} MB, data set {:.1f} MB", r.arena_bytes / 1e6,
               r.dataset_bytes / 1e6);
    if (r.device == "cuda") fmt::print(", device memory used {:.1f} MB", r.device_bytes_used / 1e6);
    fmt::print(", peak host RSS {:.1f} MB\n", r.peak_rss_bytes / 1e6);
    if (!args->json.empty()) {
      std::ofstream out(args->json);
      out << json << "\n";
      if (!out) throw Error(fmt::format("cannot write {}", args->json));
    }
  });
}

}  // namespace cnnrt::cli
