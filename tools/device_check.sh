#!/usr/bin/env bash
# The GPU machine's one command (shared/GPU.md): versions, the whole test suite, compute-sanitizer,
# LeNet-5 training, the benchmarks (kernels vs cuDNN/cuBLAS, end-to-end vs PyTorch), and a summary.
# Runs from the repository root of a copy of the tree, with build-gpu/ and data/ carried along
# (made here by tools/device_build.sh). Every step is time-boxed; the whole check stays under
# DEVICE_CHECK_BUDGET_S seconds (default 345) so one hang cannot eat the device budget.
#
# Writes under $OUT (default ./device-out), 8 files at most: summary.json, summary.md, ctest.log,
# sanitizer.log, train.log, bench.log, pytorch.log, lenet_metrics.csv. Ends with a short summary.
#
# Exit codes: 0 everything ran and passed; 1 something failed, skipped, timed out or was missing;
# 3 no GPU (nothing run). DEVICE_CHECK_ALLOW_NO_GPU=1 rehearses the whole script without a GPU
# (tests skip, nothing is timed): for checking the script itself on the build machine.
# CNNRT_TRAIN_EXTRA_ARGS: extra arguments appended to `cnnrt train`.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$PWD
OUT=${OUT:-$repo/device-out}
mkdir -p "$OUT"
build=$repo/build-gpu
data=$repo/data/fashion-mnist
work=$(mktemp -d)  # intermediates that are not among the 8 files sent back
budget_s=${DEVICE_CHECK_BUDGET_S:-345}
start_s=$SECONDS
declare -A step_status

log() { printf '\n==== [%4ds] %s\n' "$((SECONDS - start_s))" "$*"; }
# Seconds a step may take: its own cap, or what is left of the budget (less a reserve for the
# summary), whichever is smaller. 0 means: no time left, skip the step.
step_limit() {
  local cap=$1 left=$((budget_s - (SECONDS - start_s) - 15))
  if ((left < 5)); then echo 0; elif ((left < cap)); then echo "$left"; else echo "$cap"; fi
}
# Records how a step ended from its exit code (124/137: killed by timeout).
record() {
  local step=$1 rc=$2 ok_codes=${3:-0}
  if [[ " $ok_codes " == *" $rc "* ]]; then step_status[$step]=ok
  elif ((rc == 124 || rc == 137)); then step_status[$step]="timeout"
  else step_status[$step]="failed (exit $rc)"; fi
}

# ---- 0. Is there a GPU at all? ---------------------------------------------------------------
log "GPU"
have_gpu=no
# Output captured before grepping: `grep -q` leaving early would SIGPIPE the writer under pipefail.
gpu_list=$(command -v nvidia-smi >/dev/null 2>&1 && timeout 30 nvidia-smi -L 2>/dev/null)
if grep -q '^GPU ' <<<"$gpu_list"; then have_gpu=yes; fi
if [[ $have_gpu == no ]]; then
  echo "no GPU: nvidia-smi is missing or lists no device (this is not the GPU machine)"
  if [[ ${DEVICE_CHECK_ALLOW_NO_GPU:-0} != 1 ]]; then
    echo "device_check: nothing run (set DEVICE_CHECK_ALLOW_NO_GPU=1 to rehearse the script)"
    exit 3
  fi
  echo "DEVICE_CHECK_ALLOW_NO_GPU=1: rehearsing without a GPU; no result below is a GPU result"
fi
if [[ ! -f $build/CMakeCache.txt ]]; then
  echo "error: $build is missing: run tools/device_build.sh on the build machine and carry" \
    '["build-gpu", "data"]'
  exit 1
fi
# device_build.sh packs the executables to fit the carry budget: unpack them in place.
if [[ -f $build/executables.tar.gz ]]; then
  tar -C "$build" -xzf "$build/executables.tar.gz" || { echo "error: cannot unpack $build/executables.tar.gz"; exit 1; }
fi
commit=$(cat "$build/COMMIT" 2>/dev/null || echo unknown)
echo "commit $commit, repo $repo, OUT $OUT"

