// cnnrt_kernel_bench: times cnnrt's hand-written CUDA convolution and dense kernels against the
// peers a framework would call on the same shapes: cuDNN's fastest algorithm (found with
// cudnnFind*AlgorithmEx) for convolutions, cuBLAS for the dense layers. Shapes: every convolution
// and dense layer of LeNet-5 (batch 256) and AlexNet (batch 32), forward, backward-data and
// backward-weights.
//
// Both sides run strict FP32 (cuDNN's FMA math, cuBLAS's default math): no TF32 tensor cores, so
// the comparison is of the same arithmetic. Biases are left out on both sides (cuDNN's
// convolution has none). Inputs are seeded uniform values in [-1, 1), never zeros; outputs are
// poisoned with NaN before the first launch, and each row reports the largest difference between
// cnnrt's result and the peer's, relative to the peer's largest magnitude.
//
// Timing: CUDA events around each launch on one stream, after a warm-up; the median of the
// repeats, in microseconds.
//
// Usage: cnnrt_kernel_bench [--json FILE] [--repeats N] [--warmup N] [--filter TEXT]
//                           [--max-seconds S]
// Exit codes: 0 done, 1 error, 2 usage error, 3 no CUDA device (nothing timed; the device check
// script tells "skipped" from "failed" by it).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnrt/device.hpp"
#include "cnnrt/error.hpp"
// Internal headers, unlike the cnnrt tool (tools/cli/, public API only): this benchmark launches
// the CUDA kernels directly, below the library's API, and links cnnrt_static for them.
#include "host/device_buffer.hpp"
#include "kernels/cuda/check.hpp"
#include "kernels/cuda/conv.cuh"
#include "kernels/cuda/dense.cuh"
#include "kernels/ops.hpp"

#define BENCH_CUDNN_CHECK(call)                                                           \
  do {                                                                                    \
    const cudnnStatus_t bench_status_ = (call);                                           \
    if (bench_status_ != CUDNN_STATUS_SUCCESS)                                            \
      throw ::cnnrt::Error(fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                       cudnnGetErrorString(bench_status_)));              \
  } while (0)

namespace {

using cnnrt::DeviceBuffer;

constexpr int kExitNoDevice = 3;
constexpr int kExitUsage = 2;
// The largest cuDNN workspace we offer its algorithm search (algorithms needing more are skipped).
constexpr std::size_t kMaxCudnnWorkspaceBytes = std::size_t(1) << 30;

struct Options {
  std::string json_path;
  int repeats = 50;
  int warmup = 5;
  std::string filter;  // only rows whose name contains this
  // Rows reached after this many seconds are reported as skipped, so a caller's timeout still gets
  // a table and the JSON; 0: no limit.
  int max_seconds = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

struct Row {
  std::string name;   // e.g. "lenet5.conv1.forward"
  std::string shape;  // e.g. "256x1x28x28 * 6x1x5x5 s1 p2 -> 256x6x28x28"
  std::optional<double> cnnrt_us;
  std::string peer;  // "cudnn" or "cublas"
  std::optional<double> peer_us;
  int peer_algo = -1;  // cuDNN's algorithm enum value; -1 for cuBLAS
  std::optional<double> max_rel_diff;
  std::string error;  // why a side could not be timed; empty when both ran
};

// ---------------------------------------------------------------------------------------------
// RAII for the handles and descriptors the benchmark creates.

struct Stream {
  cudaStream_t handle = nullptr;
  // A blocking stream: DeviceBuffer's uploads and NaN fills run on the legacy default stream, and
  // the launches must see them finished.
  Stream() { CNNRT_CUDA_CHECK(cudaStreamCreate(&handle)); }
  ~Stream() { (void)cudaStreamDestroy(handle); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    CNNRT_CUDA_CHECK(cudaEventCreate(&start));
    CNNRT_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    (void)cudaEventDestroy(start);
    (void)cudaEventDestroy(stop);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
};

struct Cublas {
  cublasHandle_t handle = nullptr;
  explicit Cublas(cudaStream_t stream) {
    CNNRT_CUBLAS_CHECK(cublasCreate(&handle));
    CNNRT_CUBLAS_CHECK(cublasSetStream(handle, stream));
    // Strict FP32: the hand-written kernels do not use TF32 either.
    CNNRT_CUBLAS_CHECK(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH));
  }
  ~Cublas() { (void)cublasDestroy(handle); }
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;
};

struct Cudnn {
  cudnnHandle_t handle = nullptr;
  explicit Cudnn(cudaStream_t stream) {
    BENCH_CUDNN_CHECK(cudnnCreate(&handle));
    BENCH_CUDNN_CHECK(cudnnSetStream(handle, stream));
  }
  ~Cudnn() { (void)cudnnDestroy(handle); }
  Cudnn(const Cudnn&) = delete;
  Cudnn& operator=(const Cudnn&) = delete;
};

struct TensorDesc {
  cudnnTensorDescriptor_t desc = nullptr;
  // [n, c, h, w], NCHW contiguous float
  TensorDesc(int n, int c, int h, int w) {
    BENCH_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc));
    BENCH_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(desc); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t desc = nullptr;
  // [k, c, kh, kw] float
  FilterDesc(int k, int c, int kh, int kw) {
    BENCH_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc));
    BENCH_CUDNN_CHECK(
        cudnnSetFilter4dDescriptor(desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, kh, kw));
  }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(desc); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t desc = nullptr;
  // Cross-correlation (what cnnrt and PyTorch compute), symmetric padding, no dilation.
  ConvDesc(int pad_h, int pad_w, int stride_h, int stride_w) {
    BENCH_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc));
    BENCH_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc, pad_h, pad_w, stride_h, stride_w, 1, 1,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    BENCH_CUDNN_CHECK(cudnnSetConvolutionMathType(desc, CUDNN_FMA_MATH));
  }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(desc); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// ---------------------------------------------------------------------------------------------

