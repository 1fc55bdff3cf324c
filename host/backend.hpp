#pragma once
// The backend interface: one set of ops over raw pointers into the backend's own memory (host for
// the CPU, device for CUDA), so the network's forward and backward pass is written once
// (host/executor.hpp). Templated on the scalar so gradient checks can run the CPU backend in
// double.
#include <cstddef>
#include <cstdint>

#include "kernels/ops.hpp"

namespace cnnrt {

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
  virtual std::size_t conv_workspace_bytes(const Conv2dGeometry& g) = 0;

  // Ops: the kernels of kernels/cpu and kernels/cuda, same arguments. The FusedActivation(Grad)
  // arguments run an activation layer inside the op (kernels/ops.hpp); {} for none.
  virtual void conv2d_forward(const Conv2dGeometry& g, const T* in, const T* weight, const T* bias,
                              T* out, const FusedActivation<T>& fused) = 0;
  virtual void conv2d_backward_data(const Conv2dGeometry& g, const T* dout, const T* weight,
                                    T* din) = 0;
  virtual void conv2d_backward_weights(const Conv2dGeometry& g, const T* in, const T* dout,
                                       T* dweight, T* dbias, void* workspace) = 0;
  virtual void activation_forward(Activation kind, T slope, std::size_t count, const T* z,
                                  T* a) = 0;
  virtual void activation_backward(Activation kind, T slope, std::size_t count, const T* z,
                                   const T* a, const T* da, T* dz) = 0;
  virtual void max_pool_forward(const Pool2dGeometry& g, const T* in, T* out,
                                std::int32_t* argmax) = 0;
  virtual void max_pool_backward(const Pool2dGeometry& g, const T* dout, const std::int32_t* argmax,
                                 T* din, const FusedActivationGrad<T>& fused) = 0;
  virtual void avg_pool_forward(const Pool2dGeometry& g, const T* in, T* out) = 0;
  virtual void avg_pool_backward(const Pool2dGeometry& g, const T* dout, T* din,
                                 const FusedActivationGrad<T>& fused) = 0;
  virtual void dense_forward(const DenseGeometry& g, const T* in, const T* weight, const T* bias,
                             T* out, const FusedActivation<T>& fused) = 0;
  virtual void dense_backward_data(const DenseGeometry& g, const T* dout, const T* weight, T* din,
                                   const FusedActivationGrad<T>& fused) = 0;
  virtual void dense_backward_weights(const DenseGeometry& g, const T* in, const T* dout,
                                      T* dweight, T* dbias) = 0;
  virtual void softmax_cross_entropy(int n, int classes, const T* logits,
                                     const std::int32_t* labels, T* dlogits, T* loss_sum,
                                     std::int32_t* correct) = 0;
  virtual void dropout_forward(const DropoutParams& p, std::size_t count, const T* in, T* out,
                               std::uint8_t* mask) = 0;
  virtual void dropout_backward(const DropoutParams& p, std::size_t count, const T* dout,
                                const std::uint8_t* mask, T* din) = 0;
  virtual void sgd_update(const SgdParams& p, std::size_t count, T* param, const T* grad,
                          T* velocity) = 0;
  virtual void gather_batch(const NormalizeParams& norm, int n, int pixels,
                            const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* indices, T* batch, std::int32_t* batch_labels) = 0;
  virtual void gather_batch_at_step(const NormalizeParams& norm, int n, int pixels,
                                    const std::uint8_t* images, const std::uint8_t* labels,
                                    const std::int32_t* order, const std::int32_t* step, T* batch,
                                    std::int32_t* batch_labels) = 0;
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

}  // namespace cnnrt
