#pragma once
// Describing a network: layers and their hyper-parameters only, no memory. A Network is compiled
// for a device and a batch size into a Model (cnnrt/model.hpp), which checks every shape once.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnrt/activation.hpp"
#include "cnnrt/export.hpp"
#include "cnnrt/shape.hpp"

namespace cnnrt {

CNNRT_API const char* to_string(Activation kind);

// One layer as the model file describes it: its type, its name and its other fields. What the
// fields mean, and which are valid, is the business of the layer's unit (host/layers/): Network
// only stores them, so a new kind of layer needs no change here.
struct CNNRT_API LayerSpec {
  std::string type;  // the model file's "type": conv2d, relu, max_pool, dense, ...
  std::string name;  // unique; parameters are "<name>.weight", "<name>.bias", ...
  // The other fields, each as the JSON text a model file would hold: "6", "[3, 5]", "\"same\"".
  std::map<std::string, std::string> fields;

  // The JSON text of `key`, or "" when the layer has no such field.
  std::string field(const std::string& key) const;
};

class LayerUnit;  // what a layer kind is and does (host/layer.hpp)

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
  Network& batch_norm(float momentum = 0.1f, float eps = 1e-5f, std::string name = "");
  Network& global_avg_pool(std::string name = "");
  // Any registered layer type, with its model-file fields: names it if unnamed; throws
  // cnnrt::Error for an unknown type, a field its unit refuses, or a duplicate name.
  Network& add(LayerSpec layer);
  // The same, with errors about the fields starting with `where` ("model.json: layer 3").
  Network& add(LayerSpec layer, const std::string& where);

  const std::vector<LayerSpec>& layers() const { return layers_; }
  SampleShape input() const { return input_; }
  int classes() const { return classes_; }
  const std::string& name() const { return name_; }
  // The unit of each layer (opaque outside the library: host/layer.hpp).
  const std::vector<std::shared_ptr<const LayerUnit>>& units() const { return units_; }

  // Output shape of every layer for this input; throws cnnrt::Error naming the first layer whose
  // input does not fit, and the shapes involved. The last layer must produce `classes` values.
  std::vector<SampleShape> infer_shapes() const;

 private:
  SampleShape input_;
  int classes_;
  std::string name_;
  std::vector<LayerSpec> layers_;
  std::vector<std::shared_ptr<const LayerUnit>> units_;  // one per layer, built from its spec
  std::map<std::string, int> counts_;                    // per name prefix, for default names
};

// One row of `cnnrt summary`: what a layer costs at one sample.
struct CNNRT_API LayerCost {
  std::string name, description;  // "conv1", "conv 5x5 /1 same"
  SampleShape output;
  std::int64_t parameters = 0;
  std::int64_t flops = 0;             // forward, multiply and add counted separately
  std::int64_t dense_equivalent = 0;  // conv: a dense layer's parameters for the same sizes
};
CNNRT_API std::vector<LayerCost> layer_costs(const Network& network);

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
// The same network with `classes` outputs: its last layer, which must be dense, gets that many
// units (a preset fitted to a data set's class count). Throws cnnrt::Error naming the last layer
// otherwise, or when `classes` is below 2.
CNNRT_API Network with_classes(const Network& network, int classes);
// NAME of a shipped preset (lenet5, lenet5-classic, alexnet) or a path to a model file.
CNNRT_API Network load_network(const std::string& name_or_path);
CNNRT_API std::vector<std::string> preset_names();

}  // namespace cnnrt