gpu_name="" driver="" cuda_driver=""
if [[ $have_gpu == yes ]]; then
  timeout 30 nvidia-smi | tee "$work/nvidia-smi.txt"
  IFS=',' read -r gpu_name driver < <(timeout 30 nvidia-smi --query-gpu=name,driver_version \
    --format=csv,noheader | head -1)
  gpu_name=$(echo "$gpu_name" | xargs) driver=$(echo "$driver" | xargs)
  cuda_driver=$(grep -o 'CUDA Version: [0-9.]*' "$work/nvidia-smi.txt" | awk '{print $3}')
fi

# ---- Paths of the build machine: make them valid here ----------------------------------------
# ctest's files name the build machine's absolute paths (its full build folder, its repository):
# rewrite them to this copy; and if the old repository path is free here, link it to this copy
# too, so paths compiled into the binaries (test data, presets) resolve as well.
old_build=$(sed -n 's/^CMAKE_CACHEFILE_DIR:INTERNAL=//p' "$build/CMakeCache.txt")
old_root=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
sed_escape() { printf '%s' "$1" | sed 's/[.[*^$|\\]/\\&/g'; }
ctest_files=()
while IFS= read -r -d '' f; do ctest_files+=("$f"); done < <(find "$build" \( -name CTestTestfile.cmake \
  -o -name '*_include.cmake' -o -name '*_tests.cmake' \) -type f -print0)
# One pass through placeholders, so a new path that contains an old one is not rewritten twice.
sed_args=()
if [[ -n $old_build && $old_build != "$build" ]]; then
  sed_args+=(-e "s|$(sed_escape "$old_build")|@CNNRT_BUILD@|g")
fi
if [[ -n $old_root && $old_root != "$repo" ]]; then
  sed_args+=(-e "s|$(sed_escape "$old_root")|@CNNRT_ROOT@|g")
fi
if ((${#sed_args[@]} > 0 && ${#ctest_files[@]} > 0)); then
  echo "rewriting $old_build -> $build and $old_root -> $repo in ${#ctest_files[@]} ctest files"
  sed -i "${sed_args[@]}" -e "s|@CNNRT_BUILD@|$build|g" -e "s|@CNNRT_ROOT@|$repo|g" \
    "${ctest_files[@]}"
fi
if [[ -n $old_root && $old_root != "$repo" ]]; then
  if [[ ! -e $old_root ]] && mkdir -p "$(dirname "$old_root")" 2>/dev/null &&
    ln -s "$repo" "$old_root" 2>/dev/null; then
    echo "linked $old_root -> $repo (for paths compiled into the binaries)"
  fi
fi
export CNNRT_TEST_DATA_DIR=$repo/tests/data
export CNNRT_TOOL_PATH=$build/tools/cnnrt
export CNNRT_DATA_DIR=$data
export CNNRT_PRESET_DIR=$repo/tools/presets

# ---- Shared libraries: cuDNN (and anything else missing) from PyTorch's nvidia packages --------
binaries=()
while IFS= read -r -d '' f; do binaries+=("$f"); done < <(
  find "$build" -type f -perm -u+x \( -name '*_test' -o -name cnnrt -o -name cnnrt_kernel_bench \) \
    -print0 | sort -z)
nvidia_site=$(timeout 60 python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]) + "/nvidia")' 2>/dev/null || true)
cudnn_lib=$(timeout 60 python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__ or list(nvidia.cudnn.__path__)[0]) + "/lib")' 2>/dev/null || true)
if [[ -z $cudnn_lib || ! -d $cudnn_lib ]]; then
  cudnn_lib=$(timeout 60 find / -xdev -name 'libcudnn.so.9' -path '*site-packages*' 2>/dev/null |
    head -1 | xargs -r dirname)