DeviceBuffer<float> random_buffer(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> host(count);
  for (auto& v : host) v = dist(rng);
  DeviceBuffer<float> buffer(count);
  buffer.upload(host);
  return buffer;
}

DeviceBuffer<float> poisoned_buffer(std::size_t count) {
  DeviceBuffer<float> buffer(count);
  buffer.fill_bytes(0xFF);  // NaN: a kernel that leaves an element unwritten shows up in the diff
  return buffer;
}

// Median device time of one launch, in microseconds. `launch` enqueues exactly one operation on
// `stream` and must not synchronise.
double median_us(cudaStream_t stream, const Options& options, const std::function<void()>& launch) {
  for (int i = 0; i < options.warmup; ++i) launch();
  CNNRT_CUDA_CHECK(cudaStreamSynchronize(stream));
  EventPair events;
  std::vector<double> times;
  times.reserve(static_cast<std::size_t>(options.repeats));
  for (int i = 0; i < options.repeats; ++i) {
    CNNRT_CUDA_CHECK(cudaEventRecord(events.start, stream));
    launch();
    CNNRT_CUDA_CHECK(cudaEventRecord(events.stop, stream));
    CNNRT_CUDA_CHECK(cudaEventSynchronize(events.stop));
    float ms = 0.0f;
    CNNRT_CUDA_CHECK(cudaEventElapsedTime(&ms, events.start, events.stop));
    times.push_back(1000.0 * ms);
  }
  std::sort(times.begin(), times.end());
  const std::size_t mid = times.size() / 2;
  return times.size() % 2 == 1 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
}

// max |actual - expected| / max |expected|; NaN when `actual` holds a NaN (an unwritten element).
double max_rel_diff(const DeviceBuffer<float>& actual, const DeviceBuffer<float>& expected) {
  const std::vector<float> a = actual.download();
  const std::vector<float> b = expected.download();
  double worst = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return std::numeric_limits<double>::quiet_NaN();
    worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0.0 ? worst / scale : worst;
}

void append_error(Row& row, const std::string& what) {
  row.error += fmt::format("{}{}", row.error.empty() ? "" : "; ", what);
}

// Runs one side of a row; a failure (an unsupported shape, a missing kernel) is recorded in the
// row instead of ending the whole benchmark.
std::optional<double> time_side(Row& row, const char* side, cudaStream_t stream,
                                const Options& options, const std::function<void()>& launch) {
  try {
    return median_us(stream, options, launch);
  } catch (const std::exception& e) {
    append_error(row, fmt::format("{}: {}", side, e.what()));
    // Clear a non-sticky launch error so the next row starts clean (a sticky one will resurface).
    (void)cudaGetLastError();
    return std::nullopt;
  }
}

