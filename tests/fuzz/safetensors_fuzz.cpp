// libFuzzer target: arbitrary bytes as a safetensors file. Built and run by tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(safetensors)
