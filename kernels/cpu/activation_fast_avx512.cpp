// The fast sigmoid in AVX-512's 16 lanes, picked at run time by kernels/cpu/activation_fast.cpp.
// CMake builds this file alone with -mavx512f -ffp-contract=off (x86-64 only; elsewhere it is
// empty). It includes no header with inline functions or variables of external linkage: the linker
// could pick this file's copy of one for callers on any processor.
#include <cstddef>

#include "kernels/cpu/sigmoid_lanes.hpp"

namespace cnnrt::cpu::fast {

#ifdef __AVX512F__
// Declared (and called) in kernels/cpu/activation_fast.cpp.
void sigmoid_forward_avx512(std::size_t count, const float* z, float* a) {
  sigmoid_array<16>(count, z, a);
}
#endif

}  // namespace cnnrt::cpu::fast
