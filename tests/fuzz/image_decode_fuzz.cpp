// libFuzzer target: a layout byte, then arbitrary bytes as an image file (PNG, JPEG, BMP, ...).
// Built and run by tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(image_decode)