void compare(Row& row, const DeviceBuffer<float>& cnnrt_out, const DeviceBuffer<float>& peer_out) {
  if (!row.cnnrt_us || !row.peer_us) return;
  try {
    row.max_rel_diff = max_rel_diff(cnnrt_out, peer_out);
  } catch (const std::exception& e) {
    append_error(row, fmt::format("compare: {}", e.what()));
  }
}

// ---------------------------------------------------------------------------------------------
// Convolutions against cuDNN.

struct ConvCase {
  const char* name;
  int n, c, h, w, k, kh, kw, stride;
  cnnrt::Padding padding;
};

std::string conv_shape(const cnnrt::Conv2dGeometry& g) {
  return fmt::format("{}x{}x{}x{} * {}x{}x{}x{} s{} p{} -> {}x{}x{}x{}", g.n, g.c, g.h, g.w, g.k,
                     g.c, g.kh, g.kw, g.stride_h, g.pad_top, g.n, g.k, g.out_h, g.out_w);
}

// The workspace cuDNN's search may use: the most any algorithm of the three directions asks for,
// capped at kMaxCudnnWorkspaceBytes.
std::size_t cudnn_workspace_bytes(cudnnHandle_t h, const TensorDesc& x, const FilterDesc& w,
                                  const ConvDesc& conv, const TensorDesc& y) {
  std::size_t most = 0;
  auto consider = [&](cudnnStatus_t status, const std::size_t& bytes) {
    if (status == CUDNN_STATUS_SUCCESS && bytes <= kMaxCudnnWorkspaceBytes)
      most = std::max(most, bytes);
  };
  for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
    std::size_t bytes = 0;
    const cudnnStatus_t status = cudnnGetConvolutionForwardWorkspaceSize(
        h, x.desc, w.desc, conv.desc, y.desc, cudnnConvolutionFwdAlgo_t(a), &bytes);
    consider(status, bytes);
  }
  for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++a) {
    std::size_t bytes = 0;
    const cudnnStatus_t status = cudnnGetConvolutionBackwardDataWorkspaceSize(
        h, w.desc, y.desc, conv.desc, x.desc, cudnnConvolutionBwdDataAlgo_t(a), &bytes);
    consider(status, bytes);
  }
  for (int a = 0; a < CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT; ++a) {
    std::size_t bytes = 0;
    const cudnnStatus_t status = cudnnGetConvolutionBackwardFilterWorkspaceSize(
        h, x.desc, y.desc, conv.desc, w.desc, cudnnConvolutionBwdFilterAlgo_t(a), &bytes);
    consider(status, bytes);
  }
  return most;
}

// The first (fastest) algorithm cuDNN's search ran successfully, or an Error naming the layer.
template <typename Perf>
const Perf& fastest(const std::vector<Perf>& results, int returned, const std::string& what) {
  for (int i = 0; i < returned; ++i)
    if (results[std::size_t(i)].status == CUDNN_STATUS_SUCCESS) return results[std::size_t(i)];
  throw cnnrt::Error(
      fmt::format("{}: cuDNN found no working algorithm ({} tried)", what, returned));
}

// Times cnnrt's launch, then the peer's (`prepare_peer` does the peer's one-time setup, such as
// cuDNN's algorithm search, outside the timed launches, and returns the launch to time), then
// compares the two outputs.
void bench_row(Row row, cudaStream_t stream, const Options& options,
               const std::function<void()>& cnnrt_launch,
               const std::function<std::function<void()>(Row&)>& prepare_peer,
               const DeviceBuffer<float>& cnnrt_out, const DeviceBuffer<float>& peer_out,
               std::vector<Row>& rows) {
  if (!options.filter.empty() && row.name.find(options.filter) == std::string::npos) return;
  const auto elapsed = std::chrono::steady_clock::now() - options.started;
  if (options.max_seconds > 0 && elapsed > std::chrono::seconds(options.max_seconds)) {
    append_error(row, fmt::format("skipped: over --max-seconds {}", options.max_seconds));
    rows.push_back(std::move(row));
    return;
  }
  row.cnnrt_us = time_side(row, "cnnrt", stream, options, cnnrt_launch);
  try {
    const std::function<void()> peer_launch = prepare_peer(row);
    row.peer_us = time_side(row, row.peer.c_str(), stream, options, peer_launch);
  } catch (const std::exception& e) {
    append_error(row, fmt::format("{}: {}", row.peer, e.what()));
  }
  compare(row, cnnrt_out, peer_out);
  rows.push_back(std::move(row));
}

