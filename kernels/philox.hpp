#pragma once
// Philox4x32-10 (Salmon et al., SC'11), the counter-based generator behind dropout masks. Header
// only and usable from host and device code, so the CPU twin and the CUDA kernel draw the same
// bits.
#include <cstdint>

#include "kernels/host_device.hpp"

namespace cnnrt {

struct Philox4 {
  std::uint32_t v[4];
};

CNNRT_HOST_DEVICE std::uint32_t philox_mulhi(std::uint32_t a, std::uint32_t b, std::uint32_t* lo) {
  const std::uint64_t product = std::uint64_t(a) * std::uint64_t(b);
  *lo = static_cast<std::uint32_t>(product);
  return static_cast<std::uint32_t>(product >> 32);
}

CNNRT_HOST_DEVICE Philox4 philox4x32_10(Philox4 counter, std::uint32_t key0, std::uint32_t key1) {
  constexpr std::uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr std::uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    std::uint32_t lo0, lo1;
    const std::uint32_t hi0 = philox_mulhi(kMul0, counter.v[0], &lo0);
    const std::uint32_t hi1 = philox_mulhi(kMul1, counter.v[2], &lo1);
    counter = Philox4{{hi1 ^ counter.v[1] ^ key0, lo1, hi0 ^ counter.v[3] ^ key1, lo0}};
    key0 += kWeyl0;
    key1 += kWeyl1;
  }
  return counter;
}

// The uniform draw in [0, 1) for element `index` of a dropout launch (see DropoutParams).
CNNRT_HOST_DEVICE float philox_uniform(std::uint64_t seed, std::uint64_t offset,
                                       std::uint64_t index) {
  const std::uint64_t block = index >> 2;
  const Philox4 bits = philox4x32_10(
      Philox4{{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
               static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(offset >> 32)}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return static_cast<float>(bits.v[index & 3] >> 8) * (1.0f / 16777216.0f);
}

}  // namespace cnnrt
