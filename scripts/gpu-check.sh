#!/usr/bin/env bash
# scripts/gpu-check.sh: on a machine with an NVIDIA GPU: build with CUDA, run the CUDA test suite,
# the benchmarks (fp32 and TF32) with the PyTorch anchor when available, the CPU suites, and the
# CUDA tests under compute-sanitizer. Packages the machine lacks can be brought as .debs in .deps/
# (see the shared device notes); they are unpacked into /opt/deps, never into /.
# Output is also copied to $OUT when that is set (the device tool's result folder).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
build=${BUILD:-build-gpu}
status=0
step() { echo; echo "=== $* ($(date +%T))"; }
step configure
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPOLYHEAD_CUDA=ON "${cmake_deps[@]}" || exit 1
step build
cmake --build "$build" -j "$(nproc)" 2>&1 | grep -Ev '^\[ *[0-9]+%\] (Building|Linking)' || true
[[ -x $build/polyhead_tests ]] || { echo "gpu-check: build failed"; exit 1; }
step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
step "CUDA test suite"
(cd "$build" && ctest -R cuda --output-on-failure) || status=1
"$build/polyhead_tests" --source-file='*tests/cuda/*' --no-intro 2>&1 | tail -4
step "benchmarks: fp32 eager and CUDA graph, then TF32 (+ PyTorch anchor with its peak memory)"
POLYHEAD_BENCH_DEVICE=cuda POLYHEAD_BENCH_OUT="$build/bench" scripts/bench.sh "$build" || status=1
step "whole-model fixtures and the CPU suites"
(cd "$build" && ctest -E cuda --output-on-failure) || status=1
if command -v compute-sanitizer >/dev/null; then
  # The allocator test asks for 1 PiB on purpose; memcheck counts those failed cudaMalloc calls as
  # API errors, so it runs without that case.
  step "compute-sanitizer memcheck on the CUDA tests (without the deliberate out-of-memory case)"
  compute-sanitizer --tool memcheck --error-exitcode 3 "$build/polyhead_tests" --source-file='*tests/cuda/*' \
    --test-case-exclude='*memory*,*alloc*' --no-intro 2>&1 | grep -E '^=========|test cases'
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
fi
step "done (status $status)"
exit $status