void bench_conv(const ConvCase& cc, const Options& options, cudaStream_t stream, cudnnHandle_t dnn,
                std::vector<Row>& rows) {
  const cnnrt::Conv2dGeometry g = cnnrt::make_conv2d_geometry(
      cc.name, cc.n, cc.c, cc.h, cc.w, cc.k, cc.kh, cc.kw, cc.stride, cc.stride, cc.padding);
  const std::string shape = conv_shape(g);

  // cuDNN pads symmetrically: check that cnnrt's geometry is the same convolution.
  TensorDesc x_desc(g.n, g.c, g.h, g.w);
  FilterDesc w_desc(g.k, g.c, g.kh, g.kw);
  ConvDesc conv(g.pad_top, g.pad_left, g.stride_h, g.stride_w);
  int on = 0, ok = 0, oh = 0, ow = 0;
  BENCH_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.desc, x_desc.desc, w_desc.desc, &on,
                                                          &ok, &oh, &ow));
  if (on != g.n || ok != g.k || oh != g.out_h || ow != g.out_w)
    throw cnnrt::Error(
        fmt::format("{}: cuDNN's output {}x{}x{}x{} differs from cnnrt's "
                    "{}x{}x{}x{} (asymmetric padding?)",
                    cc.name, on, ok, oh, ow, g.n, g.k, g.out_h, g.out_w));
  TensorDesc y_desc(g.n, g.k, g.out_h, g.out_w);

  // x: [n, c, h, w], weight: [k, c, kh, kw], dy: [n, k, out_h, out_w]
  const auto x = random_buffer(g.in_size(), 1);
  const auto weight = random_buffer(g.weight_size(), 2);
  const auto dy = random_buffer(g.out_size(), 3);
  auto y_cnnrt = poisoned_buffer(g.out_size()), y_peer = poisoned_buffer(g.out_size());
  auto dx_cnnrt = poisoned_buffer(g.in_size()), dx_peer = poisoned_buffer(g.in_size());
  auto dw_cnnrt = poisoned_buffer(g.weight_size()), dw_peer = poisoned_buffer(g.weight_size());
  DeviceBuffer<unsigned char> cnnrt_workspace(
      cnnrt::cuda::conv2d_backward_weights_workspace_bytes(g));
  const std::size_t dnn_bytes = cudnn_workspace_bytes(dnn, x_desc, w_desc, conv, y_desc);
  DeviceBuffer<unsigned char> dnn_workspace(dnn_bytes);
  CNNRT_CUDA_CHECK(cudaDeviceSynchronize());  // the fills above are done before anything is timed
  static const float one = 1.0f, zero = 0.0f;

  bench_row(
      Row{fmt::format("{}.forward", cc.name), shape, {}, "cudnn", {}, -1, {}, {}}, stream, options,
      [&] {
        cnnrt::cuda::conv2d_forward(g, x.data(), weight.data(), nullptr, y_cnnrt.data(), {},
                                    stream);
      },
      [&](Row& row) -> std::function<void()> {
        std::vector<cudnnConvolutionFwdAlgoPerf_t> found(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
        int returned = 0;
        BENCH_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
            dnn, x_desc.desc, x.data(), w_desc.desc, weight.data(), conv.desc, y_desc.desc,
            y_peer.data(), int(found.size()), &returned, found.data(), dnn_workspace.data(),
            dnn_bytes));
        const auto best = fastest(found, returned, row.name);
        BENCH_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.desc, best.mathType));
        row.peer_algo = int(best.algo);
        return [&, algo = best.algo] {
          BENCH_CUDNN_CHECK(cudnnConvolutionForward(
              dnn, &one, x_desc.desc, x.data(), w_desc.desc, weight.data(), conv.desc, algo,
              dnn_workspace.data(), dnn_bytes, &zero, y_desc.desc, y_peer.data()));
        };
      },
      y_cnnrt, y_peer, rows);

  bench_row(
      Row{fmt::format("{}.backward_data", cc.name), shape, {}, "cudnn", {}, -1, {}, {}}, stream,
      options,
      [&] {
        cnnrt::cuda::conv2d_backward_data(g, dy.data(), weight.data(), dx_cnnrt.data(), stream);
      },
      [&](Row& row) -> std::function<void()> {
        std::vector<cudnnConvolutionBwdDataAlgoPerf_t> found(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
        int returned = 0;
        BENCH_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
            dnn, w_desc.desc, weight.data(), y_desc.desc, dy.data(), conv.desc, x_desc.desc,
            dx_peer.data(), int(found.size()), &returned, found.data(), dnn_workspace.data(),
            dnn_bytes));
        const auto best = fastest(found, returned, row.name);
        BENCH_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.desc, best.mathType));
        row.peer_algo = int(best.algo);
        return [&, algo = best.algo] {
          BENCH_CUDNN_CHECK(cudnnConvolutionBackwardData(
              dnn, &one, w_desc.desc, weight.data(), y_desc.desc, dy.data(), conv.desc, algo,
              dnn_workspace.data(), dnn_bytes, &zero, x_desc.desc, dx_peer.data()));
        };
      },
      dx_cnnrt, dx_peer, rows);

  bench_row(
      Row{fmt::format("{}.backward_weights", cc.name), shape, {}, "cudnn", {}, -1, {}, {}}, stream,
      options,
      [&] {
        cnnrt::cuda::conv2d_backward_weights(g, x.data(), dy.data(), dw_cnnrt.data(), nullptr,
                                             cnnrt_workspace.data(), stream);
      },
      [&](Row& row) -> std::function<void()> {
        std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> found(
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
        int returned = 0;
        BENCH_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
            dnn, x_desc.desc, x.data(), y_desc.desc, dy.data(), conv.desc, w_desc.desc,
            dw_peer.data(), int(found.size()), &returned, found.data(), dnn_workspace.data(),
            dnn_bytes));
        const auto best = fastest(found, returned, row.name);
        BENCH_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.desc, best.mathType));
        row.peer_algo = int(best.algo);
        return [&, algo = best.algo] {
          BENCH_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
              dnn, &one, x_desc.desc, x.data(), y_desc.desc, dy.data(), conv.desc, algo,
              dnn_workspace.data(), dnn_bytes, &zero, w_desc.desc, dw_peer.data()));
        };
      },
      dw_cnnrt, dw_peer, rows);
}

