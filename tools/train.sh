#!/usr/bin/env bash
# The main job: installs what it needs, builds, trains LeNet-5 on Fashion-MNIST (on the GPU when
# there is one, else on the CPU). Extra arguments go to `cnnrt train`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
bash tools/build.sh
"${BUILD_DIR:-build}/tools/cnnrt" train "$@"
