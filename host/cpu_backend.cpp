#include "host/cpu_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "cnnrt/error.hpp"
#include "host/memory.hpp"
#include "host/worker_pool.hpp"
#include "kernels/cpu/activation.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cpu/data.hpp"
#include "kernels/cpu/dense.hpp"
#include "kernels/cpu/dropout.hpp"
#include "kernels/cpu/loss.hpp"
#include "kernels/cpu/optimizer.hpp"
#include "kernels/cpu/pool.hpp"

namespace cnnrt {

namespace {

template <typename T>
class CpuBackend final : public Backend<T> {
 public:
  explicit CpuBackend(int threads)
      : threads_(threads > 0 ? threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {
  }

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
  std::size_t conv_workspace_bytes(const Conv2dGeometry& g) override {
    return std::size_t(threads_) * (g.weight_size() + std::size_t(g.k)) * sizeof(T);
  }

  void conv2d_forward(const Conv2dGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                      const FusedActivation<T>& fused) override {
    for_batch_slices(g.n, [&](int first, int count) {
      Conv2dGeometry part = g;
      part.n = count;
      const std::size_t o = std::size_t(first) * chw_out(g);
      cpu::conv2d_forward(part, in + std::size_t(first) * chw_in(g), weight, bias, out + o,
                          forward_slice(fused, o));
    });
  }
  void conv2d_backward_data(const Conv2dGeometry& g, const T* dout, const T* weight,
                            T* din) override {
    for_batch_slices(g.n, [&](int first, int count) {
      Conv2dGeometry part = g;
      part.n = count;
      cpu::conv2d_backward_data(part, dout + std::size_t(first) * chw_out(g), weight,
                                din + std::size_t(first) * chw_in(g));
    });
  }
  void conv2d_backward_weights(const Conv2dGeometry& g, const T* in, const T* dout, T* dweight,
                               T* dbias, void* workspace) override {
    // Each slice writes its own partial gradient; the partials are summed in slice order.
    const std::size_t wsize = g.weight_size(), bsize = std::size_t(g.k);
    T* partials = static_cast<T*>(workspace);
    const int slices = for_batch_slices(g.n, [&](int first, int count) {
      Conv2dGeometry part = g;
      part.n = count;
      T* mine = partials + std::size_t(slice_index(g.n, first)) * (wsize + bsize);
      cpu::conv2d_backward_weights(part, in + std::size_t(first) * chw_in(g),
                                   dout + std::size_t(first) * chw_out(g), mine, mine + wsize,
                                   nullptr);
    });
    sum_partials(partials, slices, wsize, bsize, dweight, dbias);
  }

  void activation_forward(Activation kind, T slope, std::size_t count, const T* z, T* a) override {
    cpu::activation_forward(kind, slope, count, z, a);
  }
  void activation_backward(Activation kind, T slope, std::size_t count, const T* z, const T* a,
                           const T* da, T* dz) override {
    cpu::activation_backward(kind, slope, count, z, a, da, dz);
  }

  void max_pool_forward(const Pool2dGeometry& g, const T* in, T* out,
                        std::int32_t* argmax) override {
    for_batch_slices(g.n, [&](int first, int count) {
      Pool2dGeometry part = g;
      part.n = count;
      const std::size_t o = std::size_t(first) * pool_out(g);
      cpu::max_pool_forward(part, in + std::size_t(first) * pool_in(g), out + o, argmax + o);
    });
  }
  void max_pool_backward(const Pool2dGeometry& g, const T* dout, const std::int32_t* argmax, T* din,
                         const FusedActivationGrad<T>& fused) override {
    for_batch_slices(g.n, [&](int first, int count) {
      Pool2dGeometry part = g;
      part.n = count;
      const std::size_t o = std::size_t(first) * pool_out(g);
      const std::size_t i = std::size_t(first) * pool_in(g);
      cpu::max_pool_backward(part, dout + o, argmax + o, din + i, backward_slice(fused, i));
    });
  }
  void avg_pool_forward(const Pool2dGeometry& g, const T* in, T* out) override {
    cpu::avg_pool_forward(g, in, out);
  }
  void avg_pool_backward(const Pool2dGeometry& g, const T* dout, T* din,
                         const FusedActivationGrad<T>& fused) override {
    cpu::avg_pool_backward(g, dout, din, fused);
  }

  void dense_forward(const DenseGeometry& g, const T* in, const T* weight, const T* bias, T* out,
                     const FusedActivation<T>& fused) override {
    for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t o = std::size_t(first) * g.out_features;
      cpu::dense_forward(DenseGeometry{count, g.in_features, g.out_features},
                         in + std::size_t(first) * g.in_features, weight, bias, out + o,
                         forward_slice(fused, o));
    });
  }
  void dense_backward_data(const DenseGeometry& g, const T* dout, const T* weight, T* din,
                           const FusedActivationGrad<T>& fused) override {
    for_batch_slices(g.n, [&](int first, int count) {
      const std::size_t i = std::size_t(first) * g.in_features;
      cpu::dense_backward_data(DenseGeometry{count, g.in_features, g.out_features},
                               dout + std::size_t(first) * g.out_features, weight, din + i,
                               backward_slice(fused, i));
    });
  }
  void dense_backward_weights(const DenseGeometry& g, const T* in, const T* dout, T* dweight,
                              T* dbias) override {
    cpu::dense_backward_weights(g, in, dout, dweight, dbias);
  }

