#pragma once
// Move-only RAII device allocation. Destruction never throws (a failing cudaFree is ignored: the
// context is already broken and the next checked call reports it).
#include <cstddef>
#include <utility>
#include <vector>

#include "host/memory.hpp"
#include "kernels/cuda/check.hpp"

namespace cnnrt {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) data_ = static_cast<T*>(device_allocate(bytes()));
  }
  ~DeviceBuffer() {
    if (data_ != nullptr) (void)cudaFree(data_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      if (data_ != nullptr) (void)cudaFree(data_);
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

  void upload(const T* host, std::size_t count) {
    if (count > count_) throw Error("DeviceBuffer::upload: more elements than allocated");
    CNNRT_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    if (count_ > 0)
      CNNRT_CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return host;
  }
  // Fills every byte with `byte` (0xFF gives NaN for float: the tests' poison).
  void fill_bytes(int byte) {
    if (count_ > 0) CNNRT_CUDA_CHECK(cudaMemset(data_, byte, bytes()));
  }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace cnnrt
