#!/usr/bin/python3
"""scripts/reference/torch_multimnist.py: a PyTorch reference of Polyhead's MultiMNIST run.

Trains the LeNet hard-parameter-sharing model of mtl/zoo.h (lenet_hps) on the exact arrays that
Polyhead trains on (written by build/export_multimnist), with the optimizer, learning rate, batch
size and epochs of the same resolved run configuration, for the methods EW and PCGrad, and prints
the per-task test accuracy after every epoch. Used by scripts/reference/compare_torch.sh to check
that an independent implementation lands where Polyhead does.

    /usr/bin/python3 scripts/reference/torch_multimnist.py --data DIR [--methods ew,pcgrad]
        [--seed S] [--init torch|polyhead] [--order torch|polyhead] [--threads N] [--json FILE]

DIR holds multimnist.safetensors, run_config.json, init.safetensors and order.safetensors
(export_multimnist --out).

The model (as lenet_hps): trunk conv 1->10 k9, maxpool 2, relu, conv 10->20 k5, maxpool 2, relu,
flatten, fc 500->50, relu; per task a head fc 50->50, relu, fc 50->10. Loss: mean cross-entropy per
task. PyTorch's default initialisation (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
biases) is the distribution Polyhead's Conv2d / Linear use; --init polyhead starts instead from
Polyhead's own initial parameters (init.safetensors), which removes initialisation as a cause of
any difference. Data order: a torch.randperm per epoch from a generator seeded with the seed (its
own shuffling, not Polyhead's), the last batch kept (drop_last off), as Polyhead's loader does;
--order polyhead takes instead the exact example order of Polyhead's loader (order.safetensors, for
the exported config's seed). With --init polyhead --order polyhead both sides see the same
initial parameters and the same batches, so only floating-point arithmetic (and, for PCGrad, the
random projection order) differs.

Methods:
  ew      the sum of the task losses (LibMTL EW; Polyhead "ew": weights 1)
  pcgrad  Yu et al. 2020 as in LibMTL: per-task gradients of the shared (trunk) parameters; for
          each task i, in a fresh random order of ALL tasks j (i included), the projected
          gradient p_i loses its component along g_j when p_i . g_j < 0, dividing by
          ||g_j||^2 + 1e-8; the trunk gets sum_i p_i, each head its own task's gradient.
"""
import argparse
import json
import os
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8}


