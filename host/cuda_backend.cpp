#include "host/cuda_backend.hpp"

#include <fmt/format.h>

#include <array>
#include <string>

#include "cnnrt/device.hpp"
#include "host/memory.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/cublas_api.hpp"
#include "kernels/cuda/data.cuh"
#include "kernels/cuda/loss.cuh"
#include "kernels/cuda/optimizer.cuh"

namespace cnnrt {

namespace {

class CudaBackend final : public Backend<float> {
 public:
  CudaBackend(GemmBackend gemm, ConvPrecision conv) {
    context_.gemm = gemm == GemmBackend::cublas ? cuda::GemmImpl::cublas
                    : gemm == GemmBackend::tf32 ? cuda::GemmImpl::tf32
                                                : cuda::GemmImpl::tiled;
    context_.conv_tf32 = conv == ConvPrecision::tf32;
    std::string why_none;
    if (cuda_devices(&why_none).empty()) throw Error(fmt::format("no CUDA device ({})", why_none));
    CNNRT_CUDA_CHECK(cudaStreamCreateWithFlags(&main_stream_, cudaStreamNonBlocking));
    context_.stream = main_stream_;
    CNNRT_CUDA_CHECK(cudaEventCreateWithFlags(&copy_done_, cudaEventDisableTiming));
    // The side stream and its events are made here, not at the first backward pass: nothing is
    // created inside a training step (or a graph capture). With cuBLAS there is no side work.
    if (context_.gemm != cuda::GemmImpl::cublas) {
      CNNRT_CUDA_CHECK(cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking));
      CNNRT_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming));
      CNNRT_CUDA_CHECK(cudaEventCreateWithFlags(&join_, cudaEventDisableTiming));
    }
    // cuBLAS only when asked for: its handle and workspace cost tens of MB of device memory.
    if (context_.gemm == cuda::GemmImpl::cublas) {
      CNNRT_CUBLAS_CHECK(cuda::cublas().create(&context_.cublas));
      CNNRT_CUBLAS_CHECK(cuda::cublas().set_stream(context_.cublas, context_.stream));
    }
  }
  ~CudaBackend() override {
    release_graph();
    for (cudaEvent_t e : marks_)
      if (e != nullptr) (void)cudaEventDestroy(e);
    if (context_.cublas != nullptr) (void)cuda::cublas().destroy(context_.cublas);
    (void)cudaEventDestroy(copy_done_);
    if (side_stream_ != nullptr) {
      (void)cudaEventDestroy(fork_);
      (void)cudaEventDestroy(join_);
      (void)cudaStreamDestroy(side_stream_);
    }
    (void)cudaStreamDestroy(main_stream_);
  }

  void* allocate(std::size_t bytes) override { return device_allocate(bytes); }
  void release(void* pointer) noexcept override { (void)cudaFree(pointer); }
  void copy_to_backend(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    CNNRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, context_.stream));
    CNNRT_CUDA_CHECK(
        cudaStreamSynchronize(context_.stream));  // the host buffer may go away after this
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    CNNRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, context_.stream));
    CNNRT_CUDA_CHECK(cudaStreamSynchronize(context_.stream));
  }
  void fill_zero(void* dst, std::size_t bytes) override {
    if (bytes) CNNRT_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, context_.stream));
  }
  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    CNNRT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, context_.stream));
    CNNRT_CUDA_CHECK(cudaEventRecord(copy_done_, context_.stream));
  }
  bool async_copy_ready() override {
    const cudaError_t status = cudaEventQuery(copy_done_);
    if (status == cudaErrorNotReady) return false;
    CNNRT_CUDA_CHECK(status);
    return true;
  }
  void* allocate_pinned_host(std::size_t bytes) override {
    void* p = nullptr;
    CNNRT_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return p;
  }
  void release_pinned_host(void* pointer) noexcept override { (void)cudaFreeHost(pointer); }
  void synchronize() override { CNNRT_CUDA_CHECK(cudaStreamSynchronize(context_.stream)); }
  CudaContext* cuda() override { return &context_; }

  void softmax_cross_entropy(int n, int classes, const float* logits, const std::int32_t* labels,
                             float label_smoothing, int divisor, float* dlogits, float* loss_sum,
                             std::int32_t* correct) override {
    cuda::softmax_cross_entropy(n, classes, logits, labels, dlogits, loss_sum, correct,
                                context_.stream, label_smoothing, divisor);
  }
  void optimizer_update(const OptimizerParams& p, const float* scalars, const std::int32_t* index,
                        std::size_t count, float* param, const float* grad, float* first,
                        float* second) override {
    cuda::optimizer_update(p, scalars, index, count, param, grad, first, second, context_.stream);
  }
  void gather_batch(const NormalizeParams& norm, const AugmentParams& aug, int n, int pixels,
                    const std::uint8_t* images, const std::uint8_t* labels,
                    const std::int32_t* indices, float* batch,
                    std::int32_t* batch_labels) override {
    cuda::gather_batch(norm, aug, n, pixels, images, labels, indices, batch, batch_labels,
                       context_.stream);
  }
  void gather_batch_at_step(const NormalizeParams& norm, const AugmentParams& aug, int n,
                            int pixels, const std::uint8_t* images, const std::uint8_t* labels,
                            const std::int32_t* order, const std::int32_t* step, float* batch,
                            std::int32_t* batch_labels) override {
    cuda::gather_batch_at_step(norm, aug, n, pixels, images, labels, order, step, batch,
                               batch_labels, context_.stream);
  }
  void advance_counter(std::int32_t* counter) override {
    cuda::advance_counter(counter, context_.stream);
  }

  void mark(int slot) override {
    cudaEvent_t& event = marks_.at(std::size_t(slot));
    if (event == nullptr) CNNRT_CUDA_CHECK(cudaEventCreate(&event));
    CNNRT_CUDA_CHECK(cudaEventRecord(event, context_.stream));
  }
  double elapsed_ms(int from_slot, int to_slot) override {
    cudaEvent_t to = marks_.at(std::size_t(to_slot));
    CNNRT_CUDA_CHECK(cudaEventSynchronize(to));
    float ms = 0;
    CNNRT_CUDA_CHECK(cudaEventElapsedTime(&ms, marks_.at(std::size_t(from_slot)), to));
    return ms;
  }

  // Without a side stream (cuBLAS: one handle's workspace must not serve two streams at once)
  // side work runs on the main stream.
  void begin_side_work() override {
    if (side_stream_ == nullptr) return;
    CNNRT_CUDA_CHECK(cudaEventRecord(fork_, main_stream_));
    CNNRT_CUDA_CHECK(cudaStreamWaitEvent(side_stream_, fork_, 0));
    context_.stream = side_stream_;
    side_pending_ = true;
  }
  void end_side_work() override { context_.stream = main_stream_; }
  void join_side_work() override {
    if (!side_pending_) return;
    CNNRT_CUDA_CHECK(cudaEventRecord(join_, side_stream_));
    CNNRT_CUDA_CHECK(cudaStreamWaitEvent(main_stream_, join_, 0));
    side_pending_ = false;
  }

  bool supports_graphs() const override { return true; }
  void begin_capture() override {
    release_graph();
    CNNRT_CUDA_CHECK(cudaStreamBeginCapture(context_.stream, cudaStreamCaptureModeThreadLocal));
  }
  void end_capture() override {
    cudaGraph_t graph = nullptr;
    CNNRT_CUDA_CHECK(cudaStreamEndCapture(context_.stream, &graph));
    captured_nodes_ = 0;
    cudaError_t status = cudaGraphGetNodes(graph, nullptr, &captured_nodes_);
    if (status == cudaSuccess) status = cudaGraphInstantiate(&graph_exec_, graph, 0);
    (void)cudaGraphDestroy(graph);
    CNNRT_CUDA_CHECK(status);
  }
  std::size_t captured_nodes() const override { return captured_nodes_; }
  void replay() override {
    if (graph_exec_ == nullptr) throw Error("CUDA graph replay before any capture");
    CNNRT_CUDA_CHECK(cudaGraphLaunch(graph_exec_, context_.stream));
  }

 private:
  void release_graph() noexcept {
    if (graph_exec_ != nullptr) (void)cudaGraphExecDestroy(graph_exec_);
    graph_exec_ = nullptr;
  }

  CudaContext context_;
  cudaGraphExec_t graph_exec_ = nullptr;
  std::size_t captured_nodes_ = 0;
  std::array<cudaEvent_t, 64> marks_{};
  // Ops go to context_.stream: the main stream, or the side stream between begin/end_side_work.
  // Copies, waits, marks and graphs only ever run outside those sections, on the main stream.
  cudaStream_t main_stream_ = nullptr;
  cudaStream_t side_stream_ = nullptr;
  cudaEvent_t fork_ = nullptr, join_ = nullptr;
  bool side_pending_ = false;
  cudaEvent_t copy_done_ = nullptr;
};

}  // namespace

void cuda_backend_warm_up() {
  CNNRT_CUDA_CHECK(cudaFree(nullptr));
}

std::unique_ptr<Backend<float>> make_cuda_backend(GemmBackend gemm, ConvPrecision conv) {
  return std::make_unique<CudaBackend>(gemm, conv);
}

}  // namespace cnnrt
