#!/usr/bin/env python3
"""Assembles the device check's summary (tools/device_check.sh calls this as its last step).

Reads what the steps left in $OUT (ctest.log, lenet_metrics.csv) and $WORK (kernels.json,
pytorch.json, cnnrt_bench.json, steps.tsv) plus the versions passed in the environment, writes
$OUT/summary.json (keys per shared/GPU.md, "The summary file") and $OUT/summary.md, and prints a
short table: the end of the output is what gets read.

Exit code: 0 when a GPU ran everything and nothing failed, skipped, timed out or reported a
sanitizer error; 1 otherwise.
"""
import csv
import datetime
import json
import os
import re
import statistics
import sys

OUT = os.environ.get("OUT", "device-out")
WORK = os.environ.get("WORK", OUT)
HAVE_GPU = os.environ.get("HAVE_GPU") == "yes"
LENET_BATCH = 256
LENET_EPOCHS = 10
ACCURACY_TARGET = 0.90
# cnnrt and its peer sum in different orders; beyond this (relative to the output's largest
# magnitude) they did not compute the same thing.
KERNEL_AGREEMENT_RTOL = 1e-3
# The "*.tf32" rows: both sides round every operand to 10 mantissa bits, perhaps differently.
KERNEL_AGREEMENT_RTOL_TF32 = 1e-2
# cuDNN's FFT and Winograd algorithms transform the operands and round in the transformed domain:
# seen 2.7e-3 (LeNet conv1 backward-data, Winograd) and 9.8e-3 (AlexNet conv2 backward-weights,
# Winograd) against cnnrt results that match the CPU reference in the parity tests.
KERNEL_AGREEMENT_RTOL_TRANSFORMED = 2e-2
# cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t values of the FFT and Winograd algorithms.
CUDNN_TRANSFORMED_ALGOS = {"forward": {4, 5, 6, 7}, "backward_data": {2, 3, 4, 5},
                           "backward_weights": {2, 4, 5, 6}}


def kernel_agreement_rtol(k):
    """How far cnnrt and its peer may differ on kernel row k (relative to the largest output)."""
    if k["name"].endswith(".tf32"):
        return KERNEL_AGREEMENT_RTOL_TF32
    direction = k["name"].rpartition(".")[2]
    if k.get("peer") == "cudnn" and k.get("peer_algo") in CUDNN_TRANSFORMED_ALGOS.get(direction, ()):
        return KERNEL_AGREEMENT_RTOL_TRANSFORMED
    return KERNEL_AGREEMENT_RTOL

# "  3/42 Test  #3: conv.Forward ......................***Skipped   0.01 sec"
# A parameterised test's name is followed by "# GetParam() = ..." before the dot leader.
CTEST_LINE = re.compile(r"^\s*\d+/\d+\s+Test\s+#\d+:\s+(\S+).*?\.{3,}\s*([^.\s].*?)\s+[\d.]+\s+sec\s*$")


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def parse_ctest(path):
    """Counts passed/failed/skipped from ctest's console log; names the tests that did not pass."""
    result = {"passed": 0, "failed": 0, "skipped": 0}
    failed, skipped = [], []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return None, [], []
    for line in lines:
        m = CTEST_LINE.match(line)
        if not m:
            continue
        name, status = m.group(1), m.group(2)
        if status.startswith("Passed"):
            result["passed"] += 1
        elif "Skipped" in status or "Disabled" in status:
            result["skipped"] += 1
            skipped.append(name)
        else:
            result["failed"] += 1
            failed.append(f"{name} ({status.lstrip('*').strip()})")
    if sum(result.values()) == 0:
        return None, [], []
    return result, failed, skipped


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def parse_metrics(path):
    """LeNet-5 figures from `cnnrt train --metrics`: epoch,train_loss,train_acc,test_loss,test_acc,
    seconds,images_per_second,wall_s (wall_s: seconds since process start at the epoch's end)."""
    lenet = {"batch": LENET_BATCH, "epochs": LENET_EPOCHS, "test_acc": None,
             "epoch_ms_median": None, "images_per_second": None, "train_wall_s": None,
             "time_to_90_s": None}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return lenet

    def num(row, key):
        try:
            return float(row[key])
        except (KeyError, TypeError, ValueError):
            return None

    if not rows:
        return lenet
    accs = [num(r, "test_acc") for r in rows]
    # Accept percentages as well as fractions.
    scale = 0.01 if any(a is not None and a > 1.0 for a in accs) else 1.0
    accs = [a * scale if a is not None else None for a in accs]
    lenet["epochs"] = len(rows)
    lenet["test_acc"] = accs[-1]
    seconds = median_or_none([num(r, "seconds") for r in rows])
    lenet["epoch_ms_median"] = seconds * 1000.0 if seconds is not None else None
    lenet["images_per_second"] = median_or_none([num(r, "images_per_second") for r in rows])
    lenet["train_wall_s"] = num(rows[-1], "wall_s")
    for row, acc in zip(rows, accs):
        if acc is not None and acc >= ACCURACY_TARGET:
            lenet["time_to_90_s"] = num(row, "wall_s")
            break
    return lenet


