#!/usr/bin/env bash
# Prints the SHA-256 (16 hex digits) of the tensors and of the whole checkpoint after a short seeded
# one-thread run of lenet5, lenet5-classic and tools/bench/mixed_layers.json, by default on the
# reference CPU kernels (--device reference; the fast path, cpu, rounds otherwise). A change that
# must keep behaviour bit for bit leaves these lines unchanged (run before and after, compare).
# usage: tools/bench/checkpoint_hashes.sh [BUILD_DIR] [DEVICE]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
device=${2:-reference}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for model in lenet5 lenet5-classic tools/bench/mixed_layers.json; do
  name=$(basename "$model" .json)
  "$build/tools/cnnrt" train --model "$model" --device "$device" --threads 1 --seed 7 \
    --train-limit 2048 --epochs 2 --batch 64 --checkpoint "$out/$name.safetensors" >/dev/null
  python3 - "$out/$name.safetensors" <<'PY'
import hashlib, json, struct, sys
path = sys.argv[1]
data = open(path, "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
body = data[8 + n:]
tensors = hashlib.sha256()
for key in sorted(k for k in header if k != "__metadata__"):
    start, end = header[key]["data_offsets"]
    tensors.update(key.encode())
    tensors.update(body[start:end])
print(path.split("/")[-1], tensors.hexdigest()[:16], hashlib.sha256(data).hexdigest()[:16])
PY
done
