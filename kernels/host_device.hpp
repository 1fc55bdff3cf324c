#pragma once
// CNNRT_HOST_DEVICE: a function compiled for both the host and the device (the CPU twin and the
// CUDA kernel run the same code), a plain inline function in host-only translation units.
#if defined(__CUDACC__)
#define CNNRT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CNNRT_HOST_DEVICE inline
#endif
