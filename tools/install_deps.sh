#!/usr/bin/env bash
# Installs the Debian packages cnnrt builds and runs with (the CUDA toolkit itself is expected at
# /usr/local/cuda). Skips apt when everything is already there; needs root otherwise.
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config libfmt-dev libgtest-dev googletest libcli11-dev
          nlohmann-json3-dev zlib1g-dev libdeflate-dev libstb-dev libdnnl-dev
          dataset-fashion-mnist python3 python3-dev libonnx-dev libprotobuf-dev
          libopenmpi-dev openmpi-bin)
# Debian-only: elsewhere (Ubuntu) tools/fetch_fashion_mnist.sh puts the data in the same place.
optional=(dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  installable=()
  for p in "${missing[@]}"; do
    if [[ " ${optional[*]} " == *" $p "* ]] && ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "install_deps: $p is not packaged here; skipping it (see tools/fetch_fashion_mnist.sh)"
      continue
    fi
    installable+=("$p")
  done
  apt-get install -y -qq --no-install-recommends "${installable[@]}" >/dev/null
fi
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install_deps: the CUDA toolkit (nvcc) is required at /usr/local/cuda" >&2
  exit 1
fi
