# syntax=docker/dockerfile:1
# cnnrt in a container. The `build` stage installs the dependencies, builds, and runs the whole
# test suite with tools/test.sh, the command CI runs (GPU tests skip: `docker build` has no GPU).
# The `runtime` stage holds only the `cnnrt` tool, libcnnrt.so, the model presets and
# Fashion-MNIST, and trains LeNet-5 by default.
#   docker build -t cnnrt .
#   docker run --rm --gpus all cnnrt                    # cnnrt train: LeNet-5 on Fashion-MNIST
#   docker run --rm --gpus all cnnrt cnnrt info
# tests/dockerfile_check.py checks this file's structure with Docker's own parser.
ARG CUDA_VERSION=13.0.1
ARG UBUNTU_VERSION=24.04

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS build
ENV DEBIAN_FRONTEND=noninteractive
# Build for Hopper (sm_90 + PTX), the CMake default; override with --build-arg CUDAARCHS=...
ARG CUDAARCHS=90
ENV CUDAARCHS=${CUDAARCHS}
WORKDIR /src
COPY . .
# The same packages CI installs. Ubuntu does not carry Debian's dataset-fashion-mnist (install_deps
# skips it there), so the data is fetched, checksummed, into the directory that package would fill.
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates curl \
 && bash tools/install_deps.sh \
 && bash tools/fetch_fashion_mnist.sh /usr/share/datasets/fashion-mnist \
 && rm -rf /var/lib/apt/lists/*
# Build and test exactly as CI does; a failing test fails the image build.
RUN BUILD_DIR=/src/build bash tools/test.sh
# Install into a staging tree with the configured prefix (/usr/local), so the preset directory
# compiled into the library (share/cnnrt/presets under the prefix) is where the files land.
RUN DESTDIR=/staging cmake --install /src/build

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION} AS runtime
COPY --from=build /staging/usr/local/ /usr/local/
COPY --from=build /usr/share/datasets/fashion-mnist/ /usr/share/datasets/fashion-mnist/
ENV CNNRT_DATA_DIR=/usr/share/datasets/fashion-mnist
# Resolve libcnnrt.so from /usr/local/lib, and fail the build now if the tool cannot load.
RUN ldconfig && cnnrt --help >/dev/null
WORKDIR /work
CMD ["cnnrt", "train"]
