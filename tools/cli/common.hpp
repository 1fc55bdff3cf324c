#pragma once
// Pieces the subcommands share: the common options (same names, help and checks everywhere),
// device choice, data loading.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/model.hpp"

namespace cnnrt::cli {

// Number checks for options, in place of CLI11's PositiveNumber and NonNegativeNumber, whose
// message is a range up to DBL_MAX: "--batch: must be positive, got 0".
CLI::Validator positive_number();
CLI::Validator non_negative_number();

// CLI11 checks from the library's parsers, so that a bad value is a usage error (exit 2) found
// before any data is loaded, with the parser's own message.
template <typename Parse>
CLI::Validator parsed_by(Parse parse, const std::string& name) {
  return CLI::Validator(
      [parse](std::string& text) {
        try {
          parse(text);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      },
      name);
}

// --model: a preset name or a JSON model file.
CLI::Option* add_model_option(
    CLI::App* cmd, std::string& model,
    const std::string& help = "Preset name (lenet5, lenet5-classic, alexnet) or JSON file");
// --data: a directory of MNIST-format IDX files.
CLI::Option* add_data_option(CLI::App* cmd, std::string& data,
                             const std::string& help = "Directory with MNIST-format IDX files");
// --device: auto, cpu or cuda (see resolve_device).
CLI::Option* add_device_option(CLI::App* cmd, std::string& device);
// --test-limit: the first N test images only (0: all).
CLI::Option* add_test_limit_option(CLI::App* cmd, int& test_limit);
// --gemm: the dense layers' GEMM on CUDA, checked by parse_gemm_backend.
CLI::Option* add_gemm_option(CLI::App* cmd, std::string& gemm);
// --weights: a checkpoint or weights file to load (required).
CLI::Option* add_weights_option(CLI::App* cmd, std::string& weights);

// The library's messages name its API ("ask for more than that with TrainOptions::epochs"); the
// tool's user sets flags. Returns `message` with each API name that a flag sets replaced by the
// flag: TrainOptions::epochs -> --epochs, TrainOptions::optimizer.lr -> --lr.
std::string in_flag_terms(std::string message);

// "auto" picks CUDA when a device exists, else the (fast) CPU path with a one-line notice on
// stderr; "cuda" without a device is an error; "reference" is the plain-loop CPU kernels.
Device resolve_device(const std::string& choice);

// How --data is read: --format auto|idx|cifar|folder (auto: CIFAR when the directory holds
// data_batch_1.bin or train.bin, an image folder when it holds train/ or only class folders, else
// IDX), for CIFAR-100 --labels fine|coarse, for one tree of class folders --test-split F.
struct DataFormat {
  std::string format = "auto";
  std::string labels = "fine";
  double test_split = 0;   // image folders: the share of each class held out (0: train/ test/)
  std::uint64_t seed = 1;  // the test split's draw (--seed)
  int threads = 0;         // decoding threads (--threads; 0: all cores)
  std::string cache;       // image folders: ImageFolderOptions::cache (--cache)
  // `train` with a preset: a CIFAR or folder set's class count replaces the preset's
  // (with_classes) instead of being checked against it.
  bool classes_follow_data = false;
};
void add_data_format_options(CLI::App* cmd, DataFormat& format);
// What `dir` is read as: "idx", "cifar" or "folder" (format.format, or for auto what the
// directory holds).
std::string resolve_format(const std::string& dir, const DataFormat& format);

// --std's check: parse_float_list, every value > 0.
std::vector<float> parse_std_list(const std::string& text);
// --mean and --std (empty: not given) against `network`'s input: each 1 value or one per channel,
// else a usage error (ExitCode 2).
void check_normalization_flags(const std::string& mean, const std::string& std_dev,
                               const Network& network);
// The normalisation training applies: the IDX default for IDX data, else the training set's own
// per-channel values (compute_normalization), each replaced by --mean / --std when given (a single
// value stands for every channel).
Normalization resolve_normalization(const std::string& mean, const std::string& std_dev,
                                    const Network& network, const std::string& dir,
                                    const DataFormat& format, const Dataset& train_set);

// The network saved weights are for: `model` when --model was given on `cmd`, else the model
// description the checkpoint holds (a file without one: `model`, the default preset).
Network network_for_weights(const CLI::App& cmd, const std::string& model,
                            const std::string& weights);

// The train or test split of `dir` in `format`, cut to `limit` samples when limit > 0
// (a limit past the split's size takes it all, with a notice on stderr), checked against
// `network`: image size, and labels below its number of classes (unless
// format.classes_follow_data).
// `summary` (may be null) receives a line about what was read when there is one to give (image
// folders: images, classes, skipped files, time and images/s).
Dataset load_split(const std::string& dir, bool train, int limit, const Network& network,
                   const DataFormat& format = {}, std::string* summary = nullptr);

}  // namespace cnnrt::cli
