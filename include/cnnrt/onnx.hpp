#pragma once
// ONNX export: the inference graph of a compiled model, for onnxruntime, TensorRT, OpenCV's dnn
// and the other runtimes that take ONNX. Built with the onnx library (Debian's libonnx-dev) when
// it was found at configure time (CMake option CNNRT_WITH_ONNX); otherwise export_onnx throws.
//
// The file: opset 17, one input "input" float32 [N, C, H, W] with a dynamic batch dimension "N",
// already normalised as Model::logits takes it (x = (byte / 255 - mean[c]) / std[c]); one output
// "logits" float32 [N, classes], or "probabilities" with OnnxExportOptions::softmax. Convolutions
// are Conv, pooling MaxPool / AveragePool / GlobalAveragePool, dense layers Gemm (after a Flatten
// in NCHW order), batch norm BatchNormalization with the running statistics, activations Relu,
// LeakyRelu, Sigmoid; dropout, the identity in inference, is left out. Initializers carry the
// checkpoint's names (conv1.weight, bn1.running_var, ...). The metadata (metadata_props) holds
// what a checkpoint records about the data: normalization_mean and normalization_std (comma
// lists, one value or one per channel), class_names (a JSON list, when the model has names),
// input_size "CxHxW", and the model description ("model", cnnrt's model-file JSON).
#include <string>

#include "cnnrt/export.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt {

inline constexpr int kOnnxOpset = 17;

struct CNNRT_API OnnxExportOptions {
  bool softmax = false;  // end with Softmax over the classes: output "probabilities"
};

// Whether this build can export ONNX (export_onnx throws cnnrt::Error saying so otherwise).
CNNRT_API bool onnx_export_available();

// Writes the model's inference graph with its current weights, layer state, normalisation and
// class names to `path` (through path + ".tmp", renamed into place; an unwritable path is an error
// before any work, and a failed write leaves nothing behind). Throws cnnrt::Error naming the layer
// when one has no ONNX form.
CNNRT_API void export_onnx(const Model& model, const std::string& path,
                           const OnnxExportOptions& options = {});

}  // namespace cnnrt
