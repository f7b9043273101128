"""Networks: seconds per epoch of moreauctl's gradient and Moreau passes against PyTorch CPU.

    python benchmarks/nn_bench.py                       # all cases, 3 alternating repeats
    python benchmarks/nn_bench.py --cases digits-mlp --repeats 5 --out results/nn_bench
    python benchmarks/nn_bench.py --quick               # seconds (smoke test)

Both sides run pinned to one thread (``torch.set_num_threads(1)``; threadpoolctl limits
numpy's BLAS to 1 thread), on the same architecture, batch size (32), dtype, weights and
mini-batches, in the same process, alternating (moreauctl, PyTorch, moreauctl, ...). Each
number is the median over repeats of the time of ``--batches`` mini-batches, scaled to one
epoch of the data set's training size (1347 digits, 60000 Fashion-MNIST images).

Columns
-------
gradient pass
    Forward + backward of every batch: moreauctl's gradient oracle (the ``Chain`` passes
    over ``nn`` stages); PyTorch's ``loss.backward()`` (parameter gradients only).
training epoch
    The same plus the update: ``moreauctl.minimize`` with SGD (all its bookkeeping:
    history, divergence checks); PyTorch's ``zero_grad``/``backward``/``optim.SGD.step``.
Moreau pass
    moreauctl's Moreau oracle (Algo 2, gamma = 0.5) with the paper's inner algorithm (one
    Goldstein gradient step + one Barzilai-Borwein step) and with ``K`` plain gradient
    steps (``inner="gd"``, ``inner_tol=0``); D.7 counts ``1 + 2K`` gradient passes.

Targets (issue 10): gradient epoch <= 1.0x PyTorch's for the MLPs, <= 2.0x for the ConvNet;
Moreau epoch with K inner steps <= (1 + 2K)x our gradient epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

CASES = {
    "digits-mlp": dict(dataset="digits", arch="mlp", hidden=[64], epoch=1347),
    "fashion-mlp": dict(dataset="fashion-mnist", arch="mlp", hidden=[500, 300, 100], epoch=60000),
    "digits-convnet": dict(dataset="digits", arch="convnet", hidden=[], epoch=1347),
    "fashion-convnet": dict(dataset="fashion-mnist", arch="convnet", hidden=[], epoch=60000),
}
INNER_K = (1, 2, 4)


def _task(case, dtype, n_batches, batch):
    from moreauctl import datasets, nn
    c = CASES[case]
    n = n_batches * batch
    kw = {} if c["dataset"] == "digits" else {"n_train": n, "n_test": 10}
    if c["dataset"] != "digits" and not os.path.isdir(datasets.FASHION_MNIST_DIR):
        return None
    t = nn.make_task(dataset=c["dataset"], arch=c["arch"], hidden=c["hidden"], batch_size=batch,
                     dtype=dtype, **kw)
    return t


def _batches(task, n_batches):
    out = []
    epoch = 0
    while len(out) < n_batches:     # digits: fewer batches per epoch than asked, take more
        out += list(task.problem.batches(0)(epoch))
        epoch += 1
    return out[:n_batches]


class Torch:
    """The same network in PyTorch (functional, from moreauctl's stages and weights)."""

    def __init__(self, net, params, dtype):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        self.net = net
        self.dt = getattr(torch, dtype)
        self.params = [[torch.tensor(a, dtype=self.dt, requires_grad=True) for a in p]
                       for p in params]
        self.flat = [a for p in self.params for a in p]

    def data(self, batches):
        t = self.torch
        return [(t.tensor(X.reshape((X.shape[0],) + self.net.input_shape), dtype=self.dt),
                 t.tensor(y)) for X, y in batches]

    def loss(self, X, y):
        F = self.F
        x = X
        for st, p in zip(self.net.stages, self.params):
            kind = type(st).__name__
            if kind == "Dense":
                x = F.linear(x, *p)
            elif kind == "Conv2d":
                x = F.conv2d(x, *p, stride=(st.sh, st.sw), padding=(st.ph, st.pw))
            elif kind == "MaxPool2d":
                x = F.max_pool2d(x, (st.kh, st.kw), (st.sh, st.sw))
                continue
            elif kind == "Flatten":
                x = self.torch.flatten(x, 1)
                continue
            if st.activation.name == "relu":
                x = F.relu(x)
        return F.cross_entropy(x, y)

    def grad_pass(self, data):
        for X, y in data:
            for a in self.flat:
                a.grad = None
            self.loss(X, y).backward()

    def train(self, data, lr):
        opt = self.torch.optim.SGD(self.flat, lr=lr)
        for X, y in data:
            opt.zero_grad()
            self.loss(X, y).backward()
            opt.step()


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_case(case, dtype, n_batches, repeats, batch=32, moreau=True, torch_ok=True):
    import moreauctl as mc
    from moreauctl.oracles import GradientOracle, MoreauOracle
    from moreauctl.optimizers import sgd
    task = _task(case, dtype, n_batches, batch)
    if task is None:
        return {"case": case, "dtype": dtype, "status": "skipped: Fashion-MNIST not installed"}
    prob, ch = task.problem, task.problem.chain
    params = prob.init_params()
    w = ch.check_params(params)
    batches = _batches(task, n_batches)
    scale = CASES[case]["epoch"] / (batch * n_batches)   # batches measured -> one epoch
    go = GradientOracle(ch)

    def ours_grad():
        for d in batches:
            go(w, (), d)

    def ours_train():
        mc.minimize(ch, go, sgd(0.01), w, batches=lambda e: batches, epochs=1,
                    eval_data=batches[0], verbose=False)

    cols = {"ours_grad": ours_grad, "ours_train": ours_train}
    if torch_ok:
        tq = Torch(task.net, params, dtype)
        tdata = tq.data(batches)
        cols["torch_grad"] = lambda: tq.grad_pass(tdata)
        cols["torch_train"] = lambda: tq.train(tdata, 0.01)
    if moreau:
        for name, opts in [("moreau_paper", {"inner": "paper"})] + [
                (f"moreau_gd{K}", {"inner": "gd", "inner_iters": K, "inner_tol": 0.0})
                for K in INNER_K]:
            mo = MoreauOracle(ch, alpha=0.5, gamma=0.5, **opts)
            cols[name] = (lambda mo=mo: [mo(w, (), d) for d in batches])
    times = {k: [] for k in cols}
    for fn in cols.values():   # warm-up: JIT compilation, torch's first-call set-up
        fn()
    for _ in range(repeats):
        for k, fn in cols.items():          # alternating within every repeat
            times[k].append(_timed(fn) * scale)
    row = {"case": case, "dtype": dtype, "status": "ok", "batches": n_batches, "batch": batch,
           "epoch_samples": CASES[case]["epoch"], "n_params": int(ch.layout.size),
           **{k + "_runs": v for k, v in times.items()},
           **{k: statistics.median(v) for k, v in times.items()}}
    if torch_ok:
        row["grad_ratio"] = row["ours_grad"] / row["torch_grad"]
        row["train_ratio"] = row["ours_train"] / row["torch_train"]
    if moreau:
        row["moreau_paper_ratio"] = row["moreau_paper"] / row["ours_grad"]
        for K in INNER_K:
            row[f"moreau_gd{K}_ratio"] = row[f"moreau_gd{K}"] / row["ours_grad"]
    return row


def markdown(rows, meta) -> str:
    lines = [f"Generated by `benchmarks/nn_bench.py` on {meta['date']}; {meta['machine']}; load "
             f"average {meta['load_start']} at start, {meta['load_end']} at end; "
             f"{meta['versions']}. One thread each; medians of {meta['repeats']} alternating "
             "repeats; seconds per epoch (measured batches scaled to the epoch).", "",
             "| case | dtype | params | gradient pass: moreauctl / PyTorch (ratio) | "
             "training epoch: moreauctl / PyTorch (ratio) | Moreau paper inner (x our gradient) | "
             + " | ".join(f"Moreau gd K={K} (x; D.7 bound {1 + 2 * K})" for K in INNER_K) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(INNER_K)]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"| {r['case']} | {r['dtype']} | {r['status']} |")
            continue
        g = (f"{r['ours_grad']:.3g} / {r['torch_grad']:.3g} ({r['grad_ratio']:.2f})"
             if "torch_grad" in r else f"{r['ours_grad']:.3g} / -")
        tr = (f"{r['ours_train']:.3g} / {r['torch_train']:.3g} ({r['train_ratio']:.2f})"
              if "torch_train" in r else f"{r['ours_train']:.3g} / -")
        mo = (f"{r['moreau_paper']:.3g} ({r['moreau_paper_ratio']:.2f})"
              if "moreau_paper" in r else "-")
        ks = " | ".join(f"{r[f'moreau_gd{K}']:.3g} ({r[f'moreau_gd{K}_ratio']:.2f})"
                        if f"moreau_gd{K}" in r else "-" for K in INNER_K)
        lines.append(f"| {r['case']} | {r['dtype']} | {r['n_params']} | {g} | {tr} | {mo} | {ks} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--batches", type=int, default=None,
                    help="mini-batches timed per repeat (default: 43 for digits = one epoch, "
                         "100 for the MLP, 20 for the ConvNet on Fashion-MNIST)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-moreau", action="store_true")
    ap.add_argument("--quick", action="store_true", help="2 batches, 1 repeat (smoke test)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits
    try:
        import torch
        torch.set_num_threads(1)
        torch_ok, tv = True, f"torch {torch.__version__}"
    except ImportError:
        torch_ok, tv = False, "torch not installed (PyTorch columns skipped)"
    import moreauctl
    defaults = {"digits-mlp": 43, "fashion-mlp": 100, "digits-convnet": 43,
                "fashion-convnet": 20}
    rows = []
    load0 = os.getloadavg()[0]
    with threadpool_limits(limits=1, user_api="blas"):
        for case in args.cases.split(","):
            if case not in CASES:
                raise SystemExit(f"unknown case {case!r}; choose from {list(CASES)}")
            for dtype in args.dtypes.split(","):
                nb = 2 if args.quick else (args.batches or defaults[case])
                r = run_case(case, dtype, nb, 1 if args.quick else args.repeats,
                             moreau=not args.no_moreau, torch_ok=torch_ok)
                rows.append(r)
                if not args.quiet:
                    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                      for k, v in r.items() if not k.endswith("_runs")}),
                          flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.platform()}, {os.cpu_count()} cores",
            "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
            "versions": f"moreauctl {moreauctl.__version__}, numpy {np.__version__}, {tv}",
            "repeats": 1 if args.quick else args.repeats}
    md = markdown(rows, meta)
    if not args.quiet:
        print(md)
    if args.out:
        from moreauctl._io import write_json_atomic, write_text_atomic
        os.makedirs(args.out, exist_ok=True)
        write_json_atomic(os.path.join(args.out, "nn_results.json"), {"meta": meta, "rows": rows})
        write_text_atomic(os.path.join(args.out, "nn_results.md"), md + "\n")
    return {"meta": meta, "rows": rows, "markdown": md}


if __name__ == "__main__":
    main()
    sys.exit(0)
