#pragma once
// The classic fixed convolution kernels of docs/math.md section 9, as data, for `cnnrt filter`.
// Kernels are applied as cnnrt's convolution applies them: cross-correlation, no flipping.
#include <string>
#include <vector>

#include "cnnrt/export.hpp"

namespace cnnrt {

// The kernel called `name`, row-major [kh, kw]; *kh and *kw receive its size. Names:
//   sobel-x, sobel-y, scharr-x, scharr-y, laplacian, edge1, edge2, line, diagonal, nine-top (3x3)
//   gaussian: size 2 * ceil(3 sigma) + 1, weights e^{-(x^2+y^2)/(2 sigma^2)} normalised to sum 1
//   haar-edge-x, haar-edge-y, haar-line-x, haar-line-y, haar-checker: 6x6 rectangle differences
//     (+1 / -1 halves; -1 / +2 / -1 thirds; +1 / -1 / -1 / +1 quadrants), each summing to 0
// `sigma` is used by gaussian only (0 < sigma <= 16). An unknown name throws, listing the names.
CNNRT_API std::vector<float> classic_kernel(const std::string& name, int* kh, int* kw,
                                            float sigma = 1.0f);

// Every name classic_kernel accepts.
CNNRT_API std::vector<std::string> classic_kernel_names();

}  // namespace cnnrt
