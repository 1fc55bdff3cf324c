#!/usr/bin/env python3
"""PyTorch interop check: a cnnrt checkpoint loaded into the equivalent PyTorch LeNet-5 gives the
same predictions as cnnrt itself.

1. Reads the checkpoint (safetensors: the `safetensors` package when importable, else the small
   reader below), keeping the parameters conv1.weight ... fc3.bias (the optimizer's *.momentum
   tensors are ignored), and loads them into PyTorch's LeNet-5 (tools/bench/pytorch_lenet.py's
   network with cnnrt's parameter names): conv 6@5x5 pad 2 + ReLU + max pool 2, conv 16@5x5 +
   ReLU + max pool 2, fc 120 + ReLU, fc 84 + ReLU, fc 10.
2. Gets cnnrt's logits of the Fashion-MNIST test set: --logits FILE from `cnnrt predict`, or runs
   `CNNRT predict --weights CKPT --out TMP` itself (--cnnrt gives the tool's path).
3. Runs the same images through PyTorch, normalised as cnnrt trains: x = (byte / 255 - 0.2860) /
   0.3530, in strict FP32 (TF32 off), and compares:
     predicted classes agree on >= 99.9% of the images (--min-agreement), and
     max |logit_torch - logit_cnnrt| <= 1e-3 (--atol; the logits are O(10), so this is about
     1e-4 relative: far above FP32 summation-order noise, far below any real difference).
Prints one verdict line; exits 0 when both hold, 1 on a mismatch, 2 when it cannot run (torch
missing, unreadable files, shapes that do not fit).

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
PARAMETERS = {  # name: shape (PyTorch's layout, which cnnrt's checkpoints use)
    "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
    "fc1.weight": (120, 400), "fc1.bias": (120,),
    "fc2.weight": (84, 120), "fc2.bias": (84,),
    "fc3.weight": (10, 84), "fc3.bias": (10,),
}
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def fail_setup(message):
    print(f"torch_interop: ERROR: {message}", file=sys.stderr)
    sys.exit(2)


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
        command = [tool, "predict", "--weights", args.weights, "--data", args.data,
                   "--device", args.cnnrt_device, "--out", path]
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
        import torch.nn.functional as F
        from torch import nn
    except ImportError as e:
        fail_setup(f"PyTorch is not installed ({e}); run this where torch is (pip install torch)")
    if args.device == "cuda" and not torch.cuda.is_available():
        fail_setup("--device cuda but torch sees no CUDA device")
    # Strict FP32, as cnnrt's kernels compute.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(400, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
            x = torch.flatten(x, 1)  # NCHW order, as cnnrt flattens
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    checkpoint = read_safetensors(args.weights)
    state = {}
    for name, shape in PARAMETERS.items():
        if name not in checkpoint:
            fail_setup(f"{args.weights}: no tensor {name} (has {sorted(checkpoint)}); "
                       "is it a lenet5 checkpoint?")
        if tuple(checkpoint[name].shape) != shape:
            fail_setup(f"{args.weights}: {name} has shape {tuple(checkpoint[name].shape)}, "
                       f"LeNet-5 needs {shape}")
        state[name] = torch.from_numpy(np.ascontiguousarray(checkpoint[name], dtype=np.float32))
    model = LeNet5()
    model.load_state_dict(state, strict=True)
    model.to(args.device).eval()

    images, labels = load_test_set(args.data, args.test_limit)
    with tempfile.TemporaryDirectory() as tmp_dir:
        cnnrt_scores, cnnrt_labels, logits_path = cnnrt_logits(args, tmp_dir)
    n = images.shape[0]
    if cnnrt_scores.shape != (n, 10):
        fail_setup(f"{logits_path}: logits have shape {cnnrt_scores.shape}, expected ({n}, 10) "
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
