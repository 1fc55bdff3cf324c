#include "host/cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
#include "host/memory.hpp"
#include "kernels/cpu/activation_fast.hpp"
#include "kernels/cpu/data.hpp"
#include "kernels/cpu/loss.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/cpu/sgemm.hpp"

namespace cnnrt {

namespace {

// Parameters updated per thread at least (fewer are updated on one).
constexpr std::size_t kMinUpdateRange = 16384;

template <typename T>
class CpuBackend final : public Backend<T> {
 public:
  CpuBackend(int threads, bool fast)
      : context_(threads > 0 ? threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency())),
                 fast) {}

  void* allocate(std::size_t bytes) override {
    // More than the machine has would only be paged out, or end in the OOM killer once touched
    // (Linux overcommits), so it is refused up front.
    const std::size_t physical = physical_memory_bytes();
    if (physical > 0 && bytes > physical)
      throw Error(fmt::format("out of host memory: {} bytes ({}) asked for, the machine has {}",
                              bytes, byte_size(bytes), byte_size(physical)));
    void* p = std::aligned_alloc(256, std::max<std::size_t>(256, (bytes + 255) / 256 * 256));
    if (p == nullptr)
      throw Error(fmt::format("out of host memory: allocating {} bytes ({}) failed", bytes,
                              byte_size(bytes)));
    return p;
  }
  void release(void* pointer) noexcept override { std::free(pointer); }
  void copy_to_backend(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void fill_zero(void* dst, std::size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }
  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    copy_to_host(dst, src, bytes);
  }
  bool async_copy_ready() override { return true; }
  void* allocate_pinned_host(std::size_t bytes) override { return allocate(bytes); }
  void release_pinned_host(void* pointer) noexcept override { release(pointer); }
  void synchronize() override {}
  CpuContext* cpu() override { return &context_; }

  void softmax_cross_entropy(int n, int classes, const T* logits, const std::int32_t* labels,
                             float label_smoothing, int divisor, T* dlogits, T* loss_sum,
                             std::int32_t* correct) override {
    cpu::softmax_cross_entropy(n, classes, logits, labels, dlogits, loss_sum, correct,
                               T(label_smoothing), divisor);
  }
  void optimizer_update(const OptimizerParams& p, const float* scalars, const std::int32_t* index,
                        std::size_t count, T* param, const T* grad, T* first, T* second) override {
    // The entry as written by the host: StepScalars is kCount floats.
    const auto* steps = reinterpret_cast<const StepScalars*>(scalars);
    const StepScalars& at = steps[index != nullptr ? *index : 0];
    // Element-wise: the same bits for any split.
    context_.for_ranges(count, kMinUpdateRange, [&](std::size_t begin, std::size_t end) {
      cpu::optimizer_update(p, at, end - begin, param + begin, grad + begin, first + begin,
                            second != nullptr ? second + begin : nullptr);
    });
  }
  void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                    const std::uint8_t* images, const std::uint8_t* labels,
                    const std::int32_t* indices, T* batch, std::int32_t* batch_labels) override {
    // Sample by sample (augmentation is keyed on the sample's index): the same bits for any split.
    context_.for_batch_slices(n, [&](int first, int count) {
      cpu::gather_batch(norm, aug, count, pixels, images, labels, indices + first,
                        batch + std::size_t(first) * pixels, batch_labels + first);
    });
  }
  void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n,
                            int pixels, const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* order, const std::int32_t* step, T* batch,
                            std::int32_t* batch_labels) override {
    AugmentParams at = aug;  // step: {batch number, epoch}
    at.step = std::uint32_t(step[0]);
    at.epoch = std::uint32_t(step[1]);
    gather_batch(norm, at, n, pixels, images, labels, order + std::size_t(step[0]) * std::size_t(n),
                 batch, batch_labels);
  }
  void advance_counter(std::int32_t* counter) override { cpu::advance_counter(counter); }

  void mark(int slot) override { marks_.at(std::size_t(slot)) = Clock::now(); }
  double elapsed_ms(int from_slot, int to_slot) override {
    return std::chrono::duration<double, std::milli>(marks_.at(std::size_t(to_slot)) -
                                                     marks_.at(std::size_t(from_slot)))
        .count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  CpuContext context_;
  std::array<Clock::time_point, 64> marks_{};
};

}  // namespace

// Our threads split the work; each sgemm runs on the thread that calls it (kernels/cpu/sgemm.cpp).
CpuContext::CpuContext(int threads, bool fast) : pool_(threads), fast_(fast) {}

std::string cpu_fast_path() {
  __builtin_cpu_init();
  const char* isa = __builtin_cpu_supports("avx512f") ? "AVX-512"
                    : __builtin_cpu_supports("avx2")  ? "AVX2"
                    : __builtin_cpu_supports("avx")   ? "AVX"
                                                      : "SSE2";
  return fmt::format("fast (oneDNN sgemm in {}; sigmoid in {}; processor reports {})",
                     cpu::sgemm_isa(),
                     cpu::fast::sigmoid_path_name(cpu::fast::chosen_sigmoid_path()), isa);
}

template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend(int threads, bool fast) {
  return std::make_unique<CpuBackend<T>>(threads, fast);
}

template std::unique_ptr<Backend<float>> make_cpu_backend<float>(int, bool);
template std::unique_ptr<Backend<double>> make_cpu_backend<double>(int, bool);

}  // namespace cnnrt
