#include "cnnrt/error.hpp"

namespace cnnrt {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

}  // namespace cnnrt
