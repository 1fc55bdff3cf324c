// Every layer type a model file may name, in the order error messages list them. A new kind of
// layer adds its unit's factory here (and nowhere else outside host/layers/ and its kernels).
#include "host/layer.hpp"

namespace cnnrt {

std::shared_ptr<const LayerUnit> make_conv2d_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_activation_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_pool_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_dense_unit(const LayerSpec&, const std::string&);
std::shared_ptr<const LayerUnit> make_dropout_unit(const LayerSpec&, const std::string&);

const std::vector<LayerType>& layer_types() {
  static const std::vector<LayerType> kTypes = {
      {"conv2d", "conv", "conv", make_conv2d_unit},
      {"relu", "activation", "relu", make_activation_unit},
      {"leaky_relu", "activation", "leaky_relu", make_activation_unit},
      {"sigmoid", "activation", "sigmoid", make_activation_unit},
      {"max_pool", "pool", "pool", make_pool_unit},
      {"avg_pool", "pool", "pool", make_pool_unit},
      {"dense", "fc", "fc", make_dense_unit},
      {"dropout", "dropout", "dropout", make_dropout_unit},
  };
  return kTypes;
}

}  // namespace cnnrt
