#pragma once
// The CPU backend: the reference kernels of kernels/cpu, with the batch split across threads.
// Weight gradients are summed from per-thread partials in thread order, so results do not depend
// on timing (but do depend on the thread count).
#include <memory>

#include "host/backend.hpp"

namespace cnnrt {

template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend(int threads);

}  // namespace cnnrt
