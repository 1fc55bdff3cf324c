#!/usr/bin/env bash
# IDX loading time before and after a change to host/idx.cpp: builds tools/bench/idx_load_time.cpp
# against host/idx.cpp at REV (default HEAD) and against the working tree's, then runs the two
# alternately REPEATS times (default 9) and prints each run and the medians of wall time and of
# CPU time (user + sys, less sensitive to a shared machine).
# Usage: tools/bench/idx_load_time.sh [REV] [REPEATS] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-HEAD}
repeats=${2:-9}
data=${3:-/usr/share/datasets/fashion-mnist}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
git show "$rev:host/idx.cpp" >"$out/idx_before.cpp"
build() {  # idx source, binary
  g++ -std=c++17 -O2 -I. -Iinclude tools/bench/idx_load_time.cpp "$1" host/file_bytes.cpp \
    host/error.cpp -lfmt -lz -ldeflate -o "$2"
}
build "$out/idx_before.cpp" "$out/before"
build host/idx.cpp "$out/after"
for ((i = 1; i <= repeats; ++i)); do
  for which in before after; do
    /usr/bin/time -f "$which cpu %U %S" -o "$out/time" "$out/$which" "$data" >"$out/run"
    echo "$which wall $(cut -d' ' -f1 "$out/run") $(cat "$out/time")"
  done
done | tee "$out/runs"
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for which in before after; do
  wall=$(awk -v w=$which '$1 == w {print $3}' "$out/runs" | median)
  cpu=$(awk -v w=$which '$1 == w {print $6 + $7}' "$out/runs" | median)
  echo "$which: median wall $wall s, median cpu $cpu s"
done
