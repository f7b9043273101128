"""Reproduce the paper's pendulum experiment (Roulet & Harchaoui, Sec. 4, Fig. 3, E.2.2).

Settings of the paper: pendulum swing-up of E.1.1 (explicit Euler, dt = 0.1, x0 = (0, 0),
h = (theta - pi)^2 + 0.1 omega^2), horizons T = 50 and 100, 50 iterations from w = 0,
Moreau GD with gamma = 0.5 (gamma_t = gamma^(T-t+1)), steps chosen by a grid search on
powers of two. The paper reports GD steps 1 (T=50) and 0.25 (T=100), and Moreau GD
alpha = 2^7 for both. We add GD with Moreau GD's geometric stage weights (the ablation) and
IPOPT's optimum, and print which steps our grid picks next to the paper's, by two criteria
(best cost reached, and area under the min-so-far curve).

    python demos/paper_fig3.py --out results/paper_fig3

Writes the sweep's cells, summary.csv/.md and figures under --out, plus
``reproduction.md`` (the table printed at the end).
"""
from __future__ import annotations

import argparse
import os
import sys

from moreauctl.cli.args import add_scheme_arg, add_study_arguments, nonnegative_int
from moreauctl.studies import format_step, horizon_sweep, powers_of_two, write_text_atomic

#: the steps the paper reports (E.2.2): label -> {T: step}
PAPER_STEPS = {"gd": {50: 1.0, 100: 0.25}, "moreau-gd": {50: 2.0 ** 7, 100: 2.0 ** 7}}

METHODS = {
    "gd": {"method": "gd"},
    "gd-geometric": {"method": "gd", "stage_weights": "geometric", "gamma": 0.5},
    "moreau-gd": {"method": "moreau-gd", "gamma": 0.5},
}


def reproduction_table(by_best, by_auc) -> str:
    """Markdown: per (T, method), the paper's step, ours by each criterion, and costs."""
    cols = ("T", "method", "paper's step", "our step (best cost)", "our step (AUC)",
            "best cost at paper's step", "best cost at our step", "gap to IPOPT at our step",
            "paper's step diverges?")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = {(r["T"], r["method"]): r for r in by_best.rows()}
    for T in by_best.horizons:
        for label in by_best.labels:
            g, ga = by_best.grid(T, label), by_auc.grid(T, label)
            paper = PAPER_STEPS.get(label, {}).get(T)
            at_paper = next((r for r in g.records if paper is not None and r.step == paper), None)
            gap = rows[(T, label)]["gap to IPOPT"]
            lines.append("| " + " | ".join([
                str(T), label, format_step(paper) if paper else "(not in the paper)",
                format_step(g.step), format_step(ga.step),
                f"{at_paper.best_cost:.4g}" if at_paper else "",
                f"{g.best_cost:.4g}" if g.winner else "",
                f"{gap:.2e}" if gap is not None else "",
                ("yes: " + at_paper.message) if at_paper and not at_paper.success
                else ("no" if at_paper else ""),
            ]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/paper_fig3")
    ap.add_argument("--iters", type=nonnegative_int, default=50, help="iterations (paper: 50)")
    add_scheme_arg(ap, default="euler",
                   help="discretization (paper, E.1.1: euler; try semi-implicit-euler or rk4)")
    args = add_study_arguments(ap, horizons="50,100", steps="-10:14",
                               horizons_help="comma-separated horizons (paper: 50,100)",
                               steps_help="step grid 2^LO..2^HI for every method"
                               ).parse_args(argv)
    grid = powers_of_two(*args.steps)
    methods = {k: dict(v, steps=grid) for k, v in METHODS.items()}
    common = dict(iters=args.iters, dt=0.1, problem_kwargs={"scheme": args.scheme},
                  executor=args.executor, workers=args.workers, out=args.out,
                  progress=not args.quiet)
    by_best = horizon_sweep("pendulum", args.horizons, methods, criterion="best", **common)
    # same cells, another criterion: everything is loaded from --out, nothing recomputed
    by_auc = horizon_sweep("pendulum", args.horizons, methods, criterion="auc", report=False, **common)
    table = reproduction_table(by_best, by_auc)
    write_text_atomic(os.path.join(args.out, "reproduction.md"), table)
    if not args.quiet:
        print(by_best.to_markdown())
        print("Steps: the paper's (E.2.2) vs our grid's\n")
        print(table)
        print(f"wrote {args.out}/summary.md, summary.csv, reproduction.md, fig_min_cost.png, "
              f"fig_gap_vs_T.png, fig_step_sensitivity.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
