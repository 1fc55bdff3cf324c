#pragma once
// Reading a whole input file into memory, for the parsers that take bytes (IDX, safetensors,
// model files): the file is read as it is on disk, so nothing is allocated on a header's word.
#include <cstdint>
#include <string>
#include <vector>

namespace cnnrt {

// The bytes of the regular file `path`. Throws cnnrt::Error naming the file when it cannot be
// opened or read, is not a regular file, or is larger than `max_bytes` (`what` names the kind of
// file in that message, e.g. "a model file").
std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes,
                                          const char* what);

}  // namespace cnnrt
