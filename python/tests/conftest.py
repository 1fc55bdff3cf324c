"""Shared fixtures: the module (skipped when not built), the `cnnrt` tool, a small IDX data set.

tools/test.sh sets PYTHONPATH to the build tree's python/ directory and CNNRT_TOOL to the tool.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest

if os.environ.get("CNNRT_REQUIRE_PYTHON") == "1":
    import cnnrt  # CI: the suite must run, so a module that does not import is a failure
else:
    cnnrt = pytest.importorskip(
        "cnnrt", reason="the cnnrt module was not built (CNNRT_BUILD_PYTHON, needs nanobind)"
    )

# The synthetic data set: 10 classes of 28x28 images, each a bright 6x6 square at a
# class-dependent place over noise, so that a few epochs of LeNet-5 learn something.
TRAIN_COUNT = 384
TEST_COUNT = 128


def synthetic_images(count, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 80, size=(count, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        y, x = 3 + 7 * (label // 4), 3 + 6 * (label % 4)
        images[i, y : y + 6, x : x + 6] = 200 + rng.integers(0, 56)
    return images, labels


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory):
    """A directory of MNIST-format IDX files (the names `cnnrt train --data` looks for)."""
    d = tmp_path_factory.mktemp("idx")
    for split, count, seed in (("train", TRAIN_COUNT, 1), ("t10k", TEST_COUNT, 2)):
        images, labels = synthetic_images(count, seed)
        cnnrt.write_idx_file(str(d / f"{split}-images-idx3-ubyte"), images)
        cnnrt.write_idx_file(str(d / f"{split}-labels-idx1-ubyte"), labels)
    return d


@pytest.fixture(scope="session")
def tool():
    """Runs the `cnnrt` command-line tool; returns its stdout, failing on a non-zero exit."""
    path = os.environ.get("CNNRT_TOOL")
    if not path:
        here = pathlib.Path(cnnrt.__file__).resolve().parent
        path = str(here.parent.parent / "tools" / "cnnrt")  # build/python/cnnrt -> build/tools
    if not os.access(path, os.X_OK):
        pytest.skip(f"the cnnrt tool was not found at {path} (set CNNRT_TOOL)")

    def run(*args):
        result = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert result.returncode == 0, f"cnnrt {' '.join(map(str, args))}: {result.stderr}"
        return result.stdout

    return run


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file, read with NumPy alone (an independent reader)."""
    import json
    import struct

    raw = pathlib.Path(path).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        data = raw[8 + size + begin : 8 + size + end]
        tensors[name] = np.frombuffer(data, dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors, metadata
