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
echo "demo smoke: ok"
