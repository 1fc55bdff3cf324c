#!/usr/bin/env python3
"""PyTorch peer for cnnrt's LeNet-5: the same network, initialisation, optimiser, batch and data,
trained on the same GPU, so cnnrt's epoch time and accuracy can be read as ratios.

Model (cnnrt's lenet5 preset): conv 6@5x5 pad 2 (same) + ReLU, max pool 2x2/2, conv 16@5x5 valid +
ReLU, max pool 2x2/2, flatten 400, fc 120 + ReLU, fc 84 + ReLU, fc 10; softmax cross-entropy
(mean over the batch). Init, as cnnrt's defaults: LeCun uniform weights, bound sqrt(3 / fan_in)
(--init he: bound sqrt(6 / fan_in)); zero biases. SGD momentum 0.9, weight decay 0, batch 256,
lr 0.02 * batch / 64 (0.08), per-epoch cosine schedule lr_e = lr (1 + cos(pi e / E)) / 2
(--schedule constant keeps lr).
Data: Fashion-MNIST IDX .gz files (--data DIR), x = (byte / 255 - 0.2860) / 0.3530, all of it held
on the GPU, reshuffled every epoch by a torch generator on the device.

Two modes, each from the same initial weights:
  eager    every batch, the last partial one included (60000 = 234 * 256 + 96);
  graphed  the whole training step (forward, backward, optimizer.step) captured once in a CUDA
           graph (PyTorch's whole-network capture recipe) and replayed; the graph needs a fixed
           batch shape, so the last partial batch of each epoch (96 images) is DROPPED.
Arithmetic is strict FP32 by default (no TF32, like cnnrt's kernels); --tf32 allows TF32.
Epoch time: CUDA events around the epoch's training steps (evaluation excluded), synchronised at
the epoch's end; reported as the median over epochs. Test accuracy after the last epoch.

Usage: pytorch_lenet.py --data DIR [--epochs 10] [--batch 256] [--json FILE] [--modes eager,graphed]
"""
import argparse
import gzip
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN, STD = 0.2860, 0.3530
MOMENTUM, WEIGHT_DECAY = 0.9, 0.0
EVAL_CHUNK = 10000
GRAPH_WARMUP_STEPS = 3


def read_idx(path, magic):
    """An IDX file (.gz) as a uint8 numpy array: images [n, rows, cols] or labels [n]."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise SystemExit(f"{path}: IDX magic {got}, expected {magic}")
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise SystemExit(f"{path}: {data.size} bytes of data, header says {shape}")
    return data.reshape(shape)


def load_split(data_dir, prefix, device):
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 2051)
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 2049)
    x = torch.from_numpy(images.copy()).to(device).float().div_(255.0).sub_(MEAN).div_(STD)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    return x.unsqueeze(1).contiguous(), y  # x: [n, 1, 28, 28], y: [n]


def epoch_lr(args, epoch):
    """cnnrt's LrSchedule: constant, or cosine over the run's epochs (epoch is 0-based)."""
    if args.schedule == "cosine" and args.epochs > 1:
        return args.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / args.epochs))
    return args.lr


def lenet5(init="lecun"):
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fan_in = layer.weight[0].numel()
                bound = ((6.0 if init == "he" else 3.0) / fan_in) ** 0.5
                layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()
    return model


def accuracy(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_CHUNK):
            correct += (model(x[i:i + EVAL_CHUNK]).argmax(1) == y[i:i + EVAL_CHUNK]).sum().item()
    model.train()
    return correct / x.shape[0]


def timed_epoch(run_steps):
    """Runs one epoch's steps between two CUDA events; returns milliseconds."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run_steps()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def train_eager(initial_state, train, test, args, device):
    model = lenet5().to(device)
    model.load_state_dict(initial_state)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    (x, y), n = train, train[0].shape[0]
    epoch_ms = []

    def steps():
        perm = torch.randperm(n, device=device, generator=gen)
        for i in range(0, n, args.batch):  # the last partial batch included
            idx = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()

    for epoch in range(args.epochs):
        for group in opt.param_groups:
            group["lr"] = epoch_lr(args, epoch)
        epoch_ms.append(timed_epoch(steps))
        print(f"eager   epoch {epoch + 1:2d}: {epoch_ms[-1]:8.1f} ms", flush=True)
    acc = accuracy(model, *test)
    print(f"eager   test accuracy {acc:.4f}, median epoch {statistics.median(epoch_ms):.1f} ms")
    return {"epoch_ms": epoch_ms, "epoch_ms_median": statistics.median(epoch_ms), "test_acc": acc,
            "images_per_epoch": n, "dropped_per_epoch": 0}


