#!/usr/bin/env bash
# scripts/reference/compare_torch.sh: Polyhead against a PyTorch reference on MultiMNIST.
#
# For one compare config (default demos/multimnist_compare.json; --full applies its "full"
# overrides) this
#   1. writes the exact data arrays, the resolved run config, Polyhead's initial parameters and
#      its loader's example order (build/export_multimnist) into OUT/data,
#   2. trains `polyhead train --config OUT/data/run_config.json --method M --seed S` for M in
#      METHODS and every seed (run folders OUT/polyhead/M-sS),
#   3. trains the same model, data and method in PyTorch (torch_multimnist.py, run with
#      /usr/bin/python3; its own initialisation and shuffling unless --init polyhead /
#      --order polyhead, which only make sense for the exported config's seed),
#   4. prints a side-by-side table of the final per-task test accuracies with the differences
#      (Polyhead minus PyTorch, in points), per seed and averaged over the seeds, and writes it to
#      OUT/table.md.
#
# Usage: scripts/reference/compare_torch.sh [--full] [--seeds "0 1 2"] [--methods ew,pcgrad]
#            [--config FILE] [--out DIR] [--init torch|polyhead] [--order torch|polyhead]
#            [--epochs N] [--table-only]
#   --table-only prints the table of the runs already in OUT without training anything.
#   BUILD=build-x selects the build folder (default build); the programs polyhead and
#   export_multimnist must be built there. TORCH_THREADS sets PyTorch's threads (default 1: on
#   a machine shared with other jobs 1 is much faster than 2). Real MNIST is expected in
#   data/mnist (scripts/fetch_mnist.sh); without it both sides train on the synthetic stand-in
#   and say so.
# Exit status: 0 when everything ran (the table is informative; it does not judge), else non-zero.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
BUILD="${BUILD:-build}"
PY=/usr/bin/python3
CONFIG=demos/multimnist_compare.json
OUT=""
FULL=""
SEEDS="0"
METHODS="ew,pcgrad"
INIT=torch
ORDER=torch
EPOCHS=""
TABLE_ONLY=0
TORCH_THREADS="${TORCH_THREADS:-1}"

die() { echo "compare_torch: error: $*" >&2; exit 1; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --full) FULL=--full; shift ;;
    --seeds) SEEDS="$2"; shift 2 ;;
    --methods) METHODS="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --init) INIT="$2"; shift 2 ;;
    --order) ORDER="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --table-only) TABLE_ONLY=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n "$OUT" ]] || OUT="runs/torch-compare${FULL:+-full}"
"$PY" -c 'import torch, numpy' 2>/dev/null || die "$PY cannot import torch and numpy (apt-get install python3-torch)"
[[ "$INIT" == torch || "$INIT" == polyhead ]] || die "--init must be torch or polyhead"
[[ "$ORDER" == torch || "$ORDER" == polyhead ]] || die "--order must be torch or polyhead"
for m in ${METHODS//,/ }; do [[ "$m" == ew || "$m" == pcgrad ]] || die "the reference covers ew and pcgrad, not '$m'"; done

if [[ $TABLE_ONLY == 0 ]]; then
  [[ -x "$BUILD/polyhead" && -x "$BUILD/export_multimnist" ]] ||
    die "$BUILD/polyhead and $BUILD/export_multimnist are needed (cmake --build $BUILD --target polyhead export_multimnist)"
  mkdir -p "$OUT/data" "$OUT/polyhead" "$OUT/torch"
  "$BUILD/export_multimnist" --config "$CONFIG" $FULL --out "$OUT/data"
  for s in $SEEDS; do
    for m in ${METHODS//,/ }; do
      echo "compare_torch: polyhead $m seed $s"
      "$BUILD/polyhead" train --config "$OUT/data/run_config.json" --method "$m" --seed "$s" ${EPOCHS:+--epochs "$EPOCHS"} \
        --out "$OUT/polyhead/$m-s$s" --overwrite --quiet --no-plots
    done
    for m in ${METHODS//,/ }; do
      echo "compare_torch: torch $m seed $s"
      "$PY" scripts/reference/torch_multimnist.py --data "$OUT/data" --methods "$m" --seed "$s" --init "$INIT" --order "$ORDER" \
        --threads "$TORCH_THREADS" ${EPOCHS:+--epochs "$EPOCHS"} --json "$OUT/torch/s$s-$m.json"
    done
  done
fi

"$PY" - "$OUT" "$METHODS" "$SEEDS" <<'EOF'
import csv, json, os, sys
out, methods, seeds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split()
def polyhead_acc(m, s):
    with open(os.path.join(out, "polyhead", f"{m}-s{s}", "epochs.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r["partial"] == "0"]
    r = rows[-1]
    return [100 * float(r["test_acc_left"]), 100 * float(r["test_acc_right"])]
def torch_acc(m, s):
    with open(os.path.join(out, "torch", f"s{s}-{m}.json")) as f:
        j = json.load(f)
    return [100 * a for a in j["methods"][m][-1]["test_acc"]]
lines = ["| method | seed | Polyhead left | Polyhead right | PyTorch left | PyTorch right | Δ left | Δ right |",
         "|---|---|---|---|---|---|---|---|"]
for m in methods:
    P, T = [], []
    for s in seeds:
        p, t = polyhead_acc(m, s), torch_acc(m, s)
        P.append(p); T.append(t)
        lines.append(f"| {m} | {s} | {p[0]:.2f} | {p[1]:.2f} | {t[0]:.2f} | {t[1]:.2f} | {p[0]-t[0]:+.2f} | {p[1]-t[1]:+.2f} |")
    if len(seeds) > 1:
        pm = [sum(x[k] for x in P) / len(P) for k in range(2)]
        tm = [sum(x[k] for x in T) / len(T) for k in range(2)]
        lines.append(f"| {m} | mean | {pm[0]:.2f} | {pm[1]:.2f} | {tm[0]:.2f} | {tm[1]:.2f} | {pm[0]-tm[0]:+.2f} | {pm[1]-tm[1]:+.2f} |")
text = "\n".join(lines) + "\n"
print("\nfinal test accuracy (%), Polyhead vs PyTorch; Δ = Polyhead - PyTorch (points)\n" + text)
tmp = os.path.join(out, "table.md.tmp")
with open(tmp, "w") as f:
    f.write(text)
os.replace(tmp, os.path.join(out, "table.md"))
EOF
