#!/usr/bin/env bash
# scripts/demo_smoke.sh BUILD_DIR: run every demo in its short mode (CI smoke test).
set -euo pipefail
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/quickstart"
"$build/polyhead" methods >/dev/null
"$build/polyhead" train --dataset synthetic --model mlp --method pcgrad --epochs 1 --max-steps 20 --out "$tmp/run"
"$build/mnist_mlp" --smoke
for d in "$build"/demo_*; do
  [[ -x $d ]] || continue
  echo "== $(basename "$d") --smoke"
  "$d" --smoke --out "$tmp/$(basename "$d")"
done
# the second settings of two demos: CoBa with a fully shared model, MT2ST with the light head
"$build/demo_coba" --smoke --shared --out "$tmp/demo_coba_shared"
"$build/demo_mt2st" --smoke --light --ntrain 500 --out "$tmp/demo_mt2st_light"
"$build/demo_pike" --smoke --strategies mix,doremi --out "$tmp/demo_pike_doremi"  # DoReMi: reference, proxy, main
echo "demo smoke: ok"
