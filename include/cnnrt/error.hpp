#pragma once
#include <stdexcept>
#include <string>

#include "cnnrt/export.hpp"

namespace cnnrt {

// The one exception type cnnrt throws. Messages say what went wrong, where, and the values
// involved, e.g. "conv2: input 6x14x14 does not fit kernel 5x5 with valid padding".
class CNNRT_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

}  // namespace cnnrt
