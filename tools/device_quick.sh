#!/usr/bin/env bash
# A short GPU run for iterating on kernels (about a minute), between full device checks: the
# kernel parity suites, the LeNet-5 kernel benchmark rows, `cnnrt bench` and one 10-epoch
# training run. Not a substitute for tools/device_check.sh, whose results are the record.
# Same set-up: tools/device_build.sh here, then one device-tool run with carry
# ["build-gpu", "data"]:  bash tools/device_quick.sh
# Exit code: the number of steps that failed (0: all passed).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
build=$PWD/build-gpu
data=$PWD/data/fashion-mnist
if [[ -f $build/executables.tar.gz ]]; then
  tar -C "$build" -xzf "$build/executables.tar.gz" || exit 1
fi
echo "commit $(cat "$build/COMMIT" 2>/dev/null || echo unknown)"
nvidia-smi -L
# cuDNN (for the kernel benchmark's peer) from PyTorch's nvidia packages, as device_check.sh does.
cudnn_lib=$(timeout 60 find / -xdev -name 'libcudnn.so.9' -path '*site-packages*' 2>/dev/null |
  head -1 | xargs -r dirname)
[[ -n $cudnn_lib ]] && export LD_LIBRARY_PATH=$cudnn_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

failed=0
step() {
  echo
  echo "==== $*"
  timeout -k 5 120 "$@" || { echo "!! failed (exit $?): $*"; failed=$((failed + 1)); }
}
for suite in cuda_conv_test cuda_pool_test cuda_dense_test fusion_test; do
  step env GTEST_BRIEF=1 "$build/tests/$suite"
done
step "$build/tools/cnnrt_kernel_bench" --filter lenet5
step "$build/tools/cnnrt" bench --device cuda --model lenet5 --batch 256
step "$build/tools/cnnrt" train --device cuda --epochs 10 --batch 256 --data "$data"
echo
echo "device_quick: $failed step(s) failed"
exit "$failed"
