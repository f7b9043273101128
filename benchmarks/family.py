"""The oracle family's passes against the gradient pass, pendulum swing-up, T = 10^5.

    python benchmarks/family.py [--horizon 100000] [--repeats 7] [--json out.json]

For each oracle (one forward and one backward pass, the compiled kernels of
:class:`moreauctl.codegen.CasadiChain`) the median and the minimum wall time over
``--repeats`` calls, measured in alternation (oracle A, B, C, ..., then again) so that a
change in the machine's load hits every oracle alike; on a loaded machine the minimum is the
steadier estimate (ratios are formed from the minima). Prints ns/stage and the ratio to the gradient oracle, and the
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (benchmarks/peers.py: the suite's problems and controls)

import moreauctl as mc
from moreauctl.oracles import (AugLagOracle, GradientOracle, MoreauOracle, PenalizedOracle,
                               ProxPropOracle, ProxTargetPropOracle, TargetPropOracle)

#: The Moreau family's schedule: gamma = 0.5 per second of simulated time (the suite's
#: choice, benchmarks/peers.py): a per-stage 0.5 would send the costates to exactly 0 after
#: ~1000 stages, where every line takes its cheap exit.
G = dict(gamma=0.5, gamma_time=1.0)

#: label -> (factory of the oracle on a chain, K: inner steps of its costliest line)
ORACLES = {
    "gradient": (lambda ch: GradientOracle(ch), 0),
    "moreau (paper inner)": (lambda ch: MoreauOracle(ch, 1.0, **G), 2),
    "moreau, IBP states": (lambda ch: MoreauOracle(ch, 1.0, rules=("mbp", "ibp", "mbp"), **G), 2),
    "proxprop": (lambda ch: ProxPropOracle(ch, 0.01), 1),
    "auglag kappa=0.1": (lambda ch: AugLagOracle(ch, 1.0, kappa=0.1, **G), 2),
    "auglag kappa=0": (lambda ch: AugLagOracle(ch, 1.0, kappa=0.0, **G), 2),
    "prox-target-prop": (lambda ch: ProxTargetPropOracle(ch, 1.0, kappa=1.0, **G), 2),
    "target-prop (newton, 3 steps)": (lambda ch: TargetPropOracle(ch, 1e-3, inner_iters=3), 3),
    "penalized": (lambda ch: PenalizedOracle(ch, 0.01, rho=0.5 ** 1e-4, tau=1.0), 0),
}


def measure(T: int, repeats: int, seed: int = 0):
    p = peers.make_problem("pendulum", T)          # 10 s, explicit Euler, dt = 10 / T
    ch = p.chain
    w = peers.controls(p, seed).ravel()
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
    low = {k: float(np.min(v)) for k, v in times.items()}
    rows = []
    for k, (_, K) in ORACLES.items():
        r = low[k] / low["gradient"]
        rows.append({"oracle": k, "ns_per_stage_median": 1e9 * med[k] / T,
                     "ns_per_stage_min": 1e9 * low[k] / T, "ratio_to_gradient": r, "K": K,
                     "bound": 1 + 2 * K, "within": r <= 1 + 2 * K})
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
    print("| oracle | ns/stage (min) | ns/stage (median) | / gradient (min) | K | bound 1+2K | "
          "within |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['oracle']} | {r['ns_per_stage_min']:.1f} | {r['ns_per_stage_median']:.1f} "
              f"| {r['ratio_to_gradient']:.2f} | {r['K']} | {r['bound']} | "
              f"{'yes' if r['within'] else 'NO'} |")
    if args.json:
        mc._io.write_text_atomic(args.json, json.dumps({"rows": rows, "load": load}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