// ---------------------------------------------------------------------------------------------
// Dense layers: the hand-written tiled GEMM against cuBLAS, both through cnnrt's own entry points.

struct DenseCase {
  const char* name;
  int n, in_features, out_features;
};

void bench_dense(const DenseCase& dc, const Options& options, cudaStream_t stream,
                 cublasHandle_t blas, std::vector<Row>& rows) {
  cnnrt::DenseGeometry g;
  g.n = dc.n;
  g.in_features = dc.in_features;
  g.out_features = dc.out_features;
  const std::string shape = fmt::format("{}x{} * ({}x{})^T -> {}x{}", g.n, g.in_features,
                                        g.out_features, g.in_features, g.n, g.out_features);
  using cnnrt::cuda::GemmImpl;

  // in: [n, in], weight: [out, in], dout: [n, out]
  const auto in = random_buffer(g.in_size(), 11);
  const auto weight = random_buffer(g.weight_size(), 12);
  const auto dout = random_buffer(g.out_size(), 13);
  auto out_tiled = poisoned_buffer(g.out_size()), out_blas = poisoned_buffer(g.out_size());
  auto din_tiled = poisoned_buffer(g.in_size()), din_blas = poisoned_buffer(g.in_size());
  auto dw_tiled = poisoned_buffer(g.weight_size()), dw_blas = poisoned_buffer(g.weight_size());
  CNNRT_CUDA_CHECK(cudaDeviceSynchronize());  // the fills above are done before anything is timed

  auto forward = [&](GemmImpl impl, DeviceBuffer<float>& out) {
    cnnrt::cuda::dense_forward(g, in.data(), weight.data(), nullptr, out.data(), {}, impl, blas,
                               stream);
  };
  auto backward_data = [&](GemmImpl impl, DeviceBuffer<float>& din) {
    cnnrt::cuda::dense_backward_data(g, dout.data(), weight.data(), din.data(), {}, impl, blas,
                                     stream);
  };
  auto backward_weights = [&](GemmImpl impl, DeviceBuffer<float>& dw) {
    cnnrt::cuda::dense_backward_weights(g, in.data(), dout.data(), dw.data(), nullptr, impl, blas,
                                        stream);
  };

  // FP32: the tiled kernel against cuBLAS's SGEMM. TF32 (rows named "*.tf32"): the tensor-core
  // kernel against cuBLAS in its TF32 tensor-op mode, the handle back in FP32 after each call.
  struct Precision {
    const char* suffix;
    GemmImpl cnnrt;
    bool peer_tf32;
  };
  for (const Precision& p :
       {Precision{"", GemmImpl::tiled, false}, Precision{".tf32", GemmImpl::tf32, true}}) {
    auto row = [&](const char* pass) {
      return Row{
          fmt::format("{}.{}{}", dc.name, pass, p.suffix), shape, {}, "cublas", {}, -1, {}, {}};
    };
    auto peer = [&](std::function<void()> call) {
      return [&, call](Row&) -> std::function<void()> {
        if (!p.peer_tf32) return call;
        return [&, call] {
          CNNRT_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_TF32_TENSOR_OP_MATH));
          call();
          CNNRT_CUBLAS_CHECK(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
        };
      };
    };
    bench_row(
        row("forward"), stream, options, [&] { forward(p.cnnrt, out_tiled); },
        peer([&] { forward(GemmImpl::cublas, out_blas); }), out_tiled, out_blas, rows);
    bench_row(
        row("backward_data"), stream, options, [&] { backward_data(p.cnnrt, din_tiled); },
        peer([&] { backward_data(GemmImpl::cublas, din_blas); }), din_tiled, din_blas, rows);
    bench_row(
        row("backward_weights"), stream, options, [&] { backward_weights(p.cnnrt, dw_tiled); },
        peer([&] { backward_weights(GemmImpl::cublas, dw_blas); }), dw_tiled, dw_blas, rows);
  }
}

