#!/usr/bin/env bash
# scripts/gpu-check.sh: on a machine with an NVIDIA GPU, build with CUDA, run the whole test suite
# (CUDA tests included), the CUDA tests under compute-sanitizer, and the benchmarks with the
# PyTorch anchor when available. Set POLYHEAD_DEPS_DIR to a folder of unpacked .debs (oneTBB, stb)
# when the machine lacks them.
set -euo pipefail
if [[ -d .deps ]]; then
  for f in .deps/*.deb; do dpkg -x "$f" /opt/deps; done
  export CMAKE_PREFIX_PATH=/opt/deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  export CPATH=/opt/deps/usr/include${CPATH:+:$CPATH}
  export LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
build=${BUILD:-build-gpu}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPOLYHEAD_CUDA=ON -DSTB_INCLUDE_DIR=${STB_INCLUDE_DIR:-/opt/deps/usr/include/stb}
cmake --build "$build" -j "$(nproc)"
(cd "$build" && ctest --output-on-failure)
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 1 "$build/polyhead_tests" --source-file='*tests/cuda/*' --no-intro
fi
POLYHEAD_BENCH_DEVICE=cuda scripts/bench.sh "$build"
