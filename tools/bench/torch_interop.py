#!/usr/bin/env python3
"""PyTorch interop check: a cnnrt checkpoint loaded into the equivalent PyTorch module gives the
same predictions as cnnrt itself.

1. Reads the checkpoint (safetensors: the `safetensors` package when importable, else the small
   reader below) and the network it records (its "model" metadata, cnnrt's model-file JSON), and
   builds the same network from PyTorch modules: conv2d -> nn.Conv2d (with cnnrt's "same" padding
   as explicit zero padding), batch_norm -> nn.BatchNorm2d (nn.BatchNorm1d after a dense layer),
   relu / leaky_relu / sigmoid, max_pool / avg_pool -> nn.MaxPool2d / nn.AvgPool2d,
   global_avg_pool -> nn.AdaptiveAvgPool2d(1), dense -> nn.Linear (after a flatten in NCHW
   order, as cnnrt flattens), dropout -> nn.Dropout (the identity in eval). Each module carries
   the cnnrt layer's name, so the checkpoint's tensors (conv1.weight, bn1.running_var, ...) load
   with load_state_dict(strict=True); the optimizer's *.momentum tensors are left out, and
   num_batches_tracked, a float of shape [] in cnnrt, becomes PyTorch's int64.
2. Gets cnnrt's logits of the Fashion-MNIST test set: --logits FILE from `cnnrt predict`, or runs
   `CNNRT predict --model M --weights CKPT --out TMP` itself, M the checkpoint's own network
   (--cnnrt gives the tool's path).
3. Runs the same images through PyTorch in eval mode (batch norm with the running statistics),
   normalised as cnnrt trains: x = (byte / 255 - 0.2860) / 0.3530, in strict FP32 (TF32 off), and
   compares:
     predicted classes agree on >= 99.9% of the images (--min-agreement), and
     max |logit_torch - logit_cnnrt| <= 1e-3 (--atol; the logits are O(10), so this is about
     1e-4 relative: far above FP32 summation-order noise, far below any real difference).
Prints one verdict line; exits 0 when both hold, 1 on a mismatch, 2 when it cannot run (torch
missing, unreadable files, a layer type this script does not know).

Usage: torch_interop.py --weights CKPT [--data DIR] [--device cpu|cuda] [--logits FILE]
                        [--cnnrt PATH] [--cnnrt-device auto|cpu|cuda] [--test-limit N]
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as missing:
    print(f"torch_interop: ERROR: numpy is not installed ({missing}); run this where PyTorch is",
          file=sys.stderr)
    sys.exit(2)

MEAN, STD = 0.2860, 0.3530
DEFAULT_ATOL = 1e-3
DEFAULT_MIN_AGREEMENT = 0.999
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def fail_setup(message):
    print(f"torch_interop: ERROR: {message}", file=sys.stderr)
    sys.exit(2)


def read_metadata(path):
    """The __metadata__ of a safetensors file (a dict of strings)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            fail_setup(f"{path}: too short for a safetensors file")
        (header_len,) = struct.unpack("<Q", raw)
        header = json.loads(f.read(header_len))
    return header.get("__metadata__", {})


