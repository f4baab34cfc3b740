"""scripts/torch_peak.py ANCHOR DEVICE [args...]: runs the PyTorch anchor script unchanged and adds
each benchmark's peak device memory to its JSONL line ("peak_device_mb": torch.cuda.
max_memory_allocated). The peak is reset when the benchmark creates its optimizer (the anchor's
bench() does so right after moving the model to the device, once the previous benchmark's tensors
are gone), as polyhead_bench resets its peak at the start of each benchmark; it is read when the
anchor prints the benchmark's line, which this wrapper intercepts."""
import builtins
import json
import runpy
import sys

if len(sys.argv) < 2:
    sys.exit("usage: torch_peak.py ANCHOR [cpu|cuda] [args...]")
anchor = sys.argv[1]
sys.argv = [anchor] + sys.argv[2:]
import torch  # noqa: E402

cuda = torch.cuda.is_available() and "cuda" in sys.argv[1:2]
_print = builtins.print


def _peak_print(*args, **kw):
    if cuda and len(args) == 1 and isinstance(args[0], str) and args[0].startswith("{"):
        try:
            row = json.loads(args[0])
        except ValueError:
            row = None
        if isinstance(row, dict) and "bench" in row:
            torch.cuda.synchronize()
            row["peak_device_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            args = (json.dumps(row),)
    _print(*args, **kw)


_sgd_init = torch.optim.SGD.__init__


def _sgd_init_resetting_peak(self, *a, **kw):
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    _sgd_init(self, *a, **kw)


builtins.print = _peak_print
torch.optim.SGD.__init__ = _sgd_init_resetting_peak
if cuda:
    torch.cuda.reset_peak_memory_stats()
runpy.run_path(anchor, run_name="__main__")