def read_safetensors(path):
    """The tensors (as numpy arrays) and metadata of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit(f"torch_multimnist: {path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        sys.exit(f"torch_multimnist: {path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, h in header.items():
        if h["dtype"] not in DTYPES:
            sys.exit(f"torch_multimnist: {path}: tensor '{name}' has unsupported dtype {h['dtype']}")
        b, e = h["data_offsets"]
        a = np.frombuffer(raw, dtype=DTYPES[h["dtype"]], count=(e - b) // np.dtype(DTYPES[h["dtype"]]).itemsize,
                          offset=base + b)
        out[name] = a.reshape(h["shape"])
    return out, meta


class LeNetHPS(nn.Module):
    def __init__(self, tasks=2, classes=10):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 10, 9), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(5 * 5 * 20, 50), nn.ReLU())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, classes)) for _ in range(tasks))

    def forward(self, x):
        z = self.trunk(x)
        return [h(z) for h in self.heads]


def load_polyhead_init(model, path):
    tensors, meta = read_safetensors(path)
    names = meta.get("names", "").split(",")
    mine = list(model.named_parameters())
    if len(tensors) != len(mine):
        sys.exit(f"torch_multimnist: {path} holds {len(tensors)} parameters, the model has {len(mine)}")
    with torch.no_grad():
        for i, (name, p) in enumerate(mine):
            a = tensors[f"p{i:02d}"]
            if tuple(a.shape) != tuple(p.shape):
                sys.exit(f"torch_multimnist: parameter {i} ({name} here, {names[i] if i < len(names) else '?'} in "
                         f"Polyhead): shape {tuple(a.shape)} vs {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.array(a)))


def pcgrad_combine(grads, rng, eps=1e-8):
    """LibMTL PCGrad on the rows of grads (K, P): sum_i p_i."""
    K = grads.shape[0]
    pc = grads.clone()
    sq = (grads * grads).sum(1)
    for i in range(K):
        order = list(range(K))
        rng.shuffle(order)
        for j in order:
            d = torch.dot(pc[i], grads[j])
            if d < 0:
                pc[i] -= d / (sq[j] + eps) * grads[j]
    return pc.sum(0)


def evaluate(model, x, ys, batch=1000):
    model.eval()
    K = len(ys)
    correct = [0] * K
    loss = [0.0] * K
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            outs = model(x[s:s + batch])
            for k in range(K):
                y = ys[k][s:s + batch]
                loss[k] += F.cross_entropy(outs[k], y, reduction="sum").item()
                correct[k] += (outs[k].argmax(1) == y).sum().item()
    model.train()
    n = x.shape[0]
    return [c / n for c in correct], [l / n for l in loss]


def train(method, cfg, data, seed, init, init_path, order=None, max_steps=0, step_log=None):
    torch.manual_seed(seed)
    model = LeNetHPS(2, 10)
    if init == "polyhead":
        load_polyhead_init(model, init_path)
    wd = cfg["weight_decay"] if cfg["weight_decay"] >= 0 else (0.01 if cfg["optimizer"] == "adamw" else 0.0)
    if cfg["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=wd)
    elif cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=wd)
    shared = list(model.trunk.parameters())
    xtr, ytr = data["train_x"], [data["train_y0"], data["train_y1"]]
    xte, yte = data["test_x"], [data["test_y0"], data["test_y1"]]
    n, bs = xtr.shape[0], cfg["batch_size"]
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    rows = []
    global_step = 0
    for epoch in range(cfg["epochs"]):
        if max_steps and global_step >= max_steps:
            break
        t0 = time.time()
        perm = torch.randperm(n, generator=gen) if order is None else order[epoch]
        sums, steps = [0.0, 0.0], 0
        for s in range(0, n, bs):
            if max_steps and global_step >= max_steps:
                break
            idx = perm[s:s + bs]
            x = xtr[idx]
            outs = model(x)
            losses = [F.cross_entropy(outs[k], ytr[k][idx]) for k in range(2)]
            opt.zero_grad()
            if method == "ew":
                (losses[0] + losses[1]).backward()
            elif method == "pcgrad":
                rows_g = []
                for k in range(2):
                    params = shared + list(model.heads[k].parameters())
                    g = torch.autograd.grad(losses[k], params, retain_graph=(k == 0))
                    rows_g.append(torch.cat([t.reshape(-1) for t in g[:len(shared)]]))
                    for p, gp in zip(model.heads[k].parameters(), g[len(shared):]):
                        p.grad = gp.detach().clone()
                d = pcgrad_combine(torch.stack(rows_g), rng)
                off = 0
                for p in shared:
                    p.grad = d[off:off + p.numel()].view_as(p).clone()
                    off += p.numel()
            else:
                sys.exit(f"torch_multimnist: unknown method '{method}' (valid: ew, pcgrad)")
            opt.step()
            sums[0] += losses[0].item()
            sums[1] += losses[1].item()
            steps += 1
            global_step += 1
            if step_log is not None:
                step_log.append([losses[0].item(), losses[1].item()])
        acc, tl = evaluate(model, xte, yte)
        row = {"epoch": epoch + 1, "seconds": time.time() - t0, "train_loss": [s / steps for s in sums],
               "test_acc": acc, "test_loss": tl}
        rows.append(row)
        print(f"  {method} seed {seed} epoch {epoch + 1}/{cfg['epochs']} ({row['seconds']:.0f} s): test acc "
              f"left {100 * acc[0]:.2f}% right {100 * acc[1]:.2f}%  test loss {tl[0]:.4f} {tl[1]:.4f}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="folder written by export_multimnist --out")
    ap.add_argument("--methods", default="ew,pcgrad")
    ap.add_argument("--seed", type=int, default=None, help="default: the run config's seed")
    ap.add_argument("--init", choices=["torch", "polyhead"], default="torch")
    ap.add_argument("--order", choices=["torch", "polyhead"], default="torch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="override the run config's epochs")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (diagnostics)")
    ap.add_argument("--json", default=None, help="write the per-epoch results (and per-step losses) here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.data, "run_config.json")) as f:
        cfg = json.load(f)
    if a.epochs:
        cfg["epochs"] = a.epochs
    seed = cfg["seed"] if a.seed is None else a.seed
    arrays, meta = read_safetensors(os.path.join(a.data, "multimnist.safetensors"))
    data = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    print(f"torch_multimnist: torch {torch.__version__}, {meta.get('description', '?')}; lenet-hps, "
          f"{cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['epochs']} epoch(s), seed {seed}, "
          f"init {a.init}, order {a.order}", flush=True)
    if meta.get("synthetic") == "1":
        print("WARNING: these arrays were made from SYNTHETIC digits, not MNIST", flush=True)
    order = None
    if a.order == "polyhead":
        o, ometa = read_safetensors(os.path.join(a.data, "order.safetensors"))
        if int(ometa.get("seed", -1)) != seed:
            sys.exit(f"torch_multimnist: order.safetensors is for seed {ometa.get('seed')}, not {seed}")
        if len(o) < cfg["epochs"]:
            sys.exit(f"torch_multimnist: order.safetensors holds {len(o)} epochs, the run needs {cfg['epochs']}")
        order = [torch.from_numpy(np.array(o[f"e{e:02d}"])) for e in range(cfg["epochs"])]
    if a.init == "polyhead":
        _, imeta = read_safetensors(os.path.join(a.data, "init.safetensors"))
        if int(imeta.get("seed", -1)) != seed:
            sys.exit(f"torch_multimnist: init.safetensors is for seed {imeta.get('seed')}, not {seed}")
    results = {"seed": seed, "init": a.init, "order": a.order, "config": cfg, "methods": {}}
    for m in a.methods.split(","):
        log = []
        results["methods"][m] = train(m.strip(), cfg, data, seed, a.init, os.path.join(a.data, "init.safetensors"), order,
                                      a.max_steps, log)
        results.setdefault("step_losses", {})[m] = log
    for m, rows in results["methods"].items():
        acc = rows[-1]["test_acc"]
        print(f"{m:8s} left {100 * acc[0]:.2f}%  right {100 * acc[1]:.2f}%")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, a.json)


if __name__ == "__main__":
    main()
