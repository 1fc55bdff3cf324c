#pragma once
// CIFAR-10 and CIFAR-100 in their binary form (https://www.cs.toronto.edu/~kriz/cifar.html):
// fixed-size records of label bytes and 3 x 32 x 32 pixel bytes (red, green, blue planes, rows
// top to bottom), which is the CHW layout the batch gather reads. Every file is validated before
// use; problems throw cnnrt::Error starting with the file's path.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cnnrt/dataset.hpp"
#include "cnnrt/export.hpp"

namespace cnnrt {

enum class CifarKind { cifar10, cifar100 };
enum class CifarLabels { fine, coarse };  // CIFAR-100: 100 fine or 20 coarse classes

// "fine" or "coarse"; throws cnnrt::Error naming the choices otherwise.
CNNRT_API CifarLabels parse_cifar_labels(const std::string& text);

inline constexpr int kCifarPixels = 3 * 32 * 32;

// The records in `bytes` (a whole file; `name` names it in messages): CIFAR-10 records are
// <label><3072 pixels>, CIFAR-100 ones <coarse><fine><3072 pixels>. Throws when the length is not
// a whole number of records, or a label is past the class count (10, 100 fine, 20 coarse).
CNNRT_API Dataset parse_cifar(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                              CifarKind kind, CifarLabels labels);

// Which CIFAR layout `dir` holds: data_batch_1.bin (CIFAR-10) or train.bin (CIFAR-100); false when
// neither is there.
CNNRT_API bool find_cifar_kind(const std::string& dir, CifarKind* kind);

// The training split (data_batch_1..5.bin, those present, at least data_batch_1.bin; or train.bin)
// or the test split (test_batch.bin; or test.bin) of `dir`. A missing file gives an error naming
// the directory and the files looked for.
CNNRT_API Dataset load_cifar_split(const std::string& dir, bool train, CifarLabels labels);

// The class names: CIFAR-10's batches.meta.txt, CIFAR-100's fine_label_names.txt or
// coarse_label_names.txt, one name a line (blank lines skipped); empty when the file is absent.
// Throws when the file holds another number of names than `classes`.
CNNRT_API std::vector<std::string> cifar_class_names(const std::string& dir, CifarLabels labels,
                                                     int classes);

}  // namespace cnnrt
