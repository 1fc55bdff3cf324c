#pragma once
// Reading a whole input file into memory, for the parsers that take bytes (IDX, safetensors,
// model files): the file is read as it is on disk, so nothing is allocated on a header's word.
// Writing an output file whole (safetensors, ONNX) through a temporary file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cnnrt {

// The bytes of the regular file `path`. Throws cnnrt::Error naming the file when it cannot be
// opened or read, is not a regular file, or is larger than `max_bytes` (`what` names the kind of
// file in that message, e.g. "a model file").
std::vector<std::uint8_t> read_file_bytes(const std::string& path, std::uint64_t max_bytes,
                                          const char* what);

// How the temporary file is named: `path + ".tmp"`, or `path + ".tmp.<pid>"` where several
// processes may write the same file at once (ranks writing one shared cache): each renames its
// own whole file into place, and the last one stays.
enum class Temporary { shared, per_process };

// Writes the chunks, in order, to the temporary file, flushes it to disk, then renames it over
// `path`: a crash or a failed write leaves the previous file intact and no temporary behind.
// Throws cnnrt::Error naming the file and the system's reason.
void write_file_via_temporary(const std::string& path, const std::vector<std::string_view>& chunks,
                              Temporary temporary_name = Temporary::shared);

}  // namespace cnnrt
