#!/usr/bin/env python3
"""`cnnrt train --tensorboard DIR`, read back with TensorBoard's own event reader.

Trains two epochs of LeNet-5 on a small IDX data set made here, writing both the metrics CSV and
TensorBoard events, then checks with tensorboard's EventAccumulator that every scalar is there
once per epoch with the CSV's value (to the CSV's 6 decimals; TensorBoard keeps float32), and
that the conv1 kernel picture is a PNG of the size its event records.

Usage: tensorboard_check.py CNNRT_TOOL SCRATCH_DIR. Exits 77 (skipped) when the tensorboard
package cannot be imported.
"""
import csv
import os
import shutil
import struct
import subprocess
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as error:  # CI installs it; elsewhere the check is skipped
    print(f"skipped: cannot import tensorboard ({error})")
    sys.exit(77)

CSV_DECIMALS_ATOL = 5e-6  # the CSV prints 6 decimals
FLOAT32_RTOL = 1e-6
EPOCHS = 2


def write_idx(directory, prefix, count, seed):
    """count 28x28 images whose brightness follows the label, and their labels (0..9)."""
    state = seed
    images, labels = bytearray(), bytearray()
    for i in range(count):
        label = i % 10
        labels.append(label)
        for _ in range(28 * 28):
            state = (state * 1103515245 + 12345) % 2**31
            images.append((label * 25 + state % 40) % 256)
    with open(os.path.join(directory, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, 28, 28) + images)
    with open(os.path.join(directory, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + labels)


def close(a, b, atol, rtol):
    return abs(a - b) <= atol + rtol * abs(b)


def main():
    tool, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    data, logdir = os.path.join(scratch, "data"), os.path.join(scratch, "logs")
    os.makedirs(data)
    write_idx(data, "train", 96, seed=1)
    write_idx(data, "t10k", 40, seed=2)
    metrics = os.path.join(scratch, "metrics.csv")
    subprocess.run([tool, "train", "--data", data, "--device", "cpu", "--threads", "1",
                    "--epochs", str(EPOCHS), "--batch", "32", "--seed", "3",
                    "--metrics", metrics, "--tensorboard", logdir],
                   check=True, stdout=subprocess.DEVNULL)
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == EPOCHS, rows

    events = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    columns = {"loss/train": "train_loss", "loss/test": "test_loss",
               "accuracy/train": "train_acc", "accuracy/test": "test_acc",
               "images_per_second": "images_per_second"}
    tags = events.Tags()
    failures = []
    for tag in list(columns) + ["learning_rate"]:
        if tag not in tags["scalars"]:
            failures.append(f"no scalar '{tag}' (scalars: {tags['scalars']})")
            continue
        points = events.Scalars(tag)
        if [p.step for p in points] != list(range(1, EPOCHS + 1)):
            failures.append(f"{tag}: steps {[p.step for p in points]}")
            continue
        if tag not in columns:
            if not all(p.value > 0 for p in points):
                failures.append(f"{tag}: {[p.value for p in points]} not all positive")
            continue
        atol = 0.05 if tag == "images_per_second" else CSV_DECIMALS_ATOL  # CSV: 1 decimal
        for p, row in zip(points, rows):
            expected = float(row[columns[tag]])
            if not close(p.value, expected, atol, FLOAT32_RTOL):
                failures.append(f"{tag} epoch {p.step}: {p.value} against the CSV's {expected}")

    if "conv1.weight" not in tags["images"]:
        failures.append(f"no image 'conv1.weight' (images: {tags['images']})")
    else:
        pictures = events.Images("conv1.weight")
        if [p.step for p in pictures] != list(range(1, EPOCHS + 1)):
            failures.append(f"conv1.weight: steps {[p.step for p in pictures]}")
        for p in pictures:
            png = p.encoded_image_string
            if png[:8] != b"\x89PNG\r\n\x1a\n":
                failures.append("conv1.weight: not a PNG")
                continue
            width, height = struct.unpack(">II", png[16:24])  # IHDR, the first chunk
            if (width, height) != (p.width, p.height) or width < 6 * 5:
                failures.append(f"conv1.weight: PNG {width}x{height}, event {p.width}x{p.height}")

    for failure in failures:
        print("FAIL:", failure)
    if failures:
        sys.exit(1)
    print(f"TensorBoard read {EPOCHS} epochs of {len(columns) + 1} scalars and the conv1 kernels")


if __name__ == "__main__":
    main()
