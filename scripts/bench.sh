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
py=${POLYHEAD_PYTHON:-}
for c in python3 /usr/bin/python3; do
  [[ -z $py ]] && $c -c 'import torch' 2>/dev/null && py=$c
done
if [[ -n $anchor && -n $py ]]; then
  echo "== PyTorch anchor ($anchor, $dev)"
  $py "$anchor" "$dev" | tee "$out/torch.jsonl"
  echo "== ratios (polyhead / torch; < 1 is faster) and per-task / ew step-time ratios"
  $py - "$out/polyhead.jsonl" "$out/torch.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ph = {(r["bench"], r["mode"]): r for r in rows if "median_ms" in r}
for r in rows:
    if "tflops" in r: print(f"measured {r['bench']} ({r['mode']}, {r['device']}): {r['tflops']:.2f} TFLOP/s")
th = {(r["bench"], r["mode"]): r for r in (json.loads(l) for l in open(sys.argv[2]) if l.startswith("{"))}
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
  echo "bench: PyTorch anchor not run (needs a python3 with torch: scripts/install_deps.sh --bench, and the anchor script: set POLYHEAD_ANCHOR)"
fi
