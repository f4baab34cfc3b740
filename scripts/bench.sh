#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR: Polyhead's step benchmarks and, in the same run, the PyTorch anchor
# (anchors/torch_mtl_bench.py from the shared folder, or $POLYHEAD_ANCHOR), then the ratios.
# Timings are noisy on shared machines: only ratios measured side by side mean anything.
set -euo pipefail
build=${1:-build}
dev=${POLYHEAD_BENCH_DEVICE:-cpu}
out=${POLYHEAD_BENCH_OUT:-$build/bench}
mkdir -p "$out"
flags=()
[[ $dev == cuda ]] && flags+=(--cuda)
echo "== polyhead ($dev)"
"$build/polyhead_bench" "${flags[@]}" | tee "$out/polyhead.jsonl"
anchor=${POLYHEAD_ANCHOR:-}
for c in ../shared/anchors/torch_mtl_bench.py .bench/torch_mtl_bench.py; do
  [[ -z $anchor && -f $c ]] && anchor=$c
done
py=/usr/bin/python3
if [[ -n $anchor ]] && $py -c 'import torch' 2>/dev/null; then
  echo "== PyTorch anchor ($anchor, $dev)"
  $py "$anchor" "$dev" | tee "$out/torch.jsonl"
  echo "== ratios (polyhead / torch; < 1 is faster) and per-task / ew step-time ratios"
  $py - "$out/polyhead.jsonl" "$out/torch.jsonl" <<'PY'
import json, sys
ph = {(r["bench"], r["mode"]): r for r in map(json.loads, open(sys.argv[1]))}
th = {(r["bench"], r["mode"]): r for r in map(json.loads, open(sys.argv[2]))}
for (b, m), r in sorted(ph.items()):
    t = th.get((b, m))
    line = f"{b:34s} {m:8s} polyhead {r['median_ms']:9.3f} ms"
    if t: line += f"  torch {t['median_ms']:9.3f} ms  ratio {r['median_ms'] / t['median_ms']:.2f}"
    if m == "pertask" and (b, "ew") in ph:
        line += f"  pertask/ew polyhead {r['median_ms'] / ph[(b, 'ew')]['median_ms']:.2f}"
        if t and (b, "ew") in th: line += f" torch {t['median_ms'] / th[(b, 'ew')]['median_ms']:.2f}"
    print(line)
PY
else
  echo "bench: PyTorch anchor not run (needs /usr/bin/python3 with torch: scripts/install_deps.sh --bench, and the anchor script: set POLYHEAD_ANCHOR)"
fi
