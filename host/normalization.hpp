#pragma once
// The public Normalization (include/cnnrt/dataset.hpp) as the gather kernels take it.
#include "cnnrt/dataset.hpp"
#include "kernels/ops.hpp"

namespace cnnrt {

// Samples of `channels` planes of `plane` values; one value in `norm` serves every channel.
// Throws cnnrt::Error when `norm` does not fit (Normalization::check).
NormalizeParams to_normalize_params(const Normalization& norm, int channels, int plane);

}  // namespace cnnrt
