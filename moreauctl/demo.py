"""The main job: GD vs Moreau GD on the paper's pendulum swing-up (Sec. 4, Fig. 3).

For each horizon, each method's step is chosen by a grid over powers of 2 (best cost reached
in ``iters`` iterations; diverged runs never win), then the table is printed and a figure in
the spirit of Fig. 3 is written: the minimum cost so far against iterations, one panel per
horizon.
"""
from __future__ import annotations

import json
import os

from . import models
from .plots import plot_min_cost
from .solve import solve

#: label -> (method, solve keywords, grid of step exponents)
DEMO_METHODS = {
    "GD": ("gd", {}, range(-10, 3)),
    "GD + Armijo": ("gd", {"line_search": "armijo"}, range(-4, 5)),
    "GD, geometric stage weights": ("gd", {"stage_weights": "geometric", "gamma": 0.5}, range(-2, 15)),
    "Moreau GD": ("moreau-gd", {"gamma": 0.5}, range(0, 15)),
}


def best_over_grid(problem, method, kwargs, exponents, iters):
    """Run ``method`` for each step ``2**e``; return (best result, its exponent, all results).

    The criterion is the best cost reached; runs that diverged never win.
    """
    runs = {}
    for e in exponents:
        runs[e] = solve(problem, method=method, step=2.0 ** e, iters=iters, verbose=False, **kwargs)
    ok = {e: r for e, r in runs.items() if r.success}
    pool = ok or runs
    e_best = min(pool, key=lambda e: (pool[e].best_cost, e))
    return pool[e_best], e_best, runs


def _fmt_step(e):
    return f"2^{e}"


def run_demo(out="results/demo", iters=50, horizons=(50, 100), verbose=True):
    """Run the comparison, print the table, write ``table.md``, ``results.json`` and
    ``fig3.png`` under ``out``. Returns ``{T: {label: SolveResult}}``."""
    os.makedirs(out, exist_ok=True)
    best = {}
    rows = []
    for T in horizons:
        prob = models.pendulum_swingup(horizon=T)
        best[T] = {}
        for label, (method, kw, grid) in DEMO_METHODS.items():
            res, e, runs = best_over_grid(prob, method, kw, grid, iters)
            n_div = sum(not r.success for r in runs.values())
            best[T][f"{label} (step {_fmt_step(e)})"] = res
            rows.append((T, label, _fmt_step(e), res.best_cost, res.costs[-1], res.nit,
                         n_div, len(runs)))
            if verbose:
                print(f"  T={T:4d} {label:30s} best step {_fmt_step(e):6s} best cost "
                      f"{res.best_cost:.4g}", flush=True)
    header = ("| T | method | chosen step | best cost | final cost | iterations | "
              "diverged steps in grid |\n|---|---|---|---|---|---|---|")
    lines = [header] + [f"| {T} | {lab} | {st} | {b:.4g} | {f:.4g} | {n} | {d}/{g} |"
                        for T, lab, st, b, f, n, d, g in rows]
    table = "\n".join(lines)
    print(f"\nPendulum swing-up (Roulet & Harchaoui E.1.1: Euler, dt=0.1, gamma=0.5), "
          f"{iters} iterations, initial cost pi^2 = 9.87\n")
    print(table)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({str(T): {lab: r.to_dict() for lab, r in d.items()} for T, d in best.items()},
                  f)
    fig_path = os.path.join(out, "fig3.png")
    plot_min_cost(best, fig_path, title="Pendulum swing-up: GD vs Moreau GD (best step per method)")
    print(f"\nwrote {fig_path}, {os.path.join(out, 'table.md')}, {os.path.join(out, 'results.json')}")
    return best
