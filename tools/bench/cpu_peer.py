#!/usr/bin/env python3
"""PyTorch's CPU training (or inference) of cnnrt's presets beside `cnnrt bench --device cpu`, in
alternation, in one run: both images/s figures, their ratio, medians over the repeats.

What is timed, on both sides, is what `cnnrt bench` times, on one fixed random batch of the
network's input shape, on the same number of threads, the median over several groups of steps
after a warm-up:
  --mode train      whole training steps (forward, loss, backward, SGD with momentum 0.9);
  --mode inference  forward passes in evaluation mode (what `cnnrt eval` and `predict` run per
                    batch; PyTorch's model.eval() under torch.no_grad()).
The data set is not involved (the gather is a copy of a batch), so neither side pays for data
loading.

The networks (cnnrt's presets, tools/presets/):
  lenet5          conv 6@5x5 same + ReLU, max pool 2/2, conv 16@5x5 + ReLU, max pool 2/2,
                  fc 120 + ReLU, fc 84 + ReLU, fc 10
  lenet5-classic  the same with sigmoid activations and average pooling
  alexnet         the lecture's AlexNet on 3x227x227 (tools/presets/alexnet.json), 1000 classes

Each repeat runs cnnrt first, then PyTorch (each in its own process, so neither inherits the
other's threads or caches). Peak resident memory is reported
for both (cnnrt's from its bench JSON, PyTorch's from getrusage in its process).

Usage:
  cpu_peer.py --cnnrt build/tools/cnnrt [--model lenet5] [--mode train] [--threads 2]
              [--batch 256] [--repeats 5] [--json FILE]
  cpu_peer.py --torch-only [--model lenet5] [--threads 2] [--batch 256]   (one PyTorch figure)
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

# Steps: warm-up, then TIMINGS groups of STEPS_PER_TIMING; AlexNet's steps take seconds.
STEPS = {"lenet5": (10, 10, 10), "lenet5-classic": (10, 10, 10), "alexnet": (2, 2, 3)}


def torch_model(model_name):
    from torch import nn
    if model_name == "alexnet":
        return nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Flatten(),
            nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 1000)), (3, 227, 227), 1000
    act = nn.ReLU if model_name == "lenet5" else nn.Sigmoid
    pool = (lambda: nn.MaxPool2d(2, 2)) if model_name == "lenet5" else (lambda: nn.AvgPool2d(2, 2))
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), act(), pool(),
        nn.Conv2d(6, 16, 5), act(), pool(),
        nn.Flatten(),
        nn.Linear(400, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, 10)), (1, 28, 28), 10


def torch_images_per_second(model_name, mode, threads, batch, seed=1):
    """Median images/s of PyTorch CPU training steps or inference passes; also its peak RSS."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model, shape, classes = torch_model(model_name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def inference_step():
        with torch.no_grad():
            model(x)

    if mode == "inference":
        model.eval()
    step = train_step if mode == "train" else inference_step
    warmup, steps_per_timing, timings = STEPS[model_name]
    for _ in range(warmup):
        step()
    times = []
    for _ in range(timings):
        start = time.perf_counter()
        for _ in range(steps_per_timing):
            step()
        times.append((time.perf_counter() - start) / steps_per_timing)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return batch / statistics.median(times), rss


def run_torch(args):
    """PyTorch in a fresh process (this script with --torch-only)."""
    out = subprocess.run(
        [sys.executable, __file__, "--torch-only", "--model", args.model, "--mode", args.mode,
         "--threads", str(args.threads), "--batch", str(args.batch)],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_cnnrt(args):
    out = subprocess.run(
        [args.cnnrt, "bench", "--device", args.device, "--model", args.model, "--threads",
         str(args.threads), "--batch", str(args.batch), "--warmup", str(STEPS[args.model][0]),
         "--repeats", str(args.bench_repeats or (3 if args.model == "alexnet" else 20)),
         "--json", "-"],
        check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    key = "images_per_second" if args.mode == "train" else "inference_images_per_second"
    return {"images_per_second": report[key],
            "peak_rss_bytes": report["peak_rss_bytes"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cnnrt", help="the cnnrt tool (build/tools/cnnrt)")
    p.add_argument("--device", default="cpu", help="cnnrt's --device (cpu or reference)")
    p.add_argument("--model", default="lenet5", choices=sorted(STEPS))
    p.add_argument("--mode", default="train", choices=["train", "inference"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bench-repeats", type=int, default=0,
                   help="cnnrt bench --repeats (default 20, AlexNet 3)")
    p.add_argument("--json", help="also write every figure as JSON here")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_only:
        ips, rss = torch_images_per_second(args.model, args.mode, args.threads, args.batch)
        print(json.dumps({"images_per_second": ips, "peak_rss_bytes": rss}))
        return
    if not args.cnnrt:
        p.error("--cnnrt is required (the path of the cnnrt tool)")
    rows = []
    print(f"{args.model} {args.mode}, batch {args.batch}, {args.threads} threads, "
          f"cnnrt --device {args.device}")
    print(f"{'repeat':>6} {'cnnrt img/s':>12} {'torch img/s':>12} {'ratio':>7}")
    for r in range(args.repeats):
        c, t = run_cnnrt(args), run_torch(args)
        ratio = c["images_per_second"] / t["images_per_second"]
        rows.append({"cnnrt": c, "torch": t, "ratio": ratio})
        print(f"{r + 1:>6} {c['images_per_second']:>12.0f} {t['images_per_second']:>12.0f} "
              f"{ratio:>7.2f}", flush=True)
    med = lambda key: statistics.median(row[key]["images_per_second"] for row in rows)
    med_ratio = statistics.median(row["ratio"] for row in rows)
    rss = lambda key: max(row[key]["peak_rss_bytes"] for row in rows) / 1e6
    print(f"{'median':>6} {med('cnnrt'):>12.0f} {med('torch'):>12.0f} {med_ratio:>7.2f}")
    print(f"peak RSS: cnnrt {rss('cnnrt'):.1f} MB, torch {rss('torch'):.1f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "mode": args.mode, "batch": args.batch, "threads": args.threads,
                       "device": args.device, "repeats": rows,
                       "median_cnnrt": med("cnnrt"), "median_torch": med("torch"),
                       "median_ratio": med_ratio}, f, indent=2)


if __name__ == "__main__":
    main()