def read_steps(path):
    steps = {}
    try:
        for line in open(path):
            key, _, value = line.rstrip("\n").partition("\t")
            if key:
                steps[key] = value
    except OSError:
        pass
    return dict(sorted(steps.items()))


def fmt(value, spec=".1f", none="-"):
    return none if value is None else format(value, spec)


def main():
    sanitizer = os.environ.get("SANITIZER_ERRORS", "null")
    tests, failed_tests, skipped_tests = parse_ctest(os.path.join(OUT, "ctest.log"))
    kernels_doc = read_json(os.path.join(WORK, "kernels.json")) or {}
    pytorch_doc = read_json(os.path.join(WORK, "pytorch.json")) or {}
    eager = pytorch_doc.get("eager") or {}
    graphed = pytorch_doc.get("graphed") or {}
    kernels = [
        {key: k.get(key) for key in ("name", "shape", "cnnrt_us", "peer", "peer_us", "peer_algo",
                                     "max_rel_diff", "error") if key in k}
        for k in kernels_doc.get("kernels", [])
    ]
    now = datetime.datetime.now(datetime.timezone.utc)
    summary = {
        "gpu": os.environ.get("GPU_NAME") or None,
        "driver": os.environ.get("DRIVER") or None,
        "cuda_runtime": os.environ.get("CUDA_RUNTIME") or None,
        "commit": os.environ.get("COMMIT") or None,
        "date": now.strftime("%Y-%m-%d"),
        "tests": tests or {"passed": 0, "failed": 0, "skipped": 0},
        "sanitizer_errors": None if sanitizer == "null" else int(sanitizer),
        "lenet5": parse_metrics(os.path.join(OUT, "lenet_metrics.csv")),
        "pytorch": {
            "eager_epoch_ms": eager.get("epoch_ms_median"),
            "graphed_epoch_ms": graphed.get("epoch_ms_median"),
            "test_acc": eager.get("test_acc"),
            "graphed_test_acc": graphed.get("test_acc"),
            "torch": pytorch_doc.get("torch"),
        },
        "kernels": kernels,
        # Beyond GPU.md's keys: how each step ended, and what did not pass.
        "cuda_driver_api": os.environ.get("CUDA_DRIVER") or None,
        "cudnn_version": kernels_doc.get("cudnn_version"),
        "checked_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": int(os.environ.get("ELAPSED_S", "0")),
        "steps": read_steps(os.path.join(WORK, "steps.tsv")),
        "failed_tests": failed_tests,
        "skipped_tests": skipped_tests,
        "cnnrt_bench": read_json(os.path.join(WORK, "cnnrt_bench.json")),
        "cnnrt_bench_no_fuse": read_json(os.path.join(WORK, "cnnrt_bench_no-fuse.json")),
        "cnnrt_bench_no_overlap": read_json(os.path.join(WORK, "cnnrt_bench_no-overlap.json")),
    }
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    problems = []
    if not HAVE_GPU:
        problems.append("NO GPU: nothing here is a GPU result")
    if tests is None:
        problems.append("ctest produced no results")
    else:
        if tests["failed"]:
            problems.append(f"{tests['failed']} tests FAILED: {', '.join(failed_tests[:8])}")
        if tests["skipped"]:
            problems.append(f"{tests['skipped']} tests SKIPPED (none may skip on the GPU machine): "
                            f"{', '.join(skipped_tests[:8])}")
    if summary["sanitizer_errors"] is None:
        problems.append("compute-sanitizer did not run")
    elif summary["sanitizer_errors"]:
        problems.append(f"compute-sanitizer reported {summary['sanitizer_errors']} errors")
    for step, status in summary["steps"].items():
        if status != "ok":
            problems.append(f"step {step}: {status}")
    if summary["steps"].get("train") == "ok" and summary["lenet5"]["test_acc"] is None:
        problems.append("cnnrt train ran but lenet_metrics.csv holds no test accuracy")
    for k in kernels:
        if k.get("error"):
            problems.append(f"kernel {k['name']}: {k['error'][:160]}")
        elif k.get("max_rel_diff") is None and k.get("cnnrt_us") and k.get("peer_us"):
            problems.append(f"kernel {k['name']}: output has NaN (an element left unwritten?)")
        else:
            rtol = kernel_agreement_rtol(k)
            if (k.get("max_rel_diff") or 0.0) > rtol:
                problems.append(f"kernel {k['name']}: differs from {k['peer']} by "
                                f"{k['max_rel_diff']:.1e} (relative), over {rtol}")

    lenet, torch = summary["lenet5"], summary["pytorch"]
    md = []
    md.append(f"# Device check {summary['date']}: {summary['gpu'] or 'no GPU'}")
    md.append("")
    md.append(f"commit `{summary['commit']}`, driver {summary['driver']}, CUDA runtime "
              f"{summary['cuda_runtime']} (driver API {summary['cuda_driver_api']}), cuDNN "
              f"{summary['cudnn_version']}, PyTorch {torch['torch']}, check took "
              f"{summary['elapsed_s']} s")
    md.append("")
    md.append("| check | result |")
    md.append("| --- | --- |")
    t = summary["tests"]
    md.append(f"| ctest | {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped |")
    md.append(f"| compute-sanitizer errors | {summary['sanitizer_errors']} |")
    for step, status in summary["steps"].items():
        md.append(f"| step {step} | {status} |")
    md.append("")
    md.append(f"## LeNet-5, Fashion-MNIST, batch {lenet['batch']}, {lenet['epochs']} epochs")
    md.append("")
    md.append("| | test acc | epoch ms (median) | images/s | wall s | time to 90% s |")
    md.append("| --- | --- | --- | --- | --- | --- |")
    md.append(f"| cnnrt | {fmt(lenet['test_acc'], '.4f')} | {fmt(lenet['epoch_ms_median'])} | "
              f"{fmt(lenet['images_per_second'], '.0f')} | {fmt(lenet['train_wall_s'])} | "
              f"{fmt(lenet['time_to_90_s'])} |")
    md.append(f"| PyTorch eager | {fmt(torch['test_acc'], '.4f')} | "
              f"{fmt(torch['eager_epoch_ms'])} | | | |")
    md.append(f"| PyTorch CUDA graph | {fmt(torch['graphed_test_acc'], '.4f')} | "
              f"{fmt(torch['graphed_epoch_ms'])} | | | |")
    md.append("")
    bench_rows = [("default (activations fused, weight gradients on a second stream)",
                   summary["cnnrt_bench"]),
                  ("activations as layers (--no-fuse)", summary["cnnrt_bench_no_fuse"]),
                  ("weight gradients on the main stream (--no-overlap)",
                   summary["cnnrt_bench_no_overlap"])]
    first = next((doc for _, doc in bench_rows if doc), None)
    if first:
        md.append(f"## cnnrt bench: one {first.get('model')} training step, batch "
                  f"{first.get('batch')} (ms)")
        md.append("")
        md.append("| | op by op | CUDA graph | graph nodes | images/s |")
        md.append("| --- | --- | --- | --- | --- |")
        for label, doc in bench_rows:
            if doc:
                graph = doc.get("graph_step_ms")
                md.append(f"| {label} | {fmt(doc.get('step_ms'), '.4f')} | "
                          f"{fmt(graph, '.4f') if graph is not None else '-'} | "
                          f"{doc.get('graph_nodes') or '-'} | "
                          f"{fmt(doc.get('images_per_second'), '.0f')} |")
        md.append("")
    md.append("## Kernels (median us; ratio > 1: cnnrt faster)")
    md.append("")
    md.append("| kernel | shape | cnnrt us | peer | peer us | peer/cnnrt | max rel diff |")
    md.append("| --- | --- | --- | --- | --- | --- | --- |")
    for k in kernels:
        c, p = k.get("cnnrt_us"), k.get("peer_us")
        ratio = fmt(p / c, ".3f") if c and p else "-"
        md.append(f"| {k['name']} | {k['shape']} | {fmt(c)} | {k['peer']} | {fmt(p)} | {ratio} | "
                  f"{fmt(k.get('max_rel_diff'), '.1e')} |")
    md.append("")
    md.append("## Problems")
    md.append("")
    md.extend(f"- {p}" for p in problems) if problems else md.append("none")
    with open(os.path.join(OUT, "summary.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    # The short table printed last: the lead reads the end of the output.
    print("=" * 78)
    print(f"DEVICE CHECK  {summary['gpu'] or 'NO GPU'}  driver {summary['driver']}  "
          f"CUDA {summary['cuda_runtime']}  commit {str(summary['commit'])[:12]}")
    print(f"tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped   "
          f"sanitizer errors: {summary['sanitizer_errors']}   took {summary['elapsed_s']} s")
    print(f"LeNet-5 cnnrt:   acc {fmt(lenet['test_acc'], '.4f')}  epoch "
          f"{fmt(lenet['epoch_ms_median'])} ms  {fmt(lenet['images_per_second'], '.0f')} img/s  "
          f"wall {fmt(lenet['train_wall_s'])} s  to90% {fmt(lenet['time_to_90_s'])} s")
    print(f"LeNet-5 PyTorch: acc {fmt(torch['test_acc'], '.4f')}  eager "
          f"{fmt(torch['eager_epoch_ms'])} ms/epoch  graphed {fmt(torch['graphed_epoch_ms'])} "
          f"ms/epoch (acc {fmt(torch['graphed_test_acc'], '.4f')})")
    if kernels:
        # One line per layer: cnnrt us / peer us (peer/cnnrt) for each direction.
        layers = {}
        for k in kernels:
            # "lenet5.fc1.forward.tf32": layer "lenet5.fc1.tf32", direction "forward".
            tf32 = k["name"].endswith(".tf32")
            layer, _, direction = k["name"].removesuffix(".tf32").rpartition(".")
            if tf32:
                layer += ".tf32"
            layers.setdefault(layer, {})[direction] = k
        print(f"{'layer (cnnrt/peer us, ratio)':<22} {'forward':>22} {'backward_data':>22} "
              f"{'backward_weights':>22}")
        for layer, by_direction in layers.items():
            cells = []
            for direction in ("forward", "backward_data", "backward_weights"):
                k = by_direction.get(direction, {})
                c, p = k.get("cnnrt_us"), k.get("peer_us")
                ratio = fmt(p / c, ".2f") if c and p else "-"
                cells.append(f"{fmt(c, '.0f')}/{fmt(p, '.0f')} ({ratio})")
            peer = next(iter(by_direction.values())).get("peer", "")
            print(f"{layer + ' vs ' + peer:<22} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
    print("problems:" if problems else "problems: none")
    for p in problems:
        print(f"  !! {p}")
    print(f"files: {', '.join(sorted(os.listdir(OUT)))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
