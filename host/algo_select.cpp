// Algorithm selection per layer (host/algo_select.hpp): timing, the median, the JSON cache.
#include "host/algo_select.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string_view>

#include "cnnrt/error.hpp"
#include "host/file_bytes.hpp"

namespace cnnrt {

namespace {

// The cache is a few hundred bytes per layer; anything far larger is not ours.
constexpr std::uint64_t kMaxCacheBytes = 16u << 20;
constexpr int kCacheFormat = 1;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

void print_warning(const std::string& message) {
  std::fprintf(stderr, "cnnrt: warning: %s\n", message.c_str());
}

// The median of the samples (the lower middle one for an even count).
double median(std::vector<double> samples) {
  const auto middle = samples.begin() + (samples.size() - 1) / 2;
  std::nth_element(samples.begin(), middle, samples.end());
  return *middle;
}

}  // namespace

std::string AlgoKey::text() const {
  return fmt::format("{} | {} | {} | {}", op, shape, precision, gpu);
}

std::string conv2d_shape_key(const Conv2dGeometry& g) {
  return fmt::format("n{} c{} h{} w{} k{} {}x{} s{}x{} p{}x{} o{}x{}", g.n, g.c, g.h, g.w, g.k,
                     g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w);
}

AlgoPolicy AlgoPolicy::parse(const std::string& text) {
  constexpr std::string_view kFixed = "fixed:";
  if (text == "fastest") return {};
  if (text.compare(0, kFixed.size(), kFixed) == 0 && text.size() > kFixed.size())
    return {true, text.substr(kFixed.size())};
  throw ValueError(fmt::format(
      "algorithm choice '{}': expected 'fastest' or 'fixed:NAME' with an algorithm's name", text));
}

AlgoSelector::AlgoSelector(std::string cache_path, int repeats, AlgoWarning warn)
    : path_(std::move(cache_path)), repeats_(repeats), warn_(std::move(warn)) {
  if (repeats_ < 1)
    throw ValueError(fmt::format("algorithm timing: {} repeats (at least 1)", repeats));
  if (!warn_) warn_ = print_warning;
  load();
}

void AlgoSelector::load() {
  if (path_.empty()) return;
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;  // a first run
  try {
    const std::vector<std::uint8_t> bytes = read_file_bytes(path_, kMaxCacheBytes, "a cache file");
    const nlohmann::json doc = nlohmann::json::parse(bytes.begin(), bytes.end());
    if (!doc.is_object() || doc.value("format", 0) != kCacheFormat || !doc.contains("choices") ||
        !doc["choices"].is_object())
      throw Error(fmt::format("{}: not an algorithm cache of format {}", path_, kCacheFormat));
    for (const auto& [key, entry] : doc["choices"].items())
      if (entry.is_object() && entry.contains("algo") && entry["algo"].is_string())
        entries_[key] = entry;
  } catch (const std::exception& e) {
    entries_ = nlohmann::json::object();
    warn_(
        fmt::format("ignoring the algorithm cache {} (it will be rewritten): {}", path_, e.what()));
  }
}

void AlgoSelector::save() {
  if (path_.empty()) return;
  const nlohmann::json doc = {{"format", kCacheFormat}, {"choices", entries_}};
  const std::string text = doc.dump(2) + "\n";
  try {
    write_file_via_temporary(path_, {text});
  } catch (const std::exception& e) {
    warn_(fmt::format("the algorithm choice is not cached: {}", e.what()));
  }
}

AlgoChoice AlgoSelector::select(const AlgoKey& key, const std::vector<std::string>& candidates,
                                const AlgoTimer& timer, const AlgoPolicy& policy) {
  if (candidates.empty()) throw Error(fmt::format("{}: no algorithm to choose from", key.op));
  const auto is_candidate = [&](const std::string& name) {
    return std::find(candidates.begin(), candidates.end(), name) != candidates.end();
  };
  AlgoChoice choice;
  if (policy.fixed) {
    if (!is_candidate(policy.name))
      throw ValueError(
          fmt::format("{}: algorithm '{}' is not available for {} ({}); choose one of: {}", key.op,
                      policy.name, key.shape, key.precision, joined(candidates)));
    choice.name = policy.name;
    return choice;
  }
  if (candidates.size() == 1) {
    choice.name = candidates.front();
    return choice;
  }
  const std::string id = key.text();
  const auto cached = entries_.find(id);
  if (cached != entries_.end() && is_candidate((*cached)["algo"].get<std::string>())) {
    choice.name = (*cached)["algo"].get<std::string>();
    choice.from_cache = true;
    return choice;
  }

  double best = 0.0;
  for (const std::string& name : candidates) {
    std::vector<double> samples;
    for (int i = 0; i < repeats_; ++i) samples.push_back(timer(name));
    const bool usable = std::all_of(samples.begin(), samples.end(),
                                    [](double ms) { return std::isfinite(ms) && ms >= 0.0; });
    if (!usable) continue;
    const double ms = median(samples);
    choice.medians_ms.emplace_back(name, ms);
    if (choice.name.empty() || ms < best) {
      choice.name = name;
      best = ms;
    }
  }
  if (choice.name.empty())
    throw Error(fmt::format("{}: none of the algorithms ({}) runs on {} ({})", key.op,
                            joined(candidates), key.shape, key.precision));
  nlohmann::json medians = nlohmann::json::object();
  for (const auto& [name, ms] : choice.medians_ms) medians[name] = ms;
  entries_[id] = {{"algo", choice.name}, {"median_ms", medians}};
  save();
  return choice;
}

}  // namespace cnnrt
