// Every layer type a model file may name, in the order error messages list them. A new kind of
// layer adds its unit's factory here (and nowhere else outside host/layers/ and its kernels).
#include <fmt/format.h>

#include "cnnrt/error.hpp"
#include "host/layer.hpp"

namespace cnnrt {

std::shared_ptr<const LayerUnit> make_conv2d_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_activation_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_pool_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_dense_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_dropout_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_batch_norm_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_global_avg_pool_unit(const LayerSpec&, const std::string&);

namespace {

std::vector<LayerType>& registered_types() {
  static std::vector<LayerType> types = {
      {"conv2d", "conv", "conv", make_conv2d_unit},
      {"relu", "activation", "relu", make_activation_unit},
      {"leaky_relu", "activation", "leaky_relu", make_activation_unit},
      {"sigmoid", "activation", "sigmoid", make_activation_unit},
      {"max_pool", "pool", "pool", make_pool_unit},
      {"avg_pool", "pool", "pool", make_pool_unit},
      {"global_avg_pool", "pool", "pool", make_global_avg_pool_unit},
      {"dense", "fc", "fc", make_dense_unit},
      {"dropout", "dropout", "dropout", make_dropout_unit},
      {"batch_norm", "bn", "bn", make_batch_norm_unit},
  };
  return types;
}

}  // namespace

const std::vector<LayerType>& layer_types() {
  return registered_types();
}

void register_layer_type(const LayerType& type) {
  for (const LayerType& known : registered_types())
    if (std::string(known.type) == type.type)
      throw Error(fmt::format("layer type '{}' is registered already", type.type));
  registered_types().push_back(type);
}

}  // namespace cnnrt