def train_graphed(initial_state, train, test, args, device):
    model = lenet5().to(device)
    model.load_state_dict(initial_state)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    (x, y), n = train, train[0].shape[0]
    batches = n // args.batch  # fixed shape: the last partial batch is dropped
    static_x = torch.empty((args.batch,) + tuple(x.shape[1:]), device=device)
    static_y = torch.empty((args.batch,), dtype=y.dtype, device=device)

    # Warm-up on a side stream (cuDNN autotuning, optimizer state), as PyTorch's recipe requires.
    static_x.copy_(x[:args.batch])
    static_y.copy_(y[:args.batch])
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(GRAPH_WARMUP_STEPS):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)

    # The learning rate is baked into the captured optimizer step, so a new lr (cosine schedule)
    # means capturing again; that happens between epochs, outside the timed region.
    def capture(lr):
        for group in opt.param_groups:
            group["lr"] = lr
        g = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(g):
            F.cross_entropy(model(static_x), static_y).backward()
            opt.step()
        return g

    graph_lr = epoch_lr(args, 0)
    graph = capture(graph_lr)

    # Undo the warm-up's updates in place (the graph holds these addresses), so both modes start
    # from the same weights: restored parameters, zeroed momentum (v = 0 * m + g = g, as at step 1).
    with torch.no_grad():
        model.load_state_dict(initial_state)
        for state in opt.state.values():
            if state.get("momentum_buffer") is not None:
                state["momentum_buffer"].zero_()
    torch.cuda.synchronize()

    def steps():
        perm = torch.randperm(n, device=device, generator=gen)
        for b in range(batches):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            torch.index_select(x, 0, idx, out=static_x)
            torch.index_select(y, 0, idx, out=static_y)
            graph.replay()

    epoch_ms = []
    for epoch in range(args.epochs):
        if epoch_lr(args, epoch) != graph_lr:
            graph_lr = epoch_lr(args, epoch)
            graph = capture(graph_lr)
        epoch_ms.append(timed_epoch(steps))
        print(f"graphed epoch {epoch + 1:2d}: {epoch_ms[-1]:8.1f} ms", flush=True)
    acc = accuracy(model, *test)
    print(f"graphed test accuracy {acc:.4f}, median epoch {statistics.median(epoch_ms):.1f} ms "
          f"({n - batches * args.batch} images dropped per epoch)")
    return {"epoch_ms": epoch_ms, "epoch_ms_median": statistics.median(epoch_ms), "test_acc": acc,
            "images_per_epoch": batches * args.batch,
            "dropped_per_epoch": n - batches * args.batch}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder with the Fashion-MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=None, help="default 0.02 * batch / 64")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    parser.add_argument("--init", choices=("lecun", "he"), default="lecun")
    parser.add_argument("--modes", default="eager,graphed")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 tensor cores")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.lr is None:
        args.lr = 0.02 * args.batch / 64
    if any(m not in ("eager", "graphed") for m in modes) or args.epochs < 1 or args.batch < 1:
        parser.error("--modes takes eager and/or graphed; --epochs and --batch must be >= 1")
    if not torch.cuda.is_available():
        print("pytorch_lenet: no CUDA device", file=sys.stderr)
        return 3

    started = time.perf_counter()
    device = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = args.tf32
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest algorithms
    train = load_split(args.data, "train", device)
    test = load_split(args.data, "t10k", device)
    torch.manual_seed(args.seed)
    initial_state = {k: v.clone() for k, v in lenet5(args.init).to(device).state_dict().items()}
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, cuDNN "
          f"{torch.backends.cudnn.version()}, batch {args.batch}, {args.epochs} epochs, "
          f"tf32 {args.tf32}, lr {args.lr} ({args.schedule}), {args.init} init", flush=True)

    result = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
              "cudnn": torch.backends.cudnn.version(), "batch": args.batch,
              "epochs": args.epochs, "tf32": args.tf32, "seed": args.seed}
    if "eager" in modes:
        result["eager"] = train_eager(initial_state, train, test, args, device)
    if "graphed" in modes:
        try:
            result["graphed"] = train_graphed(initial_state, train, test, args, device)
        except Exception as error:  # keep the eager figures when capture is refused
            print(f"graphed mode failed: {type(error).__name__}: {error}", flush=True)
    result["wall_s"] = time.perf_counter() - started
    print(f"total {result['wall_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