  void softmax_cross_entropy(int n, int classes, const T* logits, const std::int32_t* labels,
                             T* dlogits, T* loss_sum, std::int32_t* correct) override {
    cpu::softmax_cross_entropy(n, classes, logits, labels, dlogits, loss_sum, correct);
  }
  void dropout_forward(const DropoutParams& p, std::size_t count, const T* in, T* out,
                       std::uint8_t* mask) override {
    cpu::dropout_forward(p, count, in, out, mask);
  }
  void dropout_backward(const DropoutParams& p, std::size_t count, const T* dout,
                        const std::uint8_t* mask, T* din) override {
    cpu::dropout_backward(p, count, dout, mask, din);
  }
  void sgd_update(const SgdParams& p, std::size_t count, T* param, const T* grad,
                  T* velocity) override {
    cpu::sgd_update(p, count, param, grad, velocity);
  }
  void gather_batch(const NormalizeParams& norm, int n, int pixels, const std::uint8_t* images,
                    const std::uint8_t* labels, const std::int32_t* indices, T* batch,
                    std::int32_t* batch_labels) override {
    cpu::gather_batch(norm, n, pixels, images, labels, indices, batch, batch_labels);
  }
  void gather_batch_at_step(const NormalizeParams& norm, int n, int pixels,
                            const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* order, const std::int32_t* step, T* batch,
                            std::int32_t* batch_labels) override {
    cpu::gather_batch_at_step(norm, n, pixels, images, labels, order, step, batch, batch_labels);
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
  int threads_;
  mutable WorkerPool pool_{threads_};
  std::array<Clock::time_point, 64> marks_{};

  // The fused activation of a batch slice whose output (forward) or din (backward) starts at
  // element `first` of the whole batch's; nullptr stays nullptr (nothing fused).
  static FusedActivation<T> forward_slice(FusedActivation<T> fused, std::size_t first) {
    if (fused.activated != nullptr) fused.activated += first;
    return fused;
  }
  static FusedActivationGrad<T> backward_slice(FusedActivationGrad<T> fused, std::size_t first) {
    if (fused.z != nullptr) fused.z += first;
    if (fused.a != nullptr) fused.a += first;
    return fused;
  }

  static std::size_t chw_in(const Conv2dGeometry& g) { return std::size_t(g.c) * g.h * g.w; }
  static std::size_t chw_out(const Conv2dGeometry& g) {
    return std::size_t(g.k) * g.out_h * g.out_w;
  }
  static std::size_t pool_in(const Pool2dGeometry& g) { return std::size_t(g.c) * g.h * g.w; }
  static std::size_t pool_out(const Pool2dGeometry& g) {
    return std::size_t(g.c) * g.out_h * g.out_w;
  }

  int slices_for(int n) const { return std::max(1, std::min(threads_, n)); }
  int slice_index(int n, int first) const {
    const int per = (n + slices_for(n) - 1) / slices_for(n);
    return first / per;
  }

  // Splits [0, n) into contiguous slices, one per thread of the pool; returns the number of
  // slices. Slice s covers [s * per, min((s + 1) * per, n)).
  template <typename Fn>
  int for_batch_slices(int n, Fn&& fn) const {
    const int slices = slices_for(n);
    const int per = (n + slices - 1) / slices;
    const int used = (n + per - 1) / per;
    pool_.run(used, [&](int slice) {
      const int first = slice * per;
      fn(first, std::min(per, n - first));
    });
    return used;
  }

  static void sum_partials(const T* partials, int slices, std::size_t wsize, std::size_t bsize,
                           T* dweight, T* dbias) {
    const std::size_t stride = wsize + bsize;
    for (std::size_t i = 0; i < wsize; ++i) {
      T sum = partials[i];
      for (int s = 1; s < slices; ++s) sum += partials[std::size_t(s) * stride + i];
      dweight[i] = sum;
    }
    if (dbias == nullptr) return;
    for (std::size_t i = 0; i < bsize; ++i) {
      T sum = partials[wsize + i];
      for (int s = 1; s < slices; ++s) sum += partials[std::size_t(s) * stride + wsize + i];
      dbias[i] = sum;
    }
  }
};

}  // namespace

template <typename T>
std::unique_ptr<Backend<T>> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend<T>>(threads);
}

template std::unique_ptr<Backend<float>> make_cpu_backend<float>(int);
template std::unique_ptr<Backend<double>> make_cpu_backend<double>(int);

}  // namespace cnnrt
