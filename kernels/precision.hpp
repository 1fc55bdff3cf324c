#pragma once
// Rounding of FP32 values to the tensor cores' input formats (docs/math.md, reduced precision):
// BF16 (8-bit significand, FP32's exponent range) and TF32 (11-bit significand, kept in a float
// whose low 13 bits are zero). Host and device code share these functions, so a CPU reference fed
// with rounded operands sees the same values a tensor-core kernel multiplies.
//
// - BF16: round to nearest, ties to even, as __float2bfloat16_rn (PTX cvt.rn.bf16.f32).
// - TF32: round to nearest, ties AWAY from zero, as wmma::__float_to_tf32 (PTX cvt.rna.tf32.f32),
//   the conversion the WMMA kernels use; tf32_round_even is the ties-to-even variant (PTX
//   cvt.rn.tf32.f32, sm_90), for comparison. The two differ only on exact ties.
// Both: subnormals are rounded, not flushed; values past the format's largest finite value round
// to infinity with the sign kept (no saturation); infinities stay; any NaN becomes the canonical
// quiet NaN (0x7FFF as BF16, as CUDA's own host conversion returns; 0x7FFFFFFF as TF32).
#include <cstdint>
#include <cstring>

#include "kernels/host_device.hpp"

namespace cnnrt {

inline constexpr std::uint16_t kBf16CanonicalNan = 0x7FFFu;
inline constexpr std::uint32_t kTf32CanonicalNan = 0x7FFFFFFFu;
inline constexpr std::uint32_t kTf32DroppedBits = 13;  // FP32's 23 stored bits less TF32's 10

CNNRT_HOST_DEVICE std::uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

CNNRT_HOST_DEVICE float bits_to_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

CNNRT_HOST_DEVICE bool bits_are_nan(std::uint32_t u) {
  return (u & 0x7FFFFFFFu) > 0x7F800000u;
}

// Adding half an ulp of the target (less one, plus the kept lsb for ties to even) and truncating
// rounds to nearest; a carry out of the significand bumps the exponent, up to infinity.
CNNRT_HOST_DEVICE std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t u = float_to_bits(f);
  if (bits_are_nan(u)) return kBf16CanonicalNan;
  const std::uint32_t kept_lsb = (u >> 16) & 1u;
  return static_cast<std::uint16_t>((u + 0x7FFFu + kept_lsb) >> 16);
}

CNNRT_HOST_DEVICE float bf16_bits_to_float(std::uint16_t b) {
  return bits_to_float(std::uint32_t(b) << 16);
}

// The float nearest to f that BF16 holds (ties to even).
CNNRT_HOST_DEVICE float bf16_round(float f) {
  return bf16_bits_to_float(float_to_bf16_bits(f));
}

// The TF32 value nearest to f, ties away from zero (cvt.rna.tf32.f32), low 13 bits zero.
CNNRT_HOST_DEVICE float tf32_round(float f) {
  const std::uint32_t u = float_to_bits(f);
  if (bits_are_nan(u)) return bits_to_float(kTf32CanonicalNan);
  constexpr std::uint32_t kHalf = 1u << (kTf32DroppedBits - 1);
  constexpr std::uint32_t kKeep = ~((1u << kTf32DroppedBits) - 1u);
  return bits_to_float((u + kHalf) & kKeep);
}

// The TF32 value nearest to f, ties to even (cvt.rn.tf32.f32).
CNNRT_HOST_DEVICE float tf32_round_even(float f) {
  const std::uint32_t u = float_to_bits(f);
  if (bits_are_nan(u)) return bits_to_float(kTf32CanonicalNan);
  constexpr std::uint32_t kHalfLess1 = (1u << (kTf32DroppedBits - 1)) - 1u;
  constexpr std::uint32_t kKeep = ~((1u << kTf32DroppedBits) - 1u);
  const std::uint32_t kept_lsb = (u >> kTf32DroppedBits) & 1u;
  return bits_to_float((u + kHalfLess1 + kept_lsb) & kKeep);
}

}  // namespace cnnrt
