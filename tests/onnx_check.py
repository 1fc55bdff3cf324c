#!/usr/bin/env python3
"""ONNX export and weights-only safetensors, checked with other frameworks:
  - for lenet5, lenet5-classic and alexnet (random weights: `cnnrt export` without --weights) and
    fmnist-bn (a few training steps first, so batch norm's running statistics are not 0 and 1),
    `cnnrt export --weights W --onnx M` writes a file onnx.checker accepts, and onnxruntime's
    logits of a few images agree with `cnnrt predict --out` on the same image files within
    ATOL, with the same class for every image; the input is normalised from the metadata the
    file carries (normalization_mean, normalization_std). One batch of all images, and the first
    image alone (the batch dimension is dynamic). With --softmax the output is the probabilities.
  - when torch is importable: the weights-only file (`cnnrt export --safetensors`) loads into the
    equivalent PyTorch module (tools/bench/torch_interop.py builds it) with
    load_state_dict(strict=True), while the training checkpoint (with momentum) is refused.
usage: onnx_check.py CNNRT_TOOL SCRATCH_DIR   exit 0 pass, 1 fail, 77 skipped (onnx, onnxruntime
or numpy missing, or a cnnrt built without ONNX export)
"""
import json
import os
import shutil
import subprocess
import sys

SKIP = 77
ATOL = 1e-4  # |logit_onnxruntime - logit_cnnrt|: FP32 summation order, logits O(1..10)
HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = [  # (preset, images, train first)
    ("lenet5", 8, False),
    ("lenet5-classic", 8, False),
    ("alexnet", 2, False),
    ("fmnist-bn", 8, True),
]


def skip(message):
    print(f"onnx_check: SKIPPED: {message}")
    sys.exit(SKIP)


try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as missing:
    skip(f"cannot import {missing.name} (pip install onnx onnxruntime)")

sys.path.insert(0, os.path.join(HERE, "..", "tools", "bench"))
import torch_interop  # noqa: E402  (its safetensors reader and PyTorch network builder)


