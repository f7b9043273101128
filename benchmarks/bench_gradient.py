"""Gradient and Moreau passes on the pendulum at long horizons, against CasADi's SX VM.

Measured in the same run:
- moreauctl: one objective + gradient (forward + backward kernels), and one Moreau
  direction (forward + Moreau backward, the "paper" inner algorithm);
- CasADi: the reverse-mode gradient of the whole rollout as one SX Function, evaluated by
  CasADi's virtual machine on a ready DM (no conversion cost), plus the time to build it.

Prints per-stage nanoseconds and ratios, and writes benchmarks/results_gradient.json.
Usage: python benchmarks/bench_gradient.py [--horizons 1000,100000] [--repeats 5] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import casadi as ca
import numpy as np

import moreauctl as mc
from moreauctl import models
from moreauctl.oracles import GradientOracle, MoreauOracle


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench(T: int, repeats: int, casadi_max_T: int):
    # fixed total time (10 s) so the long chain stays well conditioned
    p = models.pendulum_swingup(horizon=T, dt=10.0 / T)
    w = np.random.default_rng(0).normal(scale=0.1, size=(T, 1))
    grad = GradientOracle(p.chain)
    mor = MoreauOracle(p.chain, alpha=1.0, gamma=0.99)
    grad(w), mor(w)  # JIT / cache load outside the timing
    row = {"T": T}
    row["moreauctl_grad_s"] = _median_time(lambda: grad(w), repeats)
    row["moreauctl_moreau_s"] = _median_time(lambda: mor(w), repeats)
    ch = p.chain
    X = ch.forward(w)[1]
    G = np.empty_like(w)
    lam0 = np.empty(2)
    row["moreauctl_backward_grad_s"] = _median_time(lambda: ch.kernels.backward_gradient(w, X, G, lam0), repeats)
    resid = np.empty((T + 1, 2))
    row["moreauctl_backward_moreau_s"] = _median_time(
        lambda: ch.kernels.backward_moreau(w, X, mor.gam_h, mor.gam, mor.alp, mor.rules, 0,
                                           mor.inner_iters, mor.inner_tol, False, G, lam0, resid),
        repeats)
    row["moreau_over_grad_backward"] = row["moreauctl_backward_moreau_s"] / row["moreauctl_backward_grad_s"]
    row["ns_per_stage_grad"] = 1e9 * row["moreauctl_grad_s"] / T
    if T <= casadi_max_T:
        t = time.perf_counter()
        J = p.casadi_rollout()
        W = ca.SX.sym("W", T)
        gJ = ca.Function("gJ", [W], [J(W), ca.gradient(J(W), W)])
        wdm = ca.DM(w.ravel())
        ref = np.asarray(gJ(wdm)[1]).ravel()
        row["casadi_build_plus_first_s"] = time.perf_counter() - t
        row["casadi_sx_vm_grad_s"] = _median_time(lambda: gJ(wdm), repeats)
        row["ratio_casadi_over_moreauctl"] = row["casadi_sx_vm_grad_s"] / row["moreauctl_grad_s"]
        row["max_rel_diff_vs_casadi"] = mc.relative_error(grad(w).gradient.ravel(), ref)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizons", default="1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--casadi-max-T", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results_gradient.json"))
    a = ap.parse_args(argv)
    rows = []
    for T in (int(s) for s in a.horizons.split(",")):
        r = bench(T, a.repeats, a.casadi_max_T)
        rows.append(r)
        msg = (f"T={T:>7d}  grad {r['moreauctl_grad_s']*1e3:9.3f} ms ({r['ns_per_stage_grad']:.1f} ns/stage)"
               f"  moreau {r['moreauctl_moreau_s']*1e3:9.3f} ms  backward moreau/grad "
               f"{r['moreau_over_grad_backward']:.2f}x")
        if "casadi_sx_vm_grad_s" in r:
            msg += (f"  casadi SX VM {r['casadi_sx_vm_grad_s']*1e3:9.3f} ms -> "
                    f"{r['ratio_casadi_over_moreauctl']:.1f}x slower (build+first "
                    f"{r['casadi_build_plus_first_s']:.2f} s)")
        print(msg, flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "casadi": ca.__version__,
            "numba": __import__("numba").__version__, "repeats": a.repeats}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    os.replace(tmp, a.out)
    print(f"wrote {a.out}")
    return rows


if __name__ == "__main__":
    main()
