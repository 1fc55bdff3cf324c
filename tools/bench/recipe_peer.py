#!/usr/bin/env python3
"""PyTorch peer for a cnnrt preset's recipe: the same network, initialisation, optimizer,
schedule, label smoothing, augmentation, batch and epochs, trained by `cnnrt train` and by
PyTorch on the same CPU threads, in alternation, each in a fresh process. Prints both test
accuracies (plain and with test-time flips) and both training images/s, with their ratio.

The network comes from the model file (tools/bench/torch_interop.py builds it). What is matched:
  init        cnnrt's default, LeCun uniform: weights U(-sqrt(3/fan_in), +sqrt(3/fan_in)), biases 0,
              batch norm weight 1 and bias 0;
  data        Fashion-MNIST IDX, x = (byte / 255 - 0.2860) / 0.3530, reshuffled every epoch, the
              last partial batch kept;
  optimizer   sgd / nesterov (torch.optim.SGD), adam, adamw; with no_decay_norm_bias, tensors of
              rank <= 1 in a group without weight decay;
  schedule    cnnrt's LrSchedule (host/optimizer.cpp): constant, step:E:G and cosine per epoch,
              linear per step, then a per-step linear warm-up of `warmup` epochs in front;
  augment     flip (p = 1/2) and crop:P (zero-padded by P, a random P-shift), torchvision's order.
Random draws differ (PyTorch's generator, not cnnrt's Philox), so accuracies agree to within the
run-to-run spread, not bit for bit.

Usage: recipe_peer.py --cnnrt build/tools/cnnrt --model fmnist-bn [--threads 2] [--repeats 1]
       [--epochs E] [--train-limit N] [--test-limit N] [--json FILE]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = os.path.join(HERE, "..", "presets")
MEAN, STD = 0.2860, 0.3530
DEFAULT_DATA = os.environ.get("CNNRT_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def load_model_file(name_or_path):
    path = name_or_path if name_or_path.endswith(".json") else os.path.join(
        PRESETS, name_or_path + ".json")
    with open(path) as f:
        model = json.load(f)
    for i, layer in enumerate(model["layers"]):  # cnnrt names unnamed layers; only named matter
        layer.setdefault("name", f"{layer['type']}{i + 1}")
    return model


def recipe_of(model, args):
    r = dict(model.get("recipe", {}))
    if args.epochs:
        r["epochs"] = args.epochs
    r.setdefault("optimizer", "sgd")
    r.setdefault("epochs", 10)
    r.setdefault("batch", 64)
    r.setdefault("lr", 0.02 * r["batch"] / 64)
    r.setdefault("momentum", 0.9)
    r.setdefault("weight_decay", 0.0)
    r.setdefault("schedule", "cosine")
    r.setdefault("warmup", 0.0)
    r.setdefault("label_smoothing", 0.0)
    r.setdefault("augment", "none")
    return r


def lr_at(r, epoch, step_in_epoch, per_epoch):
    """cnnrt's LrSchedule::rate for a 0-based epoch and step."""
    base, epochs = float(r["lr"]), int(r["epochs"])
    g, total = epoch * per_epoch + step_in_epoch, epochs * per_epoch
    kind = r["schedule"]
    if kind == "constant":
        lr = base
    elif kind == "cosine":
        lr = base if epochs <= 1 else base * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    elif kind == "linear":
        lr = base * (1 - g / total)
    elif kind.startswith("step:"):
        _, every, gamma = kind.split(":")
        lr = base * float(gamma) ** (epoch // max(int(every), 1))
    else:
        raise SystemExit(f"schedule '{kind}' is not reproduced by this script")
    warm = round(float(r["warmup"]) * per_epoch)
    if warm > 0 and g < warm:
        lr *= (g + 1) / warm
    return lr


def torch_run(args):
    """One PyTorch training run; prints a JSON line."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    sys.path.insert(0, HERE)
    from pytorch_lenet import read_idx
    from torch_interop import build_torch_network

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model_file = load_model_file(args.model)
    r = recipe_of(model_file, args)
    net = build_torch_network(model_file, nn)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                bound = math.sqrt(3.0 / (m.weight[0].numel()))
                m.weight.uniform_(-bound, bound)
                m.bias.zero_()

    def split(prefix, limit):
        x = read_idx(os.path.join(args.data, f"{prefix}-images-idx3-ubyte.gz"), 2051)
        y = read_idx(os.path.join(args.data, f"{prefix}-labels-idx1-ubyte.gz"), 2049)
        if limit:
            x, y = x[:limit], y[:limit]
        x = torch.from_numpy(x.copy()).float().div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
        return x.contiguous(), torch.from_numpy(y.astype(np.int64))

    xtr, ytr = split("train", args.train_limit)
    xte, yte = split("t10k", args.test_limit)
    params = list(net.parameters())
    wd = float(r["weight_decay"])
    if r.get("no_decay_norm_bias"):
        groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": wd},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    else:
        groups = [{"params": params, "weight_decay": wd}]
    kind = r["optimizer"]
    if kind in ("sgd", "nesterov"):
        opt = torch.optim.SGD(groups, lr=r["lr"], momentum=r["momentum"],
                              nesterov=kind == "nesterov")
    else:
        betas = tuple(r.get("betas", (0.9, 0.999)))
        eps = float(r.get("eps", 1e-8))
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=r["lr"], betas=betas, eps=eps)
    aug = [a for a in r["augment"].split(",") if a and a != "none"]
    flip = "flip" in aug
    pad = next((int(a.split(":")[1]) for a in aug if a.startswith("crop:")), 0)
    zero = (0.0 - MEAN) / STD
    batch, n = int(r["batch"]), xtr.shape[0]
    per_epoch = -(-n // batch)
    train_seconds = 0.0
    for epoch in range(int(r["epochs"])):
        net.train()
        order = torch.randperm(n)
        start = time.perf_counter()
        for s in range(per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            x = xtr[idx]
            if pad:
                padded = F.pad(x, (pad, pad, pad, pad), value=zero)
                dy, dx = torch.randint(0, 2 * pad + 1, (2, len(idx)))
                h, w = x.shape[2], x.shape[3]
                x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
                                 for i in range(len(idx))])
            if flip:
                mirror = torch.rand(len(idx)) < 0.5
                x = torch.where(mirror[:, None, None, None], x.flip(3), x)
            for group in opt.param_groups:
                group["lr"] = lr_at(r, epoch, s, per_epoch)
            loss = F.cross_entropy(net(x), ytr[idx], label_smoothing=float(r["label_smoothing"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train_seconds += time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(xte[i:i + 1000]) for i in range(0, xte.shape[0], 1000)])
        mirrored = torch.cat([net(xte[i:i + 1000].flip(3)) for i in range(0, xte.shape[0], 1000)])
    accuracy = (logits.argmax(1) == yte).float().mean().item()
    tta = ((F.softmax(logits, 1) + F.softmax(mirrored, 1)).argmax(1) == yte).float().mean().item()
    print(json.dumps({"accuracy": accuracy, "accuracy_tta_flip": tta,
                      "images_per_second": n * int(r["epochs"]) / train_seconds}))


def cnnrt_run(args, tmp):
    checkpoint = os.path.join(tmp, "peer.safetensors")
    metrics = os.path.join(tmp, "peer.csv")
    common = ["--model", args.model, "--device", args.device, "--threads", str(args.threads),
              "--data", args.data]
    limits = []
    if args.train_limit:
        limits += ["--train-limit", str(args.train_limit)]
    if args.test_limit:
        limits += ["--test-limit", str(args.test_limit)]
    train = [args.cnnrt, "train", *common, *limits, "--seed", str(args.seed), "--checkpoint",
             checkpoint, "--metrics", metrics]
    if args.epochs:
        train += ["--epochs", str(args.epochs)]
    subprocess.run(train, check=True, capture_output=True, text=True)
    with open(metrics) as f:
        rows = [line.strip().split(",") for line in f][1:]
    header = "epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_second,wall_s"
    col = header.split(",")
    images = sum(float(row[col.index("images_per_second")]) * float(row[col.index("seconds")])
                 for row in rows)
    seconds = sum(float(row[col.index("seconds")]) for row in rows)
    evaluate = [args.cnnrt, "eval", *common, "--weights", checkpoint, "--tta", "flip"]
    if args.test_limit:
        evaluate += ["--test-limit", str(args.test_limit)]
    out = subprocess.run(evaluate, check=True, capture_output=True, text=True).stdout
    tta = float(out.split()[1])  # "accuracy A loss L images N"
    return {"accuracy": float(rows[-1][col.index("test_acc")]), "accuracy_tta_flip": tta,
            "images_per_second": images / seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cnnrt", default=os.path.join(HERE, "..", "..", "build", "tools", "cnnrt"))
    p.add_argument("--model", default="fmnist-bn")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--epochs", type=int, default=0, help="0: the recipe's")
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", help="also write the runs and medians here")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_only:
        torch_run(args)
        return
    forwarded = [a for a in sys.argv[1:] if a != "--torch-only"]
    runs = {"cnnrt": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # alternating, each in a fresh process
            runs["cnnrt"].append(cnnrt_run(args, tmp))
            out = subprocess.run([sys.executable, __file__, "--torch-only", *forwarded],
                                 check=True, capture_output=True, text=True).stdout
            runs["torch"].append(json.loads(out.strip().splitlines()[-1]))
            print(f"repeat {repeat + 1}: cnnrt {runs['cnnrt'][-1]}  torch {runs['torch'][-1]}",
                  flush=True)
    med = {who: {k: statistics.median(run[k] for run in rs) for k in rs[0]}
           for who, rs in runs.items()}
    print(f"\n{args.model}, {args.threads} threads, {args.repeats} repeat(s), medians")
    print(f"{'':8} {'test acc':>9} {'tta flip':>9} {'train img/s':>12}")
    for who in ("cnnrt", "torch"):
        m = med[who]
        print(f"{who:8} {m['accuracy']:9.4f} {m['accuracy_tta_flip']:9.4f} "
              f"{m['images_per_second']:12.0f}")
    ratio = med["cnnrt"]["images_per_second"] / med["torch"]["images_per_second"]
    print(f"cnnrt / torch images/s: {ratio:.2f}; accuracy difference "
          f"{100 * (med['cnnrt']['accuracy'] - med['torch']['accuracy']):+.2f} points")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": runs, "medians": med, "ratio": ratio}, f, indent=1)


if __name__ == "__main__":
    main()