fi
[[ -n $cudnn_lib ]] && export LD_LIBRARY_PATH=$cudnn_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "cuDNN from: ${cudnn_lib:-not found}"
missing_libs() { for b in "${binaries[@]}"; do ldd "$b" 2>/dev/null; done | awk '/=> not found/ {print $1}' | sort -u; }
for lib in $(missing_libs); do
  dir=$(find ${nvidia_site:+"$nvidia_site"} /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib \
    -name "$lib" 2>/dev/null | head -1 | xargs -r dirname)
  if [[ -n $dir ]]; then
    echo "adding $dir for $lib"
    export LD_LIBRARY_PATH=$dir:$LD_LIBRARY_PATH
  fi
done
for b in "${binaries[@]}"; do
  if ldd "$b" 2>/dev/null | grep -q 'not found'; then
    echo "WARNING: ${b#"$repo"/} cannot start here:"
    ldd "$b"
  fi
done

cuda_runtime=""
if [[ -x $build/tools/cnnrt ]]; then
  timeout 30 "$build/tools/cnnrt" info | tee "$work/info.txt" || { echo "cnnrt info failed:"; ldd "$build/tools/cnnrt"; }
  cuda_runtime=$(sed -n 's/^CUDA runtime //p' "$work/info.txt" 2>/dev/null | head -1)
fi

# ---- 1+2. ctest and compute-sanitizer, side by side (correctness only; nothing timed) -----------
log "ctest and compute-sanitizer (in parallel)"
limit=$(step_limit 110)
(
  cd "$build" && timeout -k 5 "$limit" ctest --output-on-failure -j 8 --timeout 90 -LE host_only
) >"$OUT/ctest.log" 2>&1 &
ctest_pid=$!

sanitizer_runs=()  # "tool binary" pairs
if command -v compute-sanitizer >/dev/null 2>&1 && [[ $have_gpu == yes ]]; then
  # The CUDA kernel suites, and fusion_test: whole models on CUDA, fused and on two streams.
  for b in "$build"/tests/cuda_*_test "$build"/tests/fusion_test; do
    [[ -x $b ]] || continue
    sanitizer_runs+=("memcheck $b")
    case $(basename "$b") in
      cuda_conv_test | cuda_dense_test | cuda_pool_test | cuda_loss_test) sanitizer_runs+=("racecheck $b") ;;
    esac
  done
fi
sanitizer_pids=()
for i in "${!sanitizer_runs[@]}"; do
  read -r tool b <<<"${sanitizer_runs[$i]}"
  extra=()
  [[ $tool == memcheck ]] && extra=(--leak-check full)
  # cuda_error_test provokes failing CUDA API calls on purpose; only its memory errors count.
  [[ $(basename "$b") == cuda_error_test ]] && extra+=(--report-api-errors no)
  # racecheck is ~100x slower: the full-size LeNet/AlexNet cases are left to memcheck; the random
  # sweep and the staged-path boundary cases still run every shared-memory kernel path.
  filter=()
  [[ $tool == racecheck ]] && filter=(--gtest_filter=-*LeNet*:*AlexNet*)
  # GTEST_BRIEF keeps the logs to failures; the sanitizer's own report is what counts here.
  (
    cd "$build/tests" && GTEST_BRIEF=1 timeout -k 5 "$limit" compute-sanitizer --tool "$tool" \
      "${extra[@]}" "$b" "${filter[@]}"
  ) >"$work/sanitizer.$i.log" 2>&1 &
  sanitizer_pids+=($!)
