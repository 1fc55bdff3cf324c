#pragma once
// Choosing one algorithm per layer, once (docs/algorithm-selection.md): each candidate is timed
// on the layer's real shape (the median of a few runs) and the fastest is kept, as cudnnFind
// does. Choices are cached in a small JSON file keyed by op, shape, precision and GPU, so a later
// run reads them instead of timing again. "fixed:NAME" skips the timing.
//
// The timer is a callback, so the logic runs (and is tested) without a GPU.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "kernels/ops.hpp"

namespace cnnrt {

// What a choice depends on; `text()` is the cache key.
struct AlgoKey {
  std::string op;         // e.g. "conv2d.forward"
  std::string shape;      // e.g. conv2d_shape_key(g)
  std::string precision;  // "fp32", "tf32" or "bf16"
  std::string gpu;        // the device's name, e.g. "NVIDIA H200"

  std::string text() const;
};

// "n32 c96 h27 w27 k256 5x5 s1x1 p2x2": everything of the geometry a kernel's speed depends on.
std::string conv2d_shape_key(const Conv2dGeometry& g);

// "fastest" (time the candidates, or read the cache) or "fixed:NAME".
struct AlgoPolicy {
  bool fixed = false;
  std::string name;  // when fixed

  // Throws cnnrt::ValueError on any other text.
  static AlgoPolicy parse(const std::string& text);
};

// Milliseconds of one run of `candidate`. A negative or non-finite result marks the candidate as
// unusable on this shape (it is skipped).
using AlgoTimer = std::function<double(const std::string& candidate)>;
using AlgoWarning = std::function<void(const std::string& message)>;

struct AlgoChoice {
  std::string name;
  bool from_cache = false;
  // The median per timed candidate, in candidate order (empty when cached, fixed or alone).
  std::vector<std::pair<std::string, double>> medians_ms;
};

class AlgoSelector {
 public:
  // `cache_path` empty: choices are kept in memory only. A missing cache file is normal; an
  // unreadable or malformed one is reported through `warn` and ignored (rewritten on the next
  // choice). The default `warn` prints "cnnrt: warning: ..." to stderr.
  explicit AlgoSelector(std::string cache_path, int repeats = 5, AlgoWarning warn = nullptr);

  // Picks among `candidates` (non-empty, in order of preference: ties go to the earlier one).
  // fixed:NAME returns NAME, after checking it is a candidate (cnnrt::ValueError naming the valid
  // ones otherwise). A cached choice that is still a candidate is returned untimed. Otherwise every
  // candidate is timed `repeats` times and the lowest median wins; the choice is cached and the
  // file rewritten atomically (a failed write is a warning). Throws cnnrt::Error when no candidate
  // gives a usable time.
  AlgoChoice select(const AlgoKey& key, const std::vector<std::string>& candidates,
                    const AlgoTimer& timer, const AlgoPolicy& policy);

 private:
  void load();
  void save();

  std::string path_;
  int repeats_;
  AlgoWarning warn_;
  nlohmann::json entries_ = nlohmann::json::object();  // key text -> {"algo", "median_ms"}
};

}  // namespace cnnrt
