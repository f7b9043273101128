"""The oracle family's passes against the gradient pass, pendulum swing-up, T = 10^5.

    python benchmarks/family.py [--horizon 100000] [--repeats 7] [--json out.json]

For each oracle (one forward and one backward pass, the compiled kernels of
:class:`moreauctl.codegen.CasadiChain`) the median wall time over ``--repeats`` calls,
measured in alternation (oracle A, B, C, ..., then again) so that a change in the machine's
load hits every oracle alike. Prints ns/stage and the ratio to the gradient oracle, and the
bound of issue 11: ``(1 + 2K)`` with ``K`` the inner steps of a line (the "paper" inner
algorithm takes 2: one Goldstein gradient step and one Barzilai-Borwein step; an affine IBP
line is one Newton step, K = 1; Newton lines count their iteration cap).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import moreauctl as mc
from moreauctl import models
from moreauctl.oracles import (AugLagOracle, GradientOracle, MoreauOracle, PenalizedOracle,
                               ProxPropOracle, ProxTargetPropOracle, TargetPropOracle)

#: label -> (factory of the oracle on a chain, K: inner steps of its costliest line)
ORACLES = {
    "gradient": (lambda ch: GradientOracle(ch), 0),
    "moreau (paper inner)": (lambda ch: MoreauOracle(ch, 1.0, 0.5), 2),
    "moreau, IBP states": (lambda ch: MoreauOracle(ch, 1.0, 0.5, rules=("mbp", "ibp", "mbp")), 2),
    "proxprop": (lambda ch: ProxPropOracle(ch, 0.01), 1),
    "auglag kappa=0.1": (lambda ch: AugLagOracle(ch, 1.0, 0.5, kappa=0.1), 2),
    "auglag kappa=0": (lambda ch: AugLagOracle(ch, 1.0, 0.5, kappa=0.0), 2),
    "prox-target-prop": (lambda ch: ProxTargetPropOracle(ch, 1.0, 1.0, kappa=1.0,
                                                         schedule="constant"), 2),
    "target-prop (newton, 3 steps)": (lambda ch: TargetPropOracle(ch, 1e-3, inner_iters=3), 3),
    "penalized": (lambda ch: PenalizedOracle(ch, 0.01, rho=0.5), 0),
}


def measure(T: int, repeats: int, seed: int = 0):
    p = models.pendulum_swingup(horizon=T, dt=10.0 / T, scheme="euler")
    ch = p.chain
    w = 0.1 * np.random.default_rng(seed).normal(size=T)
    oracles = {k: f(ch) for k, (f, _) in ORACLES.items()}
    for o in oracles.values():      # compile and warm up
        o(w)
    times = {k: [] for k in oracles}
    for _ in range(repeats):
        for k, o in oracles.items():
            t0 = time.perf_counter()
            out, _ = o(w)
            times[k].append(time.perf_counter() - t0)
            assert out.failed_stage is None, k
    med = {k: float(np.median(v)) for k, v in times.items()}
    rows = []
    for k, (_, K) in ORACLES.items():
        rows.append({"oracle": k, "ns_per_stage": 1e9 * med[k] / T,
                     "ratio_to_gradient": med[k] / med["gradient"], "K": K,
                     "bound": 1 + 2 * K, "within": med[k] / med["gradient"] <= 1 + 2 * K})
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizon", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = measure(args.horizon, args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"pendulum, T = {args.horizon}, median of {args.repeats} alternating calls, "
          f"load average {load:.2f} on {os.cpu_count()} cores")
    print("| oracle | ns/stage | / gradient | K | bound 1+2K | within |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['oracle']} | {r['ns_per_stage']:.1f} | {r['ratio_to_gradient']:.2f} | "
              f"{r['K']} | {r['bound']} | {'yes' if r['within'] else 'NO'} |")
    if args.json:
        mc._io.write_text_atomic(args.json, json.dumps({"rows": rows, "load": load}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