// ---------------------------------------------------------------------------------------------

std::string format_us(const std::optional<double>& us) {
  return us ? fmt::format("{:.1f}", *us) : std::string("-");
}

void print_table(const std::vector<Row>& rows) {
  fmt::print("{:<32} {:<46} {:>11} {:<7} {:>11} {:>11} {:>10}\n", "name", "shape", "cnnrt_us",
             "peer", "peer_us", "peer/cnnrt", "rel_diff");
  for (const Row& r : rows) {
    const std::string ratio = r.cnnrt_us && r.peer_us && *r.cnnrt_us > 0.0
                                  ? fmt::format("{:.3f}", *r.peer_us / *r.cnnrt_us)
                                  : std::string("-");
    const std::string diff = r.max_rel_diff ? fmt::format("{:.1e}", *r.max_rel_diff) : "-";
    fmt::print("{:<32} {:<46} {:>11} {:<7} {:>11} {:>11} {:>10}\n", r.name, r.shape,
               format_us(r.cnnrt_us), r.peer, format_us(r.peer_us), ratio, diff);
    if (!r.error.empty()) fmt::print("    error: {}\n", r.error);
  }
}

nlohmann::json optional_json(const std::optional<double>& value) {
  // NaN (an unwritten output element) is not JSON: it becomes null like a missing value.
  if (!value || std::isnan(*value)) return nullptr;
  return *value;
}

void write_json(const std::string& path, const std::vector<Row>& rows, const Options& options,
                const cnnrt::CudaDeviceInfo& device) {
  nlohmann::json kernels = nlohmann::json::array();
  for (const Row& r : rows) {
    nlohmann::json k = {{"name", r.name},
                        {"shape", r.shape},
                        {"cnnrt_us", optional_json(r.cnnrt_us)},
                        {"peer", r.peer},
                        {"peer_us", optional_json(r.peer_us)},
                        {"peer_algo", r.peer_algo},
                        {"max_rel_diff", optional_json(r.max_rel_diff)}};
    if (!r.error.empty()) k["error"] = r.error;
    kernels.push_back(std::move(k));
  }
  const nlohmann::json doc = {{"gpu", device.name},
                              {"cudnn_version", cudnnGetVersion()},
                              {"cublas_math", "fp32 (CUBLAS_DEFAULT_MATH)"},
                              {"cudnn_math", "fp32 (CUDNN_FMA_MATH)"},
                              {"repeats", options.repeats},
                              {"warmup", options.warmup},
                              {"kernels", kernels}};
  std::ofstream file(path);
  if (!file) throw cnnrt::Error(fmt::format("--json: cannot write {}", path));
  file << doc.dump(2) << "\n";
  if (!file) throw cnnrt::Error(fmt::format("--json: writing {} failed", path));
}

