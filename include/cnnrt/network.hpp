#pragma once
// Describing a network: layers and their hyper-parameters only, no memory. A Network is compiled
// for a device and a batch size into a Model (cnnrt/model.hpp), which checks every shape once.
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/activation.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/shape.hpp"

namespace cnnrt {

enum class LayerKind { conv2d, activation, max_pool, avg_pool, dense, dropout };

CNNRT_API const char* to_string(LayerKind kind);
CNNRT_API const char* to_string(Activation kind);

struct CNNRT_API LayerSpec {
  LayerKind kind = LayerKind::conv2d;
  std::string name;  // unique; parameters are "<name>.weight" and "<name>.bias"
  // conv2d: `filters` maps of kernel_h x kernel_w; pools: window_h x window_w
  int filters = 0;
  int kernel_h = 0, kernel_w = 0;
  int stride_h = 1, stride_w = 1;
  Padding padding;
  // activation
  Activation activation = Activation::none;
  float leaky_slope = 0.1f;
  // dense
  int units = 0;
  // dropout: probability of zeroing an element in training
  float dropout_p = 0.5f;
};

// Per-sample tensor shape, NCHW without the N. Dense outputs are [units, 1, 1].
struct CNNRT_API SampleShape {
  int c = 0, h = 0, w = 0;
  std::int64_t size() const { return std::int64_t(c) * h * w; }
  std::string to_string() const;
};

class CNNRT_API Network {
 public:
  Network(SampleShape input, int classes, std::string name = "network");

  // Each builder names the layer "<kind><index>" (conv1, fc2, ...) unless given a name.
  Network& conv2d(int filters, int kernel, int stride = 1, Padding padding = Padding::valid(),
                  std::string name = "");
  Network& conv2d(int filters, int kernel_h, int kernel_w, int stride_h, int stride_w,
                  Padding padding, std::string name = "");
  Network& activation(Activation kind, float leaky_slope = 0.1f, std::string name = "");
  Network& relu() { return activation(Activation::relu); }
  Network& leaky_relu(float slope = 0.1f) { return activation(Activation::leaky_relu, slope); }
  Network& sigmoid() { return activation(Activation::sigmoid); }
  Network& max_pool(int window, int stride, std::string name = "");
  Network& avg_pool(int window, int stride, std::string name = "");
  Network& dense(int units, std::string name = "");
  Network& dropout(float p, std::string name = "");
  Network& add(LayerSpec layer);  // names it if unnamed; throws on a duplicate name

  const std::vector<LayerSpec>& layers() const { return layers_; }
  SampleShape input() const { return input_; }
  int classes() const { return classes_; }
  const std::string& name() const { return name_; }

  // Output shape of every layer for this input; throws cnnrt::Error naming the first layer whose
  // input does not fit, and the shapes involved. The last layer must produce `classes` values.
  std::vector<SampleShape> infer_shapes() const;

 private:
  SampleShape input_;
  int classes_;
  std::string name_;
  std::vector<LayerSpec> layers_;
  int counts_[6] = {0, 0, 0, 0, 0, 0};  // per LayerKind, for default names
};

// Model files (JSON): {"name": ..., "input": [C, H, W], "classes": N, "layers": [
//   {"type": "conv2d", "name": "conv1", "filters": 6, "kernel": 5 | [kh, kw], "stride": 1 | [sh,
//   sw],
//    "padding": "valid" | "same" | P | [ph, pw]},
//   {"type": "relu" | "leaky_relu" (optional "slope") | "sigmoid"},
//   {"type": "max_pool" | "avg_pool", "window": 2, "stride": 2},
//   {"type": "dense", "name": "fc1", "units": 120},
//   {"type": "dropout", "p": 0.5} ]}
CNNRT_API Network network_from_json(const std::string& json_text, const std::string& origin);
CNNRT_API std::string network_to_json(const Network& network);
// NAME of a shipped preset (lenet5, lenet5-classic, alexnet) or a path to a model file.
CNNRT_API Network load_network(const std::string& name_or_path);
CNNRT_API std::vector<std::string> preset_names();

}  // namespace cnnrt