def read_safetensors(path):
    """All tensors of a safetensors file as numpy arrays."""
    try:
        from safetensors.numpy import load_file
        return dict(load_file(path))
    except ImportError:
        pass
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        fail_setup(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if 8 + header_len > len(raw):
        fail_setup(f"{path}: header length {header_len} exceeds the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + header_len])
    data = raw[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            fail_setup(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        array = np.frombuffer(data[begin:end], dtype=np.dtype(dtype).newbyteorder("<"))
        if array.size != int(np.prod(shape, dtype=np.int64)):
            fail_setup(f"{path}: tensor {name} holds {array.size} values, shape says {shape}")
        tensors[name] = array.reshape(shape).astype(dtype)
    return tensors


def read_idx(path, magic):
    """An IDX file, gzipped or plain, as a uint8 array: images [n, rows, cols] or labels [n]."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        fail_setup(f"{path}: IDX magic {got}, expected {magic}")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        fail_setup(f"{path}: {data.size} bytes of data, header says {shape}")
    return data.reshape(shape)


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    fail_setup(f"{data_dir}: neither {stem}.gz nor {stem} exists")


def load_test_set(data_dir, limit):
    images = read_idx(find_idx(data_dir, "t10k-images-idx3-ubyte"), 2051)
    labels = read_idx(find_idx(data_dir, "t10k-labels-idx1-ubyte"), 2049)
    if limit > 0:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def cnnrt_logits(args, tmp_dir):
    """cnnrt's logits and labels: from --logits, or by running `cnnrt predict`."""
    path = args.logits
    if path is None:
        tool = args.cnnrt or shutil.which("cnnrt")
        if tool is None or not os.path.exists(tool):
            fail_setup("cannot find the cnnrt tool: pass --cnnrt PATH or --logits FILE")
        path = os.path.join(tmp_dir, "cnnrt_logits.safetensors")
        # The network the checkpoint records, as a model file for --model.
        model_path = os.path.join(tmp_dir, "model.json")
        with open(model_path, "w") as f:
            f.write(read_metadata(args.weights)["model"])
        command = [tool, "predict", "--model", model_path, "--weights", args.weights, "--data",
                   args.data, "--device", args.cnnrt_device, "--out", path]
        if args.test_limit > 0:
            command += ["--test-limit", str(args.test_limit)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            fail_setup(f"{' '.join(command)} exited {result.returncode}: "
                       f"{result.stderr.strip() or result.stdout.strip()}")
    tensors = read_safetensors(path)
    for name in ("logits", "labels"):
        if name not in tensors:
            fail_setup(f"{path}: no '{name}' tensor (has {sorted(tensors)})")
    return tensors["logits"].astype(np.float32), tensors["labels"].astype(np.int64), path


def same_padding(size, kernel, stride):
    """cnnrt's "same" (host/shape.cpp): out = ceil(size / stride), the extra row after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pair(value):
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def build_torch_network(model, nn):
    """A torch.nn.Module computing the network of a cnnrt model description, with each layer a
    submodule named as in cnnrt (so parameter and buffer names match the checkpoint's)."""

    class Flatten(nn.Module):
        def forward(self, x):
            return x.flatten(1)  # NCHW order, as cnnrt flattens

    class Network(nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []  # the modules in order

        def add(self, name, module, named):
            if named:
                self.add_module(name, module)
            else:
                self.add_module(f"_{len(self.steps)}", module)
            self.steps.append(module)

        def forward(self, x):
            for module in self.steps:
                x = module(x)
            return x

    net = Network()
    c, h, w = (int(v) for v in model["input"])
    flat = False  # whether the value is [n, features] (after a dense layer)
    for layer in model["layers"]:
        kind, name = layer["type"], layer["name"]
        if kind == "conv2d":
            if flat:
                fail_setup(f"{name}: a convolution after a dense layer")
            kh, kw = pair(layer["kernel"])
            sh, sw = pair(layer.get("stride", 1))
            padding = layer.get("padding", "valid")
            if padding == "same":
                (top, bottom), (left, right) = same_padding(h, kh, sh), same_padding(w, kw, sw)
            elif padding == "valid":
                top = bottom = left = right = 0
            else:
                (top, left) = pair(padding)
                bottom, right = top, left
            if (top, left) != (bottom, right):
                net.add(name + "_pad", nn.ZeroPad2d((left, right, top, bottom)), False)
                conv = nn.Conv2d(c, int(layer["filters"]), (kh, kw), (sh, sw))
            else:
                conv = nn.Conv2d(c, int(layer["filters"]), (kh, kw), (sh, sw), (top, left))
            net.add(name, conv, True)
            c = int(layer["filters"])
            h = (h + top + bottom - kh) // sh + 1
            w = (w + left + right - kw) // sw + 1
        elif kind == "batch_norm":
            features = c * h * w if flat else c
            module = (nn.BatchNorm1d if flat else nn.BatchNorm2d)(
                features, eps=float(layer.get("eps", 1e-5)),
                momentum=float(layer.get("momentum", 0.1)))
            net.add(name, module, True)
        elif kind == "relu":
            net.add(name, nn.ReLU(), False)
        elif kind == "leaky_relu":
            net.add(name, nn.LeakyReLU(float(layer.get("slope", 0.1))), False)
        elif kind == "sigmoid":
            net.add(name, nn.Sigmoid(), False)
        elif kind in ("max_pool", "avg_pool"):
            window, stride = pair(layer.get("window", 2)), pair(layer.get("stride", 2))
            pool = nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d
            net.add(name, pool(window, stride), False)
            h = (h - window[0]) // stride[0] + 1
            w = (w - window[1]) // stride[1] + 1
        elif kind == "global_avg_pool":
            net.add(name, nn.AdaptiveAvgPool2d(1), False)
            h = w = 1
        elif kind == "dense":
            if not flat:
                net.add(name + "_flatten", Flatten(), False)
                flat = True
            net.add(name, nn.Linear(c * h * w, int(layer["units"])), True)
            c, h, w = int(layer["units"]), 1, 1
        elif kind == "dropout":
            net.add(name, nn.Dropout(float(layer.get("p", 0.5))), False)
        else:
            fail_setup(f"layer {name}: type '{kind}' has no PyTorch equivalent in this script")
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="cnnrt checkpoint (safetensors)")
    parser.add_argument("--data", default=os.environ.get("CNNRT_DATA_DIR",
                                                         "/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="PyTorch device")
    parser.add_argument("--logits", help="cnnrt's logits from `cnnrt predict --out` (else run it)")
    parser.add_argument("--cnnrt", help="path of the cnnrt tool (default: cnnrt on PATH)")
    parser.add_argument("--cnnrt-device", default="cpu", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--test-limit", type=int, default=0, help="first N test images (0: all)")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL)
    parser.add_argument("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT)
    args = parser.parse_args()

    try:
        import torch
        from torch import nn
    except ImportError as e:
        fail_setup(f"PyTorch is not installed ({e}); run this where torch is (pip install torch)")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail_setup("--device cuda but torch sees no CUDA device")
    # Strict FP32, as cnnrt's kernels compute.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    checkpoint = read_safetensors(args.weights)
    metadata = read_metadata(args.weights)
    if "model" not in metadata:
        fail_setup(f"{args.weights}: no 'model' metadata (is it a cnnrt checkpoint?)")
    model = build_torch_network(json.loads(metadata["model"]), nn)
    state = {}
    for name, array in checkpoint.items():
        if name.endswith(".momentum"):
            continue  # the optimizer's, not the module's
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if name.endswith(".num_batches_tracked"):
            tensor = tensor.reshape(()).round().to(torch.int64)  # a float [] in cnnrt
        else:
            tensor = tensor.to(torch.float32)
        state[name] = tensor
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        fail_setup(f"{args.weights}: PyTorch's load_state_dict(strict=True) refused it: {e}")
    model.to(args.device).eval()
    classes = int(json.loads(metadata["model"])["classes"])

    images, labels = load_test_set(args.data, args.test_limit)
    with tempfile.TemporaryDirectory() as tmp_dir:
        cnnrt_scores, cnnrt_labels, logits_path = cnnrt_logits(args, tmp_dir)
    n = images.shape[0]
    if cnnrt_scores.shape != (n, classes):
        fail_setup(f"{logits_path}: logits have shape {cnnrt_scores.shape}, expected ({n}, "
                   f"{classes}) "
                   "(same --test-limit for both?)")
    if not np.array_equal(cnnrt_labels, labels.astype(np.int64)):
        fail_setup(f"{logits_path}: its labels differ from {args.data}'s test labels")

    scores = []
    with torch.no_grad():
        for first in range(0, n, 1000):
            x = torch.from_numpy(images[first:first + 1000].astype(np.float32))
            x = (x / 255.0 - MEAN) / STD
            scores.append(model(x.unsqueeze(1).to(args.device)).cpu().numpy())
    torch_scores = np.concatenate(scores).astype(np.float32)

    agreement = float(np.mean(torch_scores.argmax(1) == cnnrt_scores.argmax(1)))
    max_diff = float(np.max(np.abs(torch_scores - cnnrt_scores)))
    torch_accuracy = float(np.mean(torch_scores.argmax(1) == labels))
    cnnrt_accuracy = float(np.mean(cnnrt_scores.argmax(1) == labels))
    ok = agreement >= args.min_agreement and max_diff <= args.atol
    print(f"torch_interop: {'PASS' if ok else 'FAIL'}: {n} images, torch {torch.__version__} on "
          f"{args.device}; class agreement {agreement:.4%} (need >= {args.min_agreement:.1%}), "
          f"max |logit diff| {max_diff:.3g} (need <= {args.atol:g}); accuracy torch "
          f"{torch_accuracy:.4f} cnnrt {cnnrt_accuracy:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
