// `cnnrt export`: saved weights into other frameworks' formats. --onnx writes the inference graph
// for onnxruntime and the like (include/cnnrt/onnx.hpp); --safetensors writes the weights alone,
// which PyTorch's load_state_dict(strict=True) takes (no optimizer state).
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>

#include "cnnrt/checkpoint.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/onnx.hpp"
#include "cnnrt/trainer.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/common.hpp"

namespace cnnrt::cli {

namespace {

struct ExportArgs {
  std::string model = "lenet5";
  std::string weights;
  std::string onnx;
  std::string safetensors;
  bool softmax = false;
  std::uint64_t seed = 1;
};

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  ExportArgs& a = *args;
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Write saved weights as ONNX (--onnx: the inference graph, for onnxruntime, TensorRT, "
      "OpenCV) or as weights-only safetensors (--safetensors: what PyTorch's "
      "load_state_dict(strict=True) takes)");
  cmd->add_option("--weights", a.weights,
                  "Checkpoint or weights file (safetensors); without it, the model's initial "
                  "weights drawn from --seed");
  add_model_option(cmd, a.model,
                   "Preset name or JSON file (default: the model the weights file describes, "
                   "else lenet5)");
  cmd->add_option("--onnx", a.onnx, "Write the ONNX model here (opset 17, input [N, C, H, W])");
  cmd->add_option("--safetensors", a.safetensors,
                  "Write the weights here (parameters and batch norm statistics, PyTorch's names)");
  cmd->add_flag("--softmax", a.softmax,
                "ONNX: end with a softmax (output \"probabilities\" instead of \"logits\")");
  cmd->add_option("--seed", a.seed, "Without --weights: the seed of the initial weights")
      ->capture_default_str();
  cmd->callback([args, cmd] {
    const ExportArgs& a = *args;
    if (a.onnx.empty() && a.safetensors.empty())
      throw ExitCode("export needs --onnx FILE or --safetensors FILE (or both)", 2);
    if (a.softmax && a.onnx.empty()) throw ExitCode("--softmax needs --onnx FILE", 2);
    if (!a.onnx.empty() && !onnx_export_available())
      throw Error(
          "this build of cnnrt has no ONNX export (rebuild with libonnx-dev and "
          "libprotobuf-dev installed)");
    // Before any work: every output must be writable.
    if (!a.onnx.empty()) check_can_write(a.onnx, "ONNX file", true);
    if (!a.safetensors.empty()) check_can_write(a.safetensors, "weights file", true);
    const Network network =
        a.weights.empty() ? load_network(a.model) : network_for_weights(*cmd, a.model, a.weights);
    CompileOptions options;
    options.device = Device::cpu;
    options.batch_size = 1;
    options.seed = a.seed;
    Model model(network, options);
    if (!a.weights.empty()) load_checkpoint(a.weights, model, false);
    if (!a.onnx.empty()) {
      OnnxExportOptions onnx;
      onnx.softmax = a.softmax;
      export_onnx(model, a.onnx, onnx);
      fmt::print("wrote {} as ONNX (opset {}, output \"{}\") to {}\n", network.name(), kOnnxOpset,
                 a.softmax ? "probabilities" : "logits", a.onnx);
    }
    if (!a.safetensors.empty()) {
      save_weights(a.safetensors, model);
      fmt::print("wrote the weights of {} ({} parameters) to {}\n", network.name(),
                 model.parameter_count(), a.safetensors);
    }
  });
}

}  // namespace cnnrt::cli
