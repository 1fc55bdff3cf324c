// libFuzzer target: arbitrary bytes as an image folder's cache file. Built and run by
// tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(image_cache)
