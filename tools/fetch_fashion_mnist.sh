#!/usr/bin/env bash
# Puts Fashion-MNIST (the four gzipped IDX files) into DIR, default /usr/share/datasets/fashion-mnist,
# where Debian's dataset-fashion-mnist package would. For systems without that package (Ubuntu):
# downloads Zalando's files and checks each decompressed file's SHA-256 (the same bytes Debian
# ships; Debian re-compresses them, so the .gz files themselves differ). Does nothing when all
# four files are already there.
set -euo pipefail
dir=${1:-/usr/share/datasets/fashion-mnist}
base_url=${FASHION_MNIST_URL:-https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion}
declare -A sha256=(
  [train-images-idx3-ubyte]=c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
  [train-labels-idx1-ubyte]=bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
  [t10k-images-idx3-ubyte]=5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
  [t10k-labels-idx1-ubyte]=0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34
)
mkdir -p "$dir"
for name in "${!sha256[@]}"; do
  file=$dir/$name.gz
  if [[ -s $file ]]; then continue; fi
  echo "fetch_fashion_mnist: $base_url/$name.gz -> $file"
  curl -fsSL --retry 3 -o "$file.part" "$base_url/$name.gz"
  actual=$(gzip -dc "$file.part" | sha256sum | cut -d' ' -f1)
  if [[ $actual != "${sha256[$name]}" ]]; then
    rm -f "$file.part"
    echo "fetch_fashion_mnist: $name: SHA-256 of the data is $actual, expected ${sha256[$name]}" >&2
    exit 1
  fi
  mv "$file.part" "$file"
done
