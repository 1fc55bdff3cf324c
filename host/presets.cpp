// Where networks are loaded from (load_network): a path is read as a JSON model file; a preset
// name is looked up in the preset directories, among them the one installed next to the library.
#include <dlfcn.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <link.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cnnrt/error.hpp"
#include "cnnrt/network.hpp"
#include "cnnrt/recipe.hpp"
#include "host/file_bytes.hpp"

namespace cnnrt {

namespace {

namespace fs = std::filesystem;

// The installed preset directory relative to the directory of the file this code runs from:
// libcnnrt.so in the library directory, or a program that links the library statically (the
// cnnrt tool) in the program directory. CMake works both out from CMAKE_INSTALL_LIBDIR,
// CMAKE_INSTALL_BINDIR and CMAKE_INSTALL_DATADIR, so an installed tree finds its presets under
// whatever prefix it was installed to.
fs::path installed_preset_dir() {
  Dl_info info{};
  link_map* object = nullptr;
  if (dladdr1(reinterpret_cast<const void*>(&installed_preset_dir), &info,
              reinterpret_cast<void**>(&object), RTLD_DL_LINKMAP) == 0 ||
      object == nullptr)
    return {};
  // The main program's entry has no name (dladdr would give argv[0], perhaps a bare name).
  const bool in_program = object->l_name == nullptr || object->l_name[0] == '\0';
  std::error_code ec;
  const fs::path file = in_program ? fs::read_symlink("/proc/self/exe", ec)
                                   : fs::weakly_canonical(object->l_name, ec);
  if (ec || file.empty()) return {};
  return (file.parent_path() /
          (in_program ? CNNRT_PRESET_DIR_FROM_BINDIR : CNNRT_PRESET_DIR_FROM_LIBDIR))
      .lexically_normal();
}

// In order: $CNNRT_PRESET_DIR, the installed tree this code was loaded from, the configured
// install prefix, the source tree (a build that was never installed).
std::vector<std::string> preset_dirs() {
  std::vector<std::string> dirs;
  const auto add = [&](const std::string& dir) {
    if (!dir.empty() && std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  };
  if (const char* env = std::getenv("CNNRT_PRESET_DIR"); env != nullptr) add(env);
  add(installed_preset_dir().string());
  add(CNNRT_INSTALLED_PRESET_DIR);
  add(CNNRT_SOURCE_PRESET_DIR);
  return dirs;
}

// A model file is a few kilobytes; this much is surely not one.
constexpr std::uint64_t kMaxModelFileBytes = std::uint64_t{16} << 20;

std::string read_model_file(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_file_bytes(path, kMaxModelFileBytes, "a model file");
  return std::string(bytes.begin(), bytes.end());
}

bool is_file(const std::string& path) {
  std::error_code ignored;
  return fs::is_regular_file(path, ignored);
}

}  // namespace

std::vector<std::string> preset_names() {
  return {"lenet5", "lenet5-classic", "fmnist-bn", "alexnet"};
}

namespace {

// The model file that `name_or_path` names: the path itself, or the preset's file.
std::string model_file_path(const std::string& name_or_path) {
  const bool looks_like_path =
      name_or_path.find('/') != std::string::npos ||
      (name_or_path.size() > 5 && name_or_path.compare(name_or_path.size() - 5, 5, ".json") == 0);
  if (looks_like_path) return name_or_path;
  const auto names = preset_names();
  if (std::find(names.begin(), names.end(), name_or_path) == names.end())
    throw Error(fmt::format("unknown model '{}' (presets: {}; or give a path to a .json file)",
                            name_or_path, fmt::join(names, ", ")));
  const std::vector<std::string> dirs = preset_dirs();
  for (const std::string& dir : dirs) {
    const std::string path = dir + "/" + name_or_path + ".json";
    if (is_file(path)) return path;
  }
  throw Error(fmt::format("preset '{}' not found in {} (set CNNRT_PRESET_DIR)", name_or_path,
                          fmt::join(dirs, ", ")));
}

}  // namespace

Network load_network(const std::string& name_or_path) {
  const std::string path = model_file_path(name_or_path);
  return network_from_json(read_model_file(path), path);
}

TrainRecipe load_recipe(const std::string& name_or_path) {
  const std::string path = model_file_path(name_or_path);
  return recipe_from_json(read_model_file(path), path);
}

}  // namespace cnnrt
