#!/usr/bin/env bash
# The tool on two MPI ranks. `cnnrt train` when things go wrong: SIGINT to the launcher, a rank
# killed, and ranks started with different options; each must end the job with a non-zero status
# within seconds (never a hang) and leave a checkpoint that loads. `cnnrt bench`: the gradient sum
# per step, reported once.
# usage: distributed_cli.sh CNNRT MPIEXEC SCRATCH [DATA]   (exit 77: no data to train on)
set -uo pipefail
tool=$(realpath "$1") mpiexec=$2 scratch=$3 data=${4:-/usr/share/datasets/fashion-mnist}
if [ ! -e "$data/train-images-idx3-ubyte" ] && [ ! -e "$data/train-images-idx3-ubyte.gz" ]; then
  echo "skip: Fashion-MNIST not found in $data"
  exit 77
fi
rm -rf "$scratch" && mkdir -p "$scratch" && cd "$scratch" || exit 1
common=(train --model lenet5 --data "$data" --train-limit 2048 --test-limit 256 --device cpu)
train=("${common[@]}" --epochs 60)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Waits up to $2 seconds for process $1 to end; sets status to its exit status, or "hang".
wait_for() {
  local pid=$1 limit=$2 waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= limit * 10)); then
      kill -9 "$pid" 2>/dev/null
      status=hang
      return
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$pid"
  status=$?
}

# Waits until file $1 holds an epoch line (rank 0 trained an epoch) while process $2 runs.
wait_for_epoch() {
  for _ in $(seq 1200); do
    grep -q "^epoch 1/60  loss" <(tr '\r' '\n' <"$1") && return 0
    kill -0 "$2" 2>/dev/null || { echo "the job ended early:"; tail -5 "$1"; return 1; }
    sleep 0.1
  done
  return 1
}

epochs_done() {
  python3 - "$1" <<'EOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
meta = header["__metadata__"]
print(meta["epochs_done"], meta.get("epoch_steps_done", "0"))
EOF
}

echo "== SIGINT to the launcher"
"$mpiexec" -n 2 "$tool" "${train[@]}" --checkpoint stop.safetensors >stop.log 2>&1 &
launcher=$!
wait_for_epoch stop.log "$launcher" || fail "no epoch finished in 120 s"
kill -INT "$launcher"
wait_for "$launcher" 30
echo "launcher status: $status"
[ "$status" = hang ] && fail "the ranks did not end within 30 s of SIGINT"
[ "$status" = 0 ] && fail "SIGINT gave exit status 0"
read -r done steps < <(epochs_done stop.safetensors) || fail "the checkpoint does not load"
echo "checkpoint: ${done:-?} epochs and ${steps:-?} steps done"
if [ -n "${done:-}" ]; then
  "$mpiexec" -n 2 "$tool" "${common[@]}" --epochs $((done + 1)) --resume stop.safetensors \
    >resume.log 2>&1 || fail "resuming after SIGINT failed: $(tail -3 resume.log)"
  grep -q "^final test accuracy" resume.log || fail "the resumed run did not finish"
fi

echo "== a rank killed"
"$mpiexec" -n 2 "$tool" "${train[@]}" --checkpoint kill.safetensors >kill.log 2>&1 &
launcher=$!
wait_for_epoch kill.log "$launcher" || fail "no epoch finished in 120 s"
victim=$(pgrep -P "$launcher" | tail -1)
start=$(date +%s.%N)
kill -9 "$victim"
wait_for "$launcher" 30
echo "launcher status: $status after $(awk "BEGIN { print $(date +%s.%N) - $start }") s"
[ "$status" = hang ] && fail "the job hung after rank pid $victim was killed"
[ "$status" = 0 ] && fail "a killed rank gave exit status 0"
"$tool" eval --model lenet5 --weights kill.safetensors --data "$data" --test-limit 100 \
  --device cpu >eval.log 2>&1 || fail "the last checkpoint does not load: $(tail -2 eval.log)"

echo "== ranks that disagree"
status=0
timeout 60 "$mpiexec" -n 1 "$tool" "${train[@]}" --batch 64 : -n 1 "$tool" "${train[@]}" --batch 32 \
  >disagree.log 2>&1 || status=$?
cat disagree.log
[ "$status" = 0 ] && fail "disagreeing ranks gave exit status 0"
[ "$status" = 124 ] && fail "disagreeing ranks hung"
lines=$(grep -c "ranks disagree on the batch size" disagree.log)
[ "$lines" = 1 ] || fail "expected one error line about the batch size, got $lines"

echo "== bench: the gradient sum per step"
"$mpiexec" -n 2 "$tool" bench --device cpu --batch 8 --warmup 1 --repeats 3 --threads 1 --json - \
  >bench.json 2>bench.log || fail "bench on two ranks failed: $(tail -3 bench.log)"
python3 - bench.json <<'EOF' || fail "bench's report lacks the gradient sum: $(head -c 300 bench.json)"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, f"{len(lines)} reports (rank 0 alone reports)"
total = json.loads(lines[0])["allreduce"]
assert total["ranks"] == 2 and total["floats"] == 61706 and total["ms_per_step"] > 0, total
print("gradient sum:", total)
EOF

if ((failures)); then exit 1; fi
echo "all distributed fault checks passed"
