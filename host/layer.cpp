#include "host/layer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "cnnrt/error.hpp"
#include "kernels/cpu/batch_norm.hpp"

namespace cnnrt {

using nlohmann::json;

json parse_model_json(const std::string& text, const std::string& too_deep) {
  const json::parser_callback_t bound_depth = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxModelFileDepth)
      throw Error(fmt::format("{} {} levels", too_deep, kMaxModelFileDepth));
    return true;
  };
  return json::parse(text, bound_depth);
}

std::string json_brief(const json& value) {
  constexpr std::size_t kMaxChars = 60;
  std::string text = value.dump();
  if (text.size() > kMaxChars) text = text.substr(0, kMaxChars) + "...";
  return text;
}

int json_int(const json& value, const char* key, const std::string& where) {
  if (value.is_number_unsigned() &&
      value.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<int>::max()))
    return static_cast<int>(value.get<std::uint64_t>());
  if (value.is_number_integer() && !value.is_number_unsigned() &&
      value.get<std::int64_t>() >= std::numeric_limits<int>::min() &&
      value.get<std::int64_t>() <= std::numeric_limits<int>::max())
    return static_cast<int>(value.get<std::int64_t>());
  throw Error(fmt::format("{}: '{}' must be an integer from {} to {}, got {}", where, key,
                          std::numeric_limits<int>::min(), std::numeric_limits<int>::max(),
                          json_brief(value)));
}

LayerFields::LayerFields(const LayerSpec& spec, std::string where)
    : fields_(json::object()), where_(std::move(where)) {
  for (const auto& [key, text] : spec.fields) {
    try {
      fields_[key] =
          parse_model_json(text, fmt::format("{}: field '{}' nests deeper than", where_, key));
    } catch (const json::exception&) {
      throw Error(fmt::format("{}: field '{}' is not JSON: {}", where_, key,
                              text.substr(0, std::min<std::size_t>(text.size(), 60))));
    }
  }
}

int LayerFields::integer(const char* key) const {
  const auto it = fields_.find(key);
  if (it == fields_.end()) throw Error(fmt::format("{}: '{}' is missing", where_, key));
  return json_int(*it, key, where_);
}

std::pair<int, int> LayerFields::int_pair(const char* key, int fallback) const {
  return int_pair(key, std::pair<int, int>{fallback, fallback});
}

std::pair<int, int> LayerFields::int_pair(const char* key, std::pair<int, int> fallback) const {
  const auto it = fields_.find(key);
  if (it == fields_.end()) return fallback;
  if (it->is_array() && it->size() == 2)
    return {json_int((*it)[0], key, where_), json_int((*it)[1], key, where_)};
  if (!it->is_number_integer())
    throw Error(fmt::format("{}: '{}' must be an integer or a pair of integers, got {}", where_,
                            key, json_brief(*it)));
  const int value = json_int(*it, key, where_);
  return {value, value};
}

float LayerFields::number(const char* key, float fallback, double lo, double hi) const {
  const auto it = fields_.find(key);
  if (it == fields_.end()) return fallback;
  if (!it->is_number() || !(it->get<double>() >= lo && it->get<double>() <= hi)) {
    const std::string message = fmt::format("{}: '{}' must be a number from {} to {}, got {}",
                                            where_, key, lo, hi, json_brief(*it));
    if (!it->is_number()) throw Error(message);  // a damaged file, not a chosen value
    throw ValueError(message);
  }
  return static_cast<float>(it->get<double>());
}

Padding LayerFields::padding() const {
  const auto it = fields_.find("padding");
  if (it == fields_.end()) return Padding::valid();
  if (it->is_string()) {
    const std::string text = it->get<std::string>();
    if (text == "valid") return Padding::valid();
    if (text == "same") return Padding::same();
    throw Error(fmt::format("{}: padding '{}' is not valid, same, or an integer", where_, text));
  }
  const auto [ph, pw] = int_pair("padding", 0);
  if (ph < 0 || pw < 0) throw Error(fmt::format("{}: padding must not be negative", where_));
  return Padding::explicit_pad(ph, pw);
}

std::string field_text(float value) {
  return fmt::format("{}", value);
}

template <typename T>
std::pair<const T*, const T*> weight_and_bias(const LayerPass<T>& p, int channels,
                                              std::size_t per_channel) {
  if (p.fold.gamma == nullptr) return {p.params[0], p.params[1]};
  cpu::batch_norm_fold(p.fold, channels, per_channel, p.params[0], p.params[1]);
  return {p.fold.weight, p.fold.bias};
}
template std::pair<const float*, const float*> weight_and_bias(const LayerPass<float>&, int,
                                                               std::size_t);
template std::pair<const double*, const double*> weight_and_bias(const LayerPass<double>&, int,
                                                                 std::size_t);

const LayerType& find_layer_type(const std::string& type, const std::string& where) {
  for (const LayerType& t : layer_types())
    if (type == t.type) return t;
  std::string known;
  for (const LayerType& t : layer_types())
    known += (known.empty() ? "" : ", ") + std::string(t.type);
  throw Error(fmt::format("{}: unknown layer type (known: {})", where, known));
}

}  // namespace cnnrt
