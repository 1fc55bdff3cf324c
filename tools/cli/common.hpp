#pragma once
// Pieces the subcommands share: device choice, data loading, the model option.
#include <string>

#include "cnnrt/dataset.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt::cli {

// "auto" picks CUDA when a device exists, else the CPU with a one-line notice on stderr;
// "cuda" without a device is an error.
Device resolve_device(const std::string& choice);

// The train or test split of an MNIST-format directory, cut to `limit` samples when limit > 0.
Dataset load_split(const std::string& dir, bool train, int limit);

}  // namespace cnnrt::cli
