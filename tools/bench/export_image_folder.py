#!/usr/bin/env python3
"""Writes an IDX data set (Fashion-MNIST by default) as an image folder of greyscale PNGs:
OUT/train/<label>_<name>/<index>.png and OUT/test/..., so that cnnrt's folder loader, its cache
and its training can be compared with the same images read from IDX.

Folder names start with the label, so sorted they keep the IDX label order. Only the standard
library: gzip for the IDX files, zlib and struct for the PNGs.

    python3 tools/bench/export_image_folder.py /tmp/fmnist-png
"""
import argparse
import gzip
import os
import struct
import sys
import zlib

FASHION_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                 "bag", "boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    if magic >> 8 != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def find(directory, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(directory, name)):
            return os.path.join(directory, name)
    sys.exit(f"{directory}: no {stem}[.gz]")


def png_bytes(width, height, pixels):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = b"".join(b"\0" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0,
                                                               0, 0)) +
            chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the folder to write (train/ and test/ inside)")
    parser.add_argument("--data", default=os.environ.get("CNNRT_DATA_DIR",
                                                         "/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many images a split")
    args = parser.parse_args()
    for split, prefix in (("train", "train"), ("test", "t10k")):
        dims, images = read_idx(find(args.data, f"{prefix}-images-idx3-ubyte"))
        _, labels = read_idx(find(args.data, f"{prefix}-labels-idx1-ubyte"))
        count, height, width = dims
        if args.limit:
            count = min(count, args.limit)
        for i in range(count):
            label = labels[i]
            name = FASHION_NAMES[label] if label < len(FASHION_NAMES) else "class"
            folder = os.path.join(args.out, split, f"{label}_{name}")
            os.makedirs(folder, exist_ok=True)
            plane = images[i * height * width:(i + 1) * height * width]
            with open(os.path.join(folder, f"{i:05d}.png"), "wb") as f:
                f.write(png_bytes(width, height, plane))
        print(f"{split}: {count} images of {width}x{height} in {os.path.join(args.out, split)}")


if __name__ == "__main__":
    main()
