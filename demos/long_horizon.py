"""Beyond the paper: the pendulum swing-up refined from T = 10^2 to 10^4 stages.

The physical time is fixed (``--total-time``, 10 s by default: the paper's T = 100 at
dt = 0.1) and discretized with RK4, so ``dt = total_time / T`` shrinks as ``T`` grows and
the continuous-time problem stays the same. For each ``T`` every method's step is chosen by
a grid search, and the best cost is compared with IPOPT's optimum on the same
discretization (normalized gap ``(c - c*) / (c_0 - c*)``).

Methods: GD; GD with Moreau GD's geometric stage weights and Moreau GD, both with a fixed
``gamma = 0.5`` per *stage* (the paper's setting, whose weights ``gamma^(T-t+1)`` then cover
a shorter and shorter stretch of time as ``dt`` shrinks); and both again with ``gamma``
defined per unit of *time* (``gamma = 0.5`` per 0.1 s, i.e. ``0.5 ** (dt / 0.1)`` per stage).

    python demos/long_horizon.py --out results/long_horizon            # T = 100, 1000, 10000
    python demos/long_horizon.py --horizons 100,200 --iters 5 --steps -2:2   # seconds
"""
from __future__ import annotations

import argparse
import sys

from moreauctl.cli.args import add_study_arguments, nonnegative_int, positive_float
from moreauctl.cli.sweep import print_summary
from moreauctl.studies import horizon_sweep, powers_of_two


def methods(grid, gamma=0.5, ref_dt=0.1):
    """The compared methods; ``grid`` is the step grid of every method."""
    return {
        "gd": {"method": "gd", "steps": grid},
        "gd-geometric": {"method": "gd", "stage_weights": "geometric", "gamma": gamma,
                         "steps": grid},
        "moreau-gd": {"method": "moreau-gd", "gamma": gamma, "steps": grid},
        "gd-geometric, gamma per 0.1 s": {"method": "gd", "stage_weights": "geometric",
                                          "gamma": gamma, "gamma_ref_dt": ref_dt,
                                          "steps": grid},
        "moreau-gd, gamma per 0.1 s": {"method": "moreau-gd", "gamma": gamma,
                                       "gamma_ref_dt": ref_dt, "steps": grid},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/long_horizon")
    ap.add_argument("--total-time", type=positive_float, default=10.0, help="seconds (default 10)")
    ap.add_argument("--iters", type=nonnegative_int, default=50)
    args = add_study_arguments(ap, horizons="100,1000,10000", steps="-4:20").parse_args(argv)
    res = horizon_sweep("pendulum", args.horizons, methods(powers_of_two(*args.steps)),
                        iters=args.iters, scaling="fixed-time", total_time=args.total_time, dt=None,
                        problem_kwargs={"scheme": "rk4"}, executor=args.executor,
                        workers=args.workers, out=args.out, progress=not args.quiet)
    if not args.quiet:
        print_summary(res, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
