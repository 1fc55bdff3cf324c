#include "tools/cli/common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cnnrt/cifar.hpp"
#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "cnnrt/image_folder.hpp"
#include "cnnrt/safetensors.hpp"
#include "tools/cli/commands.hpp"

namespace cnnrt::cli {

namespace {
CLI::Validator number_check(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value))
          return fmt::format("'{}' is not a number", text);
        if (value > 0 || (zero_allowed && value == 0)) return "";
        return fmt::format("must be {}, got {}", zero_allowed ? "zero or more" : "positive", text);
      },
      zero_allowed ? "NONNEGATIVE" : "POSITIVE");
}
}  // namespace

CLI::Validator positive_number() {
  return number_check(false);
}
CLI::Validator non_negative_number() {
  return number_check(true);
}

CLI::Option* add_gemm_option(CLI::App* cmd, std::string& gemm) {
  return cmd
      ->add_option("--gemm", gemm,
                   "Dense layers on CUDA: tiled (hand-written, FP32), cublas, or tf32 "
                   "(hand-written on tensor cores, operands rounded to TF32)")
      ->check(parsed_by(parse_gemm_backend, "GEMM"))
      ->capture_default_str();
}

CLI::Option* add_model_option(CLI::App* cmd, std::string& model, const std::string& help) {
  return cmd->add_option("--model", model, help)->capture_default_str();
}

CLI::Option* add_data_option(CLI::App* cmd, std::string& data, const std::string& help) {
  return cmd->add_option("--data", data, help)->capture_default_str();
}

CLI::Option* add_device_option(CLI::App* cmd, std::string& device) {
  return cmd
      ->add_option("--device", device,
                   "auto, cpu (the fast CPU path), reference (the plain-loop CPU kernels) or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "reference", "cuda"}))
      ->capture_default_str();
}

CLI::Option* add_test_limit_option(CLI::App* cmd, int& test_limit) {
  return cmd->add_option("--test-limit", test_limit, "Use only the first N test images (0: all)")
      ->check(non_negative_number());
}

CLI::Option* add_weights_option(CLI::App* cmd, std::string& weights) {
  return cmd->add_option("--weights", weights, "Checkpoint or weights file (safetensors)")
      ->required();
}

std::string in_flag_terms(std::string message) {
  struct Term {
    const char* api;
    const char* flag;
  };
  static constexpr Term kTerms[] = {{"TrainOptions::epochs", "--epochs"},
                                    {"TrainOptions::optimizer.lr", "--lr"},
                                    {"TrainOptions::augment", "the recipe's augment"}};
  for (const Term& term : kTerms) {
    const std::string api = term.api;
    for (std::size_t at = message.find(api); at != std::string::npos;
         at = message.find(api, at + std::strlen(term.flag)))
      message.replace(at, api.size(), term.flag);
  }
  return message;
}

Device resolve_device(const std::string& choice) {
  if (choice == "cpu") return Device::cpu;
  if (choice == "reference") return Device::reference;
  std::string why_none;
  const bool have_gpu = !cuda_devices(&why_none).empty();
  if (choice == "cuda") {
    if (!have_gpu) throw Error(fmt::format("--device cuda: no CUDA device ({})", why_none));
    return Device::cuda;
  }
  if (choice != "auto")
    throw Error(fmt::format("--device must be auto, cpu, reference or cuda, got '{}'", choice));
  if (have_gpu) return Device::cuda;
  fmt::print(stderr, "cnnrt: no CUDA device ({}); running on the CPU\n", why_none);
  return Device::cpu;
}

void add_data_format_options(CLI::App* cmd, DataFormat& format) {
  cmd->add_option("--format", format.format,
                  "What --data holds: idx (MNIST-format), cifar (CIFAR-10/100 binary), folder "
                  "(train/<class>/* and test/<class>/* images, or <class>/* with --test-split), "
                  "or auto (cifar when it holds data_batch_1.bin or train.bin, folder when it "
                  "holds train/ or only folders, else idx)")
      ->check(CLI::IsMember({"auto", "idx", "cifar", "folder"}))
      ->capture_default_str();
  cmd->add_option("--test-split", format.test_split,
                  "Image folder of class folders only: hold out this share of each class as the "
                  "test set, drawn with --seed (the same seed gives the same split)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double f = 0;
            if (!CLI::detail::lexical_cast(text, f) || !(f > 0 && f < 1))
              return fmt::format("must be a number in (0, 1), got {}", text);
            return "";
          },
          "F"));
  cmd->add_option("--cache", format.cache,
                  "Image folders: where the decoded images are kept for the next run (DIR: one "
                  "sub-folder per image folder; default DATA/.cnnrt-cache/; none: decode every "
                  "time). A folder whose files changed is decoded again.");
  cmd->add_option("--labels", format.labels, "CIFAR-100 labels: fine (100 classes) or coarse (20)")
      ->check(parsed_by(parse_cifar_labels, "LABELS"))
      ->capture_default_str();
}

std::string resolve_format(const std::string& dir, const DataFormat& format) {
  if (format.format != "auto") return format.format;
  CifarKind kind = CifarKind::cifar10;
  if (find_cifar_kind(dir, &kind)) return "cifar";
  if (format.test_split > 0 || looks_like_image_folder(dir)) return "folder";
  return "idx";
}

std::vector<float> parse_std_list(const std::string& text) {
  std::vector<float> values = parse_float_list(text, "std");
  for (float v : values)
    if (!(v > 0.0f)) throw Error(fmt::format("std '{}': every value must be positive", text));
  return values;
}

