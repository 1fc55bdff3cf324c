#pragma once
#include "cnnrt/export.hpp"

namespace cnnrt {

CNNRT_API const char* version();     // "0.1.0"
CNNRT_API const char* build_type();  // CMAKE_BUILD_TYPE at configure time

}  // namespace cnnrt