done
wait "$ctest_pid"
record ctest $? 0
: >"$OUT/sanitizer.log"
sanitizer_total=0 sanitizer_incomplete=0
for i in "${!sanitizer_runs[@]}"; do
  wait "${sanitizer_pids[$i]}"
  rc=$?
  read -r tool b <<<"${sanitizer_runs[$i]}"
  # memcheck ends with "ERROR SUMMARY: N errors"; racecheck may end with "RACECHECK SUMMARY: H
  # hazards displayed (N errors, W warnings)" instead. Neither: the run did not finish.
  slog=$work/sanitizer.$i.log
  if grep -q 'ERROR SUMMARY:' "$slog"; then
    n=$(grep -o 'ERROR SUMMARY: [0-9]* error' "$slog" | awk '{s += $3} END {print s + 0}')
  elif grep -q 'RACECHECK SUMMARY:' "$slog"; then
    n=$(grep -o '([0-9]* error' "$slog" | tr -d '(' | awk '{s += $1} END {print s + 0}')
  fi
  if ! grep -q 'ERROR SUMMARY:\|RACECHECK SUMMARY:' "$slog"; then
    sanitizer_incomplete=$((sanitizer_incomplete + 1))
    n="incomplete (exit $rc)"
  else
    sanitizer_total=$((sanitizer_total + n))
  fi
  {
    echo "######## $tool $(basename "$b"): $n errors, exit $rc"
    # A racy kernel can print thousands of hazards: keep each run's first 1 MB.
    head -c 1000000 "$work/sanitizer.$i.log"
  } >>"$OUT/sanitizer.log"
  echo "sanitizer $tool $(basename "$b"): $n errors (exit $rc)"