void check_normalization_flags(const std::string& mean, const std::string& std_dev,
                               const Network& network) {
  const int channels = network.input().c;
  for (const auto& [flag, text] : {std::pair{"--mean", &mean}, std::pair{"--std", &std_dev}}) {
    if (text->empty()) continue;
    const std::size_t count = parse_float_list(*text, flag).size();
    if (count != 1 && int(count) != channels)
      throw ExitCode(fmt::format("{} {}: {} values for {}'s {}-channel input (give 1 or {})", flag,
                                 *text, count, network.name(), channels, channels),
                     2);
  }
}

Normalization resolve_normalization(const std::string& mean, const std::string& std_dev,
                                    const Network& network, const std::string& dir,
                                    const DataFormat& format, const Dataset& train_set) {
  check_normalization_flags(mean, std_dev, network);
  Normalization n;
  if (resolve_format(dir, format) != "idx" && (mean.empty() || std_dev.empty()))
    n = compute_normalization(train_set);
  if (!mean.empty()) n.mean = parse_float_list(mean, "--mean");
  if (!std_dev.empty()) n.std = parse_std_list(std_dev);
  // One value stands for every channel when the other is given per channel.
  const std::size_t channels = std::max(n.mean.size(), n.std.size());
  if (n.mean.size() == 1) n.mean.assign(channels, n.mean[0]);
  if (n.std.size() == 1) n.std.assign(channels, n.std[0]);
  n.check(network.input().c);
  return n;
}

namespace {

// The image folder's split, fitted to the network's input; a progress line on a terminal.
Dataset load_folder_split(const std::string& dir, bool train, const Network& network,
                          const DataFormat& format, std::string* summary) {
  const SampleShape in = network.input();
  ImageFolderOptions o;
  o.channels = in.c, o.height = in.h, o.width = in.w;
  o.test_split = format.test_split;
  o.seed = format.seed;
  o.threads = format.threads;
  o.cache = format.cache;
  const bool bar = train && isatty(STDERR_FILENO) != 0;
  if (bar)
    o.progress = [](int done, int total) {
      fmt::print(stderr, "\rdecoding images {}/{}", done, total);
      std::fflush(stderr);
    };
  ImageFolderData folder = load_image_folder(dir, o, train, !train);
  if (bar) fmt::print(stderr, "\r{:40}\r", "");
  Dataset data = std::move(train ? folder.train : folder.test);
  const ImageFolderData::Cache& cache = train ? folder.train_cache : folder.test_cache;
  if (summary != nullptr) {
    const bool cached = cache.status == "read";
    *summary = fmt::format(
        "read {} {} images ({} classes, {}x{}x{}) from {} in {:.2f} s ({:.0f} images/s{}); {} "
        "non-image file{} skipped",
        data.count, train ? "training" : "test", data.classes, in.c, in.h, in.w,
        cached ? cache.path : dir, folder.seconds,
        folder.seconds > 0 ? data.count / folder.seconds : 0.0, cached ? ", cached" : " decoded",
        folder.skipped, folder.skipped == 1 ? "" : "s");
    if (cache.status == "written") *summary += fmt::format("; cached in {}", cache.path);
    if (cache.status.rfind("not written", 0) == 0)
      *summary += fmt::format("; cache {}", cache.status);
  }
  return data;
}

}  // namespace

Network network_for_weights(const CLI::App& cmd, const std::string& model,
                            const std::string& weights) {
  if (cmd.get_option("--model")->count() == 0) {
    const SafeTensors file = SafeTensors::load(weights);
    const auto it = file.metadata.find("model");
    if (it != file.metadata.end()) return network_from_json(it->second, weights);
  }
  return load_network(model);
}

Dataset load_split(const std::string& dir, bool train, int limit, const Network& network,
                   const DataFormat& format, std::string* summary) {
  const char* option = train ? "--train-limit" : "--test-limit";
  if (limit < 0) throw Error(fmt::format("{} must not be negative, got {}", option, limit));
  const std::string kind = resolve_format(dir, format);
  const bool cifar = kind == "cifar";
  if (format.test_split > 0 && kind != "folder")
    throw Error(fmt::format("--test-split is for image folders; {} is read as {}", dir, kind));
  // Labels are bytes: a model with more classes than 256 still reads them all.
  Dataset data = cifar ? load_cifar_split(dir, train, parse_cifar_labels(format.labels))
                 : kind == "folder"
                     ? load_folder_split(dir, train, network, format, summary)
                     : load_mnist_split(dir, train, std::min(network.classes(), 256));
  if (cifar)
    data.class_names = cifar_class_names(dir, parse_cifar_labels(format.labels), data.classes);
  if ((cifar || kind == "folder") && data.classes > network.classes() &&
      !format.classes_follow_data)
    throw Error(fmt::format("{} holds {} classes but {} has {} outputs", dir, data.classes,
                            network.name(), network.classes()));
  const SampleShape in = network.input();
  if (data.channels != in.c || data.height != in.h || data.width != in.w)
    throw Error(fmt::format("the {} split in {} holds {}x{}x{} images but {} expects {}",
                            train ? "training" : "test", dir, data.channels, data.height,
                            data.width, network.name(), in.to_string()));
  if (limit > data.count) {
    fmt::print(stderr, "cnnrt: {} {} is more than the {} images; using all\n", option, limit,
               data.count);
    return data;
  }
  return limit > 0 ? data.take(limit) : data;
}

}  // namespace cnnrt::cli
