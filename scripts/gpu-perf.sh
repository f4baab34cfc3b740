#!/usr/bin/env bash
# scripts/gpu-perf.sh: the short GPU check of the CUDA backend's speed work: build the tests and the
# bench with CUDA, run the CUDA test suite (graph capture included), then the benchmarks (eager,
# CUDA graph, per-primitive profile of one eager step; sgemm and B3 again with TF32) with the
# PyTorch anchor and its peak memory. Packages the machine lacks come as .debs in .deps/ (unpacked into
# /opt/deps). Everything is also written to $OUT when that is set (the device tool's result folder).
set -uo pipefail
source "$(dirname "$0")/device_env.sh"
build=${BUILD:-build-gpu}
out=${OUT:-$build/perf}
mkdir -p "$out"
status=0
step() { echo; echo "=== $* ($(date +%T))"; }
step configure
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPOLYHEAD_CUDA=ON "${cmake_deps[@]}" > "$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
step build
cmake --build "$build" -j "$(nproc)" --target polyhead_tests polyhead_bench > "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
step device
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
step "CUDA test suite"
timeout 120 "$build/polyhead_tests" --source-file='*tests/cuda/*' --no-intro 2>&1 | tail -40 || status=1
step "benchmarks fp32: eager, graph, profile (+ PyTorch anchor with its peak memory)"
POLYHEAD_BENCH_DEVICE=cuda POLYHEAD_BENCH_OUT="$out" POLYHEAD_BENCH_FLAGS="${PERF_FLAGS:---profile}" \
  timeout 270 scripts/bench.sh "$build" > "$out/bench.log" 2>&1 || status=1
grep -v '"profile"' "$out/bench.log"
grep '"profile"' "$out/bench.log" | grep -E 'TOTAL' || true
step "done (status $status)"
exit $status
