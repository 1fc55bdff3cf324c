// libFuzzer target: a layout byte, then arbitrary bytes as a CIFAR-10/100 binary file. Built and
// run by tools/fuzz.sh.
#include "tests/fuzz/targets.hpp"

CNNRT_FUZZ_TARGET(cifar)
