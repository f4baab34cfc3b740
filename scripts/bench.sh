#!/usr/bin/env bash
# scripts/bench.sh BUILD_DIR: Polyhead's step benchmarks and, in the same run, the PyTorch anchor
# (anchors/torch_mtl_bench.py from the shared folder, or $POLYHEAD_ANCHOR), then the ratios.
# Timings are noisy on shared machines: only ratios measured side by side mean anything.
# On CUDA the bench also runs the CUDA-graph ew step (mode ew-graph, compared with torch's ew), and
# the anchor runs under scripts/torch_peak.py, which adds torch's peak device memory to its lines.
set -euo pipefail
build=${1:-build}
# Device: POLYHEAD_BENCH_DEVICE (cpu|cuda); by default cuda when the build has the CUDA backend
# and nvidia-smi sees a GPU.
dev=${POLYHEAD_BENCH_DEVICE:-}
if [[ -z $dev ]]; then
  dev=cpu
  if [[ -d $build/engine/cuda ]] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then dev=cuda; fi
fi
out=${POLYHEAD_BENCH_OUT:-$build/bench}
mkdir -p "$out"
flags=()
[[ $dev == cuda ]] && flags+=(--cuda --graph)
# extra polyhead_bench flags, e.g. POLYHEAD_BENCH_FLAGS=--profile
read -r -a extra <<< "${POLYHEAD_BENCH_FLAGS:-}"
flags+=("${extra[@]}")
echo "== polyhead ($dev)"
"$build/polyhead_bench" "${flags[@]}" | tee "$out/polyhead.jsonl"
if [[ $dev == cuda ]]; then
  echo "== polyhead with TF32 (sgemm and B3; the fp32 rows above are the comparison with the anchor)"
  "$build/polyhead_bench" --cuda --tf32 --graph --only sgemm | tee "$out/polyhead_tf32.jsonl"
  "$build/polyhead_bench" --cuda --tf32 --graph --only B3 | tee -a "$out/polyhead_tf32.jsonl"
fi
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
  if [[ $dev == cuda ]]; then
    $py "$(dirname "$0")/torch_peak.py" "$anchor" "$dev" | tee "$out/torch.jsonl"
  else
    $py "$anchor" "$dev" | tee "$out/torch.jsonl"
  fi
  echo "== ratios (polyhead / torch; < 1 is faster) and per-task / ew step-time ratios"
  $py - "$out/polyhead.jsonl" "$out/torch.jsonl" "$out/polyhead_tf32.jsonl" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tf32 = [json.loads(l) for l in open(sys.argv[3]) if l.startswith("{")] if os.path.exists(sys.argv[3]) else []
ph = {(r["bench"], r["mode"]): r for r in rows if "median_ms" in r}
for r in rows:
    if "tflops" in r: print(f"measured {r['bench']} ({r['mode']}, {r['device']}): {r['tflops']:.2f} TFLOP/s")
    if "error" in r: print(f"FAILED {r['bench']} {r['mode']}: {r['error']}")
th = {(r["bench"], r["mode"]): r for r in (json.loads(l) for l in open(sys.argv[2]) if l.startswith("{"))}
for (b, m), r in sorted(ph.items()):
    t = th.get((b, "ew" if m == "ew-graph" else m))
    line = f"{b:34s} {m:8s} polyhead {r['median_ms']:9.3f} ms"
    if t: line += f"  torch {t['median_ms']:9.3f} ms  ratio {r['median_ms'] / t['median_ms']:.2f}"
    if t and r.get("peak_device_mb", -1) > 0 and t.get("peak_device_mb"):
        line += f"  peak MB {r['peak_device_mb']:.0f} vs {t['peak_device_mb']:.0f} ({r['peak_device_mb'] / t['peak_device_mb']:.2f})"
    if m == "pertask" and (b, "ew") in ph:
        line += f"  pertask/ew polyhead {r['median_ms'] / ph[(b, 'ew')]['median_ms']:.2f}"
        if t and (b, "ew") in th: line += f" torch {t['median_ms'] / th[(b, 'ew')]['median_ms']:.2f}"
    print(line)
# B3's GEMM work per step (forward 2*MACs of the linears, attention scores and values, heads;
# backward twice that) against the measured sgemm rate of the same run.
N, d, T, B, H, V, K, L = 32 * 256, 384, 256, 32, 6, 256, 4, 6
fwd = L * (2 * N * (d * 3 * d + d * d + 2 * d * 4 * d) + 2 * 2 * B * H * T * T * (d // H)) + 2 * N * d * V * K
def b3_rates(rs, label):
    pk = next((r["tflops"] for r in rs if "tflops" in r), None)
    for r in rs:
        if r.get("bench", "").startswith("B3") and r.get("mode") in ("ew", "ew-graph") and "median_ms" in r:
            rate = 3 * fwd / (r["median_ms"] * 1e-3) / 1e12
            extra = f" = {100 * rate / pk:.0f}% of the measured sgemm {pk:.1f} TFLOP/s" if pk else ""
            print(f"B3 {r['mode']} ({label}): {r['median_ms']:.3f} ms, {3 * fwd / 1e9:.0f} GFLOP of GEMM per step at {rate:.1f} TFLOP/s{extra}")
b3_rates(rows, "fp32")
if tf32: b3_rates(tf32, "TF32")
PY
else
  echo "bench: PyTorch anchor not run (needs a python3 with torch: scripts/install_deps.sh --bench, and the anchor script: set POLYHEAD_ANCHOR)"
fi
