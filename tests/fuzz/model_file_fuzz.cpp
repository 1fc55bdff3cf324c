// libFuzzer target: arbitrary bytes as a JSON model file. Built and run by tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(model_file)
