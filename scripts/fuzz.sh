#!/usr/bin/env bash
# scripts/fuzz.sh BUILD_DIR [SECONDS]: build every libFuzzer target (data/fuzz/fuzz_*.cpp) with
# clang and run each for SECONDS (default 30) from an empty corpus. Fails on any crash.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-${FUZZ_SECONDS:-30}}
cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n $cxx ]] || { echo "fuzz: clang++ not found (scripts/install_deps.sh installs it)"; exit 1; }
mkdir -p "$build"
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -1)")
srcs=$(ls engine/*.cpp engine/cpu/*.cpp data/*.cpp)
for f in data/fuzz/fuzz_*.cpp; do
  name=$(basename "$f" .cpp)
  echo "== $name: build"
  $cxx -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -I. -I"$blas_inc" -I/usr/include/stb $f $srcs \
    -ltbb -lopenblas -lz -o "$build/$name"
  echo "== $name: run ${secs}s"
  mkdir -p "$build/corpus-$name"
  "$build/$name" -max_total_time="$secs" -rss_limit_mb=2048 "$build/corpus-$name" 2>&1 | tail -3
done
echo "fuzz: all targets ran ${secs}s without a crash"
