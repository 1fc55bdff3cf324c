#pragma once
// The backend interface: memory, streams, graphs and the few ops of a training step that belong
// to no layer, over raw pointers into the backend's own memory (host for the CPU, device for
// CUDA). Layers reach their kernels through cpu() / cuda() (host/layer.hpp), so a new layer kind
// adds nothing here. Templated on the scalar so gradient checks can run the CPU backend in double.
#include <cstddef>
#include <cstdint>
#include <utility>

#include "kernels/ops.hpp"

namespace cnnrt {

class CpuContext;    // host/cpu_backend.hpp
struct CudaContext;  // host/cuda_backend.hpp

template <typename T>
class Backend {
 public:
  virtual ~Backend() = default;

  // Memory. allocate() is called once per compiled model (the arena) and per resident data set.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* pointer) noexcept = 0;
  virtual void copy_to_backend(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;  // waits
  virtual void fill_zero(void* dst, std::size_t bytes) = 0;
  // Starts a copy of `bytes` to pinned host memory without waiting; `ready()` says whether the
  // last one finished. The CPU backend copies at once.
  virtual void copy_to_host_async(void* dst, const void* src, std::size_t bytes) = 0;
  virtual bool async_copy_ready() = 0;
  virtual void* allocate_pinned_host(std::size_t bytes) = 0;
  virtual void release_pinned_host(void* pointer) noexcept = 0;
  virtual void synchronize() = 0;

  // The context a layer unit runs its kernels in (host/layer.hpp): exactly one is non-null.
  virtual CpuContext* cpu() { return nullptr; }
  virtual CudaContext* cuda() { return nullptr; }

  // The step's own ops around the layers: the loss, the update, the batch gather. Layer ops are
  // not here: each layer's unit calls its kernels through cpu() or cuda().
  // label_smoothing: the target is (1 - e) one-hot + e / classes (0: plain cross-entropy).
  // divisor: what the gradient is divided by (0: n; see kernels/cpu/loss.hpp).
  virtual void softmax_cross_entropy(int n, int classes, const T* logits,
                                     const std::int32_t* labels, float label_smoothing, int divisor,
                                     T* dlogits, T* loss_sum, std::int32_t* correct) = 0;
  // scalars: backend memory, [entries, StepScalars::kCount] floats; the update reads entry
  // *index (backend memory), or entry 0 when index is nullptr. second: nullptr unless the
  // optimizer keeps a second moment.
  virtual void optimizer_update(const OptimizerParams& p, const float* scalars,
                                const std::int32_t* index, std::size_t count, T* param,
                                const T* grad, T* first, T* second) = 0;
  virtual void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n,
                            int pixels, const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* indices, T* batch, std::int32_t* batch_labels) = 0;
  virtual void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n,
                                    int pixels, const std::uint8_t* images,
                                    const std::uint8_t* labels, const std::int32_t* order,
                                    const std::int32_t* step, T* batch,
                                    std::int32_t* batch_labels) = 0;
  // step: [2] {batch in the epoch, epoch} (kernels/cpu/data.hpp); the counter: [1].
  virtual void advance_counter(std::int32_t* counter) = 0;

  // Timing marks for benchmarks: mark(i) records a point in the op stream, elapsed_ms(a, b) waits
  // for both and returns the time between them (CUDA events on the GPU, a clock on the CPU).
  virtual void mark(int slot) = 0;
  virtual double elapsed_ms(int from_slot, int to_slot) = 0;

  // Work beside the main op stream (CUDA): ops issued between begin_side_work and end_side_work
  // start after everything issued before, and may run while the ops issued after them run;
  // join_side_work makes the main stream wait for all of it. The backward pass runs the weight
  // gradients this way: nothing the rest of the pass writes is read by them. Backends that run
  // ops one by one need nothing here.
  virtual void begin_side_work() {}
  virtual void end_side_work() {}
  virtual void join_side_work() {}

  // Whole-step graphs (CUDA): ops issued between begin_capture and end_capture are recorded, not
  // run; replay() runs the recording again. Backends without graphs say so and are run eagerly.
  virtual bool supports_graphs() const { return false; }
  virtual void begin_capture() {}
  virtual void end_capture() {}
  virtual void replay() {}
  // Nodes (kernels, copies, memsets, event waits) of the last captured graph; 0 without graphs.
  virtual std::size_t captured_nodes() const { return 0; }
};

// Memory of a backend (device or host, or pinned host memory), given back to it when this goes.
// The backend must outlive it.
template <typename T>
class BackendMemory {
 public:
  enum class Kind { backend, pinned_host };

  BackendMemory() = default;
  BackendMemory(Backend<T>& backend, std::size_t bytes, Kind kind = Kind::backend)
      : backend_(&backend), kind_(kind) {
    pointer_ =
        kind == Kind::pinned_host ? backend.allocate_pinned_host(bytes) : backend.allocate(bytes);
  }
  BackendMemory(BackendMemory&& other) noexcept { *this = std::move(other); }
  BackendMemory& operator=(BackendMemory&& other) noexcept {
    if (this != &other) {
      reset();
      backend_ = other.backend_, pointer_ = other.pointer_, kind_ = other.kind_;
      other.pointer_ = nullptr;
    }
    return *this;
  }
  BackendMemory(const BackendMemory&) = delete;
  BackendMemory& operator=(const BackendMemory&) = delete;
  ~BackendMemory() { reset(); }

  void* get() const { return pointer_; }
  template <typename U>
  U* as() const {
    return static_cast<U*>(pointer_);
  }
  void reset() noexcept {
    if (pointer_ == nullptr) return;
    if (kind_ == Kind::pinned_host)
      backend_->release_pinned_host(pointer_);
    else
      backend_->release(pointer_);
    pointer_ = nullptr;
  }

 private:
  Backend<T>* backend_ = nullptr;
  void* pointer_ = nullptr;
  Kind kind_ = Kind::backend;
};

}  // namespace cnnrt
