// libFuzzer target: arbitrary bytes as an IDX file (plain or gzipped). Built and run by
// tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(idx)
