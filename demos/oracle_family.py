"""Every oracle of the family on the paper's pendulum and on a coupled plant (issue 11, item 8).

Two horizon sweeps with the same protocol as the paper's Fig. 3 (50 iterations from w = 0,
each method's step chosen by a grid search on powers of two, best cost reached; IPOPT's
optimum as the reference):

- the pendulum swing-up of E.1.1 (explicit Euler, dt = 0.1), T = 50 and 100;
- the double pendulum (``models/double_pendulum.py``: two links, a torque at each joint,
  RK4, dt = 0.05), T = 50 and 100,

with GD, GD with Moreau GD's geometric stage weights (the ablation that separates the
weighting from the prox), Moreau GD (Algo 6), Moreau GD with Prop. 2.2's ``beta_t = 0.5 /
gamma_t``, ProxProp, the augmented-Lagrangian pass for three penalties, regularized and plain
target propagation, and the penalized sweep. The question: where does the prox itself pay?

    python demos/oracle_family.py --out results/oracle_family
    python demos/oracle_family.py --horizons 20 --iters 5 --steps -2:2    # seconds

Writes each plant's sweep under ``--out/<plant>`` and ``family.md`` (the combined table).
"""
from __future__ import annotations

import argparse
import os
import sys

from moreauctl.cli.args import add_study_arguments, nonnegative_int
from moreauctl.studies import (METHOD_PRESETS, format_step, horizon_sweep, powers_of_two,
                               write_text_atomic)

#: plant -> (time step, scheme)
PLANTS = {"pendulum": (0.1, "euler"), "double_pendulum": (0.05, "rk4")}


def methods(grid):
    """The compared methods (presets of :data:`METHOD_PRESETS` and variants)."""
    m = {k: dict(METHOD_PRESETS[k]) for k in ("gd", "gd-geometric", "moreau-gd", "proxprop",
                                               "target-prop", "prox-target-prop",
                                               "penalized")}
    m["moreau-gd, beta=0.5 (Prop. 2.2)"] = {"method": "moreau-gd", "gamma": 0.5,
                                            "oracle_options": {"beta": 0.5}}
    for k in (1e-3, 0.1, 1.0):
        m[f"auglag, kappa={k:g}"] = {"method": "auglag", "gamma": 0.5,
                                     "oracle_options": {"kappa": k}}
    return {k: dict(v, steps=grid) for k, v in m.items()}


def family_table(results) -> str:
    """Markdown: per plant, T and method, the chosen step, the best cost and the gap to
    IPOPT's optimum."""
    lines = ["| plant | T | method | step | best cost | gap to IPOPT |", "|---|---|---|---|---|---|"]
    for plant, res in results.items():
        rows = {(r["T"], r["method"]): r for r in res.rows()}
        for T in res.horizons:
            for label in res.labels:
                g = res.grid(T, label)
                gap = rows[(T, label)]["gap to IPOPT"]
                best = f"{g.best_cost:.3g}" if g.winner else "every step diverged"
                gap_s = "" if gap is None else f"{gap:.2e}"
                lines.append(f"| {plant} | {T} | {label} | {format_step(g.step)} | {best} | "
                             f"{gap_s} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/oracle_family")
    ap.add_argument("--iters", type=nonnegative_int, default=50)
    ap.add_argument("--plants", default=",".join(PLANTS),
                    help=f"comma-separated among {list(PLANTS)}")
    args = add_study_arguments(ap, horizons="50,100", steps="-14:14").parse_args(argv)
    grid = powers_of_two(*args.steps)
    results = {}
    for plant in [p.strip() for p in args.plants.split(",") if p.strip()]:
        if plant not in PLANTS:
            raise SystemExit(f"unknown plant {plant!r}; choose among {list(PLANTS)}")
        dt, scheme = PLANTS[plant]
        results[plant] = horizon_sweep(
            plant, args.horizons, methods(grid), iters=args.iters, dt=dt,
            problem_kwargs={"scheme": scheme}, executor=args.executor, workers=args.workers,
            out=os.path.join(args.out, plant), progress=not args.quiet)
    table = family_table(results)
    write_text_atomic(os.path.join(args.out, "family.md"), table)
    if not args.quiet:
        print(table)
        print(f"wrote {args.out}/family.md and each plant's sweep under {args.out}/<plant>",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