int parse_positive(const char* flag, const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < 1 || value > 100000)
    throw std::invalid_argument(
        fmt::format("{} wants a whole number in 1..100000, got '{}'", flag, text));
  return int(value);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json")
      options.json_path = value();
    else if (arg == "--repeats")
      options.repeats = parse_positive("--repeats", value());
    else if (arg == "--warmup")
      options.warmup = parse_positive("--warmup", value());
    else if (arg == "--filter")
      options.filter = value();
    else if (arg == "--max-seconds")
      options.max_seconds = parse_positive("--max-seconds", value());
    else if (arg == "-h" || arg == "--help") {
      fmt::print(
          "usage: cnnrt_kernel_bench [--json FILE] [--repeats N (50)] [--warmup N (5)] "
          "[--filter TEXT] [--max-seconds S]\nexit codes: 0 done, 1 error, 2 usage, 3 no CUDA "
          "device\n");
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'");
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "cnnrt_kernel_bench: {}\n", e.what());
    return kExitUsage;
  }
  try {
    std::string why_none;
    const auto devices = cnnrt::cuda_devices(&why_none);
    if (devices.empty()) {
      fmt::print("cnnrt_kernel_bench: no CUDA device ({}): nothing timed\n", why_none);
      return kExitNoDevice;
    }
    CNNRT_CUDA_CHECK(cudaSetDevice(devices.front().index));
    fmt::print(
        "device: {} (compute capability {}.{}), cuDNN {}, {} repeats after {} warm-up, "
        "median device time per launch\n",
        devices.front().name, devices.front().major, devices.front().minor, cudnnGetVersion(),
        options.repeats, options.warmup);

    Stream stream;
    Cudnn dnn(stream.handle);
    Cublas blas(stream.handle);
    using cnnrt::Padding;
    const ConvCase conv_cases[] = {
        {"lenet5.conv1", 256, 1, 28, 28, 6, 5, 5, 1, Padding::same()},
        {"lenet5.conv2", 256, 6, 14, 14, 16, 5, 5, 1, Padding::valid()},
        {"alexnet.conv1", 32, 3, 227, 227, 96, 11, 11, 4, Padding::valid()},
        {"alexnet.conv2", 32, 96, 27, 27, 256, 5, 5, 1, Padding::explicit_pad(2, 2)},
        {"alexnet.conv3", 32, 256, 13, 13, 384, 3, 3, 1, Padding::explicit_pad(1, 1)},
        {"alexnet.conv4", 32, 384, 13, 13, 384, 3, 3, 1, Padding::explicit_pad(1, 1)},
        {"alexnet.conv5", 32, 384, 13, 13, 256, 3, 3, 1, Padding::explicit_pad(1, 1)},
    };
    const DenseCase dense_cases[] = {
        {"lenet5.fc1", 256, 400, 120},   {"lenet5.fc2", 256, 120, 84},
        {"lenet5.fc3", 256, 84, 10},     {"alexnet.fc6", 32, 9216, 4096},
        {"alexnet.fc7", 32, 4096, 4096}, {"alexnet.fc8", 32, 4096, 1000},
    };
    std::vector<Row> rows;
    // A layer whose set-up fails (allocation, descriptors) is reported as one row; the rest run.
    auto setup_failed = [&](const char* layer, const char* peer, const std::exception& e) {
      rows.push_back(Row{fmt::format("{}.setup", layer), "", {}, peer, {}, -1, {}, e.what()});
      (void)cudaGetLastError();
    };
    for (const auto& cc : conv_cases) {
      try {
        bench_conv(cc, options, stream.handle, dnn.handle, rows);
      } catch (const std::exception& e) {
        setup_failed(cc.name, "cudnn", e);
      }
    }
    for (const auto& dc : dense_cases) {
      try {
        bench_dense(dc, options, stream.handle, blas.handle, rows);
      } catch (const std::exception& e) {
        setup_failed(dc.name, "cublas", e);
      }
    }
    print_table(rows);
    if (!options.json_path.empty()) write_json(options.json_path, rows, options, devices.front());

    std::size_t incomplete = 0;
    for (const Row& r : rows)
      if (!r.cnnrt_us || !r.peer_us) ++incomplete;
    if (incomplete > 0) {
      fmt::print(stderr, "cnnrt_kernel_bench: {} of {} rows could not be timed (see 'error:')\n",
                 incomplete, rows.size());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "cnnrt_kernel_bench: error: {}\n", e.what());
    return 1;
  }
}
