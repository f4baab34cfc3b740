#!/usr/bin/env bash
# scripts/fuzz.sh BUILD_DIR [SECONDS]: build every libFuzzer target (data/fuzz/fuzz_*.cpp) with
# clang (the library sources compiled once, each target linked against them) and run each for
# SECONDS (default 30) from an empty corpus. Fails on any crash or sanitizer report.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-${FUZZ_SECONDS:-30}}
cxx=$(command -v clang++-14 || command -v clang++ || true)
[[ -n $cxx ]] || { echo "fuzz: clang++ not found (scripts/install_deps.sh installs it)"; exit 1; }
mkdir -p "$build/obj"
blas_inc=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' | head -1)")
flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -I. -I"$blas_inc" -I/usr/include/stb)
objs=()
for src in engine/*.cpp engine/cpu/*.cpp data/*.cpp; do
  o="$build/obj/$(echo "$src" | tr / _).o"
  if [[ ! -f $o || $src -nt $o ]]; then
    $cxx "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$o" &
    while (( $(jobs -r | wc -l) >= $(nproc) )); do wait -n; done
  fi
  objs+=("$o")
done
wait
for f in data/fuzz/fuzz_*.cpp; do
  name=$(basename "$f" .cpp)
  echo "== $name: build"
  $cxx "${flags[@]}" -fsanitize=fuzzer "$f" "${objs[@]}" -ltbb -lopenblas -lz -o "$build/$name"
  echo "== $name: run ${secs}s"
  mkdir -p "$build/corpus-$name"
  "$build/$name" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$build/corpus-$name" > "$build/$name.log" 2>&1 \
    || { tail -40 "$build/$name.log"; echo "fuzz: $name failed"; exit 1; }
  tail -2 "$build/$name.log"
done
echo "fuzz: all targets ran ${secs}s without a crash"
