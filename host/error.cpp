#include "cnnrt/error.hpp"

namespace cnnrt {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

ValueError::ValueError(const std::string& message) : Error(message) {}
ValueError::~ValueError() = default;

}  // namespace cnnrt