def run(tool, *args):
    result = subprocess.run([tool, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"cnnrt {' '.join(args)} exited {result.returncode}: "
                           f"{result.stderr.strip()}")
    return result.stdout


def write_idx(path, array):
    """An IDX file (uint8): magic 0x0000_08_<dims>, big-endian dimensions, the bytes."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        for d in array.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_images(directory, count, c, h, w, rng):
    """`count` random images as PGM (1 channel) or PPM (3), which cnnrt decodes byte for byte;
    returns the paths and the bytes [count, c, h, w]."""
    pixels = rng.integers(0, 256, size=(count, h, w, c), dtype=np.uint8)
    paths = []
    for i in range(count):
        path = os.path.join(directory, f"image{i}.{'pgm' if c == 1 else 'ppm'}")
        with open(path, "wb") as f:
            f.write(f"{'P5' if c == 1 else 'P6'}\n{w} {h}\n255\n".encode())
            f.write(pixels[i].tobytes())
        paths.append(path)
    return paths, pixels.transpose(0, 3, 1, 2)


def normalised(pixels, metadata):
    """The model's input from bytes, as the ONNX file's metadata says: (x / 255 - mean) / std."""
    c = pixels.shape[1]
    mean = np.array([float(v) for v in metadata["normalization_mean"].split(",")], np.float32)
    std = np.array([float(v) for v in metadata["normalization_std"].split(",")], np.float32)
    mean, std = (np.broadcast_to(v, (c,)).reshape(1, c, 1, 1) for v in (mean, std))
    return ((pixels.astype(np.float32) / np.float32(255) - mean) / std).astype(np.float32)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_onnx(tool, preset, weights, paths, pixels, tmp, failures, softmax_too):
    logits_path = os.path.join(tmp, f"{preset}_logits.safetensors")
    run(tool, "predict", "--weights", weights, "--device", "cpu", "--out", logits_path, *paths)
    expected = torch_interop.read_safetensors(logits_path)["logits"].astype(np.float32)
    variants = [(False, expected)] + ([(True, softmax(expected))] if softmax_too else [])
    for with_softmax, reference in variants:
        path = os.path.join(tmp, f"{preset}{'_softmax' if with_softmax else ''}.onnx")
        run(tool, "export", "--weights", weights, "--onnx", path,
            *(["--softmax"] if with_softmax else []))
        model = onnx.load(path)
        onnx.checker.check_model(model)
        metadata = {p.key: p.value for p in model.metadata_props}
        output = "probabilities" if with_softmax else "logits"
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        x = normalised(pixels, metadata)
        got = session.run([output], {"input": x})[0]
        first = session.run([output], {"input": x[:1]})[0]
        what = f"{preset}{' --softmax' if with_softmax else ''}"
        if got.shape != reference.shape:
            failures.append(f"{what}: onnxruntime gives {got.shape}, cnnrt {reference.shape}")
            continue
        diff = float(np.max(np.abs(got - reference)))
        diff_first = float(np.max(np.abs(first - reference[:1])))
        same_class = bool(np.array_equal(got.argmax(1), reference.argmax(1)))
        ops = sorted({n.op_type for n in model.graph.node})
        print(f"onnx_check: {what}: {len(paths)} images, {output} up to "
              f"{float(np.max(np.abs(reference))):.3g}, max |diff| {diff:.3g} "
              f"(batch of 1: {diff_first:.3g}), same class {same_class}; opset "
              f"{model.opset_import[0].version}, ops {', '.join(ops)}")
        if not (diff <= ATOL and diff_first <= ATOL and same_class):
            failures.append(f"{what}: max diff {diff:.3g} / {diff_first:.3g} (need <= {ATOL}), "
                            f"same class {same_class}")


def check_torch(preset, weights, checkpoint, failures):
    try:
        import torch
        from torch import nn
    except ImportError:
        print(f"onnx_check: {preset}: torch not importable; strict-load check skipped")
        return
    metadata = torch_interop.read_metadata(weights)
    module = torch_interop.build_torch_network(json.loads(metadata["model"]), nn)
    tensors = torch_interop.read_safetensors(weights)
    state = {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in tensors.items()}
    counters = [a.dtype for name, a in tensors.items() if name.endswith("num_batches_tracked")]
    if any(dtype != np.int64 for dtype in counters):
        failures.append(f"{preset}: num_batches_tracked is not int64: {counters}")
    try:
        module.load_state_dict(state, strict=True)
        print(f"onnx_check: {preset}: torch {torch.__version__} load_state_dict(strict=True) "
              f"accepts the weights file ({len(state)} tensors)")
    except RuntimeError as e:
        failures.append(f"{preset}: strict load refused the weights file: {e}")
    if checkpoint is not None:  # the training checkpoint holds momentum: strict load refuses it
        full = {name: torch.from_numpy(np.ascontiguousarray(a))
                for name, a in torch_interop.read_safetensors(checkpoint).items()}
        try:
            module.load_state_dict(full, strict=True)
            failures.append(f"{preset}: strict load accepted the checkpoint with momentum")
        except RuntimeError:
            pass


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tool, tmp = sys.argv[1], sys.argv[2]
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    probe = subprocess.run([tool, "export", "--onnx", os.path.join(tmp, "probe.onnx")],
                           capture_output=True, text=True)
    if probe.returncode != 0 and "no ONNX export" in probe.stderr:
        skip("this cnnrt is built without ONNX export")
    rng = np.random.default_rng(19)
    failures = []
    for preset, count, train in MODELS:
        workdir = os.path.join(tmp, preset)
        os.makedirs(workdir)
        weights = os.path.join(workdir, "weights.safetensors")
        checkpoint = None
        if train:
            # Random bytes and labels: a few steps move the running statistics.
            data = os.path.join(workdir, "data")
            os.makedirs(data)
            for split, n in (("train", 256), ("t10k", 16)):
                write_idx(os.path.join(data, f"{split}-images-idx3-ubyte"),
                          rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
                write_idx(os.path.join(data, f"{split}-labels-idx1-ubyte"),
                          rng.integers(0, 10, size=(n,), dtype=np.uint8))
            checkpoint = os.path.join(workdir, "checkpoint.safetensors")
            run(tool, "train", "--model", preset, "--data", data, "--device", "cpu", "--epochs",
                "1", "--batch", "32", "--checkpoint", checkpoint)
            run(tool, "export", "--weights", checkpoint, "--safetensors", weights)
        else:
            run(tool, "export", "--model", preset, "--seed", "7", "--safetensors", weights)
        c, h, w = (int(v) for v in json.loads(
            torch_interop.read_metadata(weights)["model"])["input"])
        paths, pixels = write_images(workdir, count, c, h, w, rng)
        check_onnx(tool, preset, weights, paths, pixels, workdir, failures,
                   softmax_too=preset in ("lenet5", "fmnist-bn"))
        if preset in ("lenet5", "fmnist-bn"):
            check_torch(preset, weights, checkpoint, failures)
        shutil.rmtree(workdir)  # alexnet's files are 250 MB each
    for failure in failures:
        print(f"onnx_check: FAIL: {failure}")
    print(f"onnx_check: {'PASS' if not failures else 'FAIL'}: onnx {onnx.__version__}, "
          f"onnxruntime {ort.__version__}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