done
if ((${#sanitizer_runs[@]} == 0)); then
  step_status[sanitizer]="not run (no compute-sanitizer, no GPU or no tests/cuda_*_test)"
  sanitizer_errors=null
elif ((sanitizer_incomplete > 0)); then
  step_status[sanitizer]="incomplete: $sanitizer_incomplete of ${#sanitizer_runs[@]} runs gave no summary"
  sanitizer_errors=$sanitizer_total
else
  step_status[sanitizer]=ok
  sanitizer_errors=$sanitizer_total
fi
grep -E 'tests passed|tests failed|Total Test time' "$OUT/ctest.log" || tail -n 5 "$OUT/ctest.log"
if grep -q 'Unable to find executable\|NOT_BUILT\|error while loading shared libraries' "$OUT/ctest.log"; then
  echo "some test binaries did not start:"
  for b in "${binaries[@]}"; do ldd "$b" | grep 'not found' | sed "s|^|  ${b##*/}: |"; done
fi

# ---- 3. LeNet-5 training --------------------------------------------------------------------
log "LeNet-5 training"
: >"$OUT/train.log"
tool=$build/tools/cnnrt
tool_help=$([[ -x $tool ]] && timeout 30 "$tool" --help 2>&1)
if [[ ! -x $tool ]]; then
  step_status[train]="skipped: no cnnrt tool"
elif ! grep -qE '^\s+train\b' <<<"$tool_help"; then
  step_status[train]="skipped: this cnnrt has no train command"
  echo "${step_status[train]}" | tee "$OUT/train.log"
else
  limit=$(step_limit 60)
  if ((limit == 0)); then step_status[train]="skipped: out of time"; else
    # shellcheck disable=SC2086
    timeout -k 5 "$limit" "$tool" train --device cuda --epochs 10 --batch 256 --data "$data" \
      --metrics "$OUT/lenet_metrics.csv" --checkpoint "$work/lenet5.safetensors" \
      ${CNNRT_TRAIN_EXTRA_ARGS:-} 2>&1 | tee "$OUT/train.log"
    record train "${PIPESTATUS[0]}"
  fi

  # Determinism (issue: reliability): the same run again must give a byte-identical checkpoint.
  log "determinism: a second identical training run"
  limit=$(step_limit 30)
  if ((limit == 0)); then step_status[determinism]="skipped: out of time"
  elif [[ ${step_status[train]} != ok ]]; then step_status[determinism]="skipped: training failed"
  else
    echo "######## determinism: the same run again, checkpoints compared byte for byte" \
      >>"$OUT/train.log"
    # shellcheck disable=SC2086
    timeout -k 5 "$limit" "$tool" train --device cuda --epochs 10 --batch 256 --data "$data" \
      --checkpoint "$work/lenet5-again.safetensors" ${CNNRT_TRAIN_EXTRA_ARGS:-} 2>&1 |
      tail -n 2 >>"$OUT/train.log"
    record determinism "${PIPESTATUS[0]}"
    if [[ ${step_status[determinism]} == ok ]]; then
      if cmp "$work/lenet5.safetensors" "$work/lenet5-again.safetensors" >>"$OUT/train.log"; then
        echo "checkpoints identical ($(stat -c %s "$work/lenet5.safetensors") bytes)" >>"$OUT/train.log"
      else
        step_status[determinism]="failed: the two checkpoints differ"
      fi
    fi
  fi

  # Whole-network gradients, CUDA against the CPU backend, for both LeNets (issue: training).
  log "gradcheck: CUDA against CPU"
  gradcheck_rc=0
  for model in lenet5 lenet5-classic; do
    echo "######## cnnrt gradcheck --model $model --reference cpu" | tee -a "$OUT/train.log"
    timeout -k 5 60 "$tool" gradcheck --model "$model" --reference cpu --batch 16 --data "$data" \
      2>&1 | tee -a "$OUT/train.log"
    rc=${PIPESTATUS[0]}
    ((rc != 0)) && gradcheck_rc=$rc
  done
  record gradcheck "$gradcheck_rc"

  # Learning-rate settings side by side (separate processes on the one GPU), 10 epochs each:
  # the final test accuracy of each, so a default can be chosen from measurements.
  log "training settings sweep"
  limit=$(step_limit 40)
  if ((limit == 0)); then step_status[sweep]="skipped: out of time"; else
    sweep_settings=("--batch 256 --init he-uniform --schedule constant"
      "--batch 256 --init he-uniform --schedule cosine"
      "--batch 256 --init lecun-uniform --schedule cosine"
      "--batch 256 --init lecun-uniform --schedule cosine --lr 0.1"
      "--batch 64 --init lecun-uniform --schedule cosine"
      "--batch 128 --init lecun-uniform --schedule cosine"
      "--batch 256 --init lecun-uniform --schedule cosine --gemm tf32")  # TF32's accuracy effect
    sweep_pids=()
    for i in "${!sweep_settings[@]}"; do
      # shellcheck disable=SC2086
      timeout -k 5 "$limit" "$tool" train --device cuda --epochs 10 --data "$data" \
        ${sweep_settings[$i]} >"$work/sweep.$i.log" 2>&1 &
      sweep_pids+=($!)
    done
    sweep_rc=0
    echo "######## settings sweep (10 epochs each; final line of each run)" >>"$OUT/train.log"
    for i in "${!sweep_settings[@]}"; do
      wait "${sweep_pids[$i]}" || sweep_rc=1
      line=$(grep -E '^epoch 10/10' "$work/sweep.$i.log" | tail -n 1)
      echo "sweep [${sweep_settings[$i]}]: ${line:-no result ($(tail -n 1 "$work/sweep.$i.log"))}" |
        tee -a "$OUT/train.log"
    done
    record sweep "$sweep_rc"
  fi
fi

# ---- 4. Benchmarks --------------------------------------------------------------------------
log "kernel benchmark (cnnrt vs cuDNN / cuBLAS)"
: >"$OUT/bench.log"
if [[ -x $build/tools/cnnrt_kernel_bench ]]; then
  limit=$(step_limit 60)
  if ((limit == 0)); then step_status[kernel_bench]="skipped: out of time"; else
    timeout -k 5 "$limit" "$build/tools/cnnrt_kernel_bench" --json "$work/kernels.json" \
      --max-seconds "$((limit > 20 ? limit - 10 : limit))" 2>&1 |
      tee -a "$OUT/bench.log"
    rc=${PIPESTATUS[0]}
    record kernel_bench "$rc"
    ((rc == 3)) && step_status[kernel_bench]="skipped: no CUDA device"
  fi
else
  step_status[kernel_bench]="skipped: cnnrt_kernel_bench was not built"
fi

log "cnnrt bench (end to end)"
if grep -qE '^\s+bench\b' <<<"$tool_help"; then
  limit=$(step_limit 20)
  if ((limit == 0)); then step_status[cnnrt_bench]="skipped: out of time"; else
    echo "######## cnnrt bench --device cuda --model lenet5 --batch 256" >>"$OUT/bench.log"
    timeout -k 5 "$limit" "$tool" bench --device cuda --model lenet5 --batch 256 \
      --json "$work/cnnrt_bench.json" 2>&1 | tee -a "$OUT/bench.log"
    record cnnrt_bench "${PIPESTATUS[0]}"
    # Without activation fusion, and without the weight gradients' second stream: what each
    # saves, measured in the same run.
    bench_help=$("$tool" bench --help 2>&1)
    for variant in no-fuse no-overlap; do
      grep -q -- "--$variant" <<<"$bench_help" || continue
      limit=$(step_limit 20)
      if ((limit == 0)); then step_status[cnnrt_bench_$variant]="skipped: out of time"; continue; fi
      echo "######## cnnrt bench --device cuda --model lenet5 --batch 256 --$variant" \
        >>"$OUT/bench.log"
      timeout -k 5 "$limit" "$tool" bench --device cuda --model lenet5 --batch 256 "--$variant" \
        --json "$work/cnnrt_bench_$variant.json" 2>&1 | tee -a "$OUT/bench.log"
      record "cnnrt_bench_$variant" "${PIPESTATUS[0]}"
    done
  fi
else
  step_status[cnnrt_bench]="skipped: this cnnrt has no bench command"
fi
echo "${step_status[cnnrt_bench]}"

log "PyTorch LeNet-5 (eager and CUDA graph)"
limit=$(step_limit 75)
if ((limit == 0)); then step_status[pytorch]="skipped: out of time"; else
  PYTHONUNBUFFERED=1 timeout -k 5 "$limit" python3 tools/bench/pytorch_lenet.py --data "$data" \
    --epochs 10 --batch 256 --json "$work/pytorch.json" 2>&1 | tee "$OUT/pytorch.log"
  record pytorch "${PIPESTATUS[0]}"
fi

log "PyTorch interop (cnnrt checkpoint in a PyTorch LeNet-5)"
if [[ -f $work/lenet5.safetensors ]]; then
  limit=$(step_limit 60)
  if ((limit == 0)); then step_status[interop]="skipped: out of time"; else
    echo "######## torch_interop.py" >>"$OUT/pytorch.log"
    PYTHONUNBUFFERED=1 timeout -k 5 "$limit" python3 tools/bench/torch_interop.py \
      --weights "$work/lenet5.safetensors" --cnnrt "$tool" --data "$data" --device cuda 2>&1 |
      tee -a "$OUT/pytorch.log"
    record interop "${PIPESTATUS[0]}"
  fi
else
  step_status[interop]="skipped: no checkpoint from the training step"
fi

log "Nsight Compute: per-kernel summary of two training steps"
if command -v ncu >/dev/null 2>&1 && [[ -x $tool ]]; then
  limit=$(step_limit 60)
  if ((limit == 0)); then step_status[ncu]="skipped: out of time"; else
    echo "######## ncu --profile-from-start off (steps 3:4 via --profile-steps)" >>"$OUT/bench.log"
    timeout -k 5 "$limit" ncu --profile-from-start off --print-summary per-kernel \
      --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size \
      "$tool" train --device cuda --epochs 1 --train-limit 2560 --test-limit 256 --data "$data" \
      --profile-steps 3:4 2>&1 | grep -vE '^(epoch|training|final)' | tee -a "$OUT/bench.log"
    record ncu "${PIPESTATUS[0]}"
  fi
else
  step_status[ncu]="skipped: no ncu on this machine"
fi

# ---- 5. Summary -----------------------------------------------------------------------------
log "summary"
steps_file=$work/steps.tsv
for k in "${!step_status[@]}"; do printf '%s\t%s\n' "$k" "${step_status[$k]}"; done >"$steps_file"
OUT=$OUT WORK=$work GPU_NAME=$gpu_name DRIVER=$driver CUDA_DRIVER=$cuda_driver \
  CUDA_RUNTIME=$cuda_runtime COMMIT=$commit SANITIZER_ERRORS=$sanitizer_errors HAVE_GPU=$have_gpu \
  ELAPSED_S=$((SECONDS - start_s)) python3 tools/bench/device_summary.py
summary_rc=$?
rm -rf "$work"
exit $summary_rc
