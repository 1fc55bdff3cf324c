// `cnnrt info`: version, build type, the fast CPU path, CUDA runtime, and the devices found (or why
// none).
#include <fmt/format.h>

#include <string>

#include "cnnrt/device.hpp"
#include "cnnrt/distributed.hpp"
#include "cnnrt/version.hpp"
#include "tools/cli/commands.hpp"

namespace cnnrt::cli {

void add_info_command(CLI::App& app) {
  CLI::App* info = app.add_subcommand("info", "Print the version, build and CUDA devices");
  info->callback([] {
    fmt::print("cnnrt {} ({} build)\n", version(), build_type());
    fmt::print("CPU path (--device cpu): {}\n", cpu_fast_path());
    fmt::print("CUDA runtime {}\n", cuda_runtime_version());
    fmt::print("distributed training (mpirun, srun): {}\n", distributed_support());
    std::string why_none;
    const auto devices = cuda_devices(&why_none);
    if (devices.empty()) {
      fmt::print("no CUDA device ({})\n", why_none);
      return;
    }
    for (const auto& d : devices)
      fmt::print("device {}: {}, compute capability {}.{}, {} SMs, {:.1f} GiB\n", d.index, d.name,
                 d.major, d.minor, d.multiprocessors,
                 static_cast<double>(d.memory_bytes) / (1024.0 * 1024.0 * 1024.0));
  });
}

}  // namespace cnnrt::cli
