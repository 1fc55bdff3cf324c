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

// A value the caller chose (a layer's hyperparameter, such as batch norm's momentum or eps) that
// lies outside what it may be. Front ends report it as a usage error (the tool exits with 2).
class CNNRT_API ValueError : public Error {
 public:
  explicit ValueError(const std::string& message);
  ~ValueError() override;
};

}  // namespace cnnrt
