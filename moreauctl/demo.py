"""The main job: GD vs Moreau GD on the paper's pendulum swing-up (Sec. 4, Fig. 3).

For each horizon, each method's step is chosen by :func:`moreauctl.studies.grid_search`
over powers of two with the ``"best"`` criterion (the best cost reached in ``iters``
iterations; diverged runs never win, ties go to the smaller step). The table is printed,
and ``table.md``, ``results.json`` and ``fig3.png`` (the minimum cost so far against
iterations, one panel per horizon, in the spirit of Fig. 3) are written under ``out``, each
complete or absent.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict, List, Mapping, Sequence, Tuple

from . import models
from ._io import check_output_dir, write_json_atomic, write_text_atomic
from .plots import plot_min_cost
from .studies.grid import GridResult, format_step, grid_search, powers_of_two

__all__ = ["DEMO_METHODS", "run_grids", "table_rows", "markdown_table", "run_demo", "compute",
           "write_outputs"]

#: label -> (method, solve keywords, step grid ``2^LO..2^HI`` as ``(LO, HI)``)
DEMO_METHODS = {
    "GD": ("gd", {}, (-10, 2)),
    "GD + Armijo": ("gd", {"line_search": "armijo"}, (-4, 4)),
    "GD, geometric stage weights": ("gd", {"stage_weights": "geometric", "gamma": 0.5}, (-2, 14)),
    "Moreau GD": ("moreau-gd", {"gamma": 0.5}, (0, 14)),
}

TITLE = ("Pendulum swing-up (Roulet & Harchaoui E.1.1: Euler, dt=0.1, gamma=0.5), "
         "{iters} iterations, initial cost pi^2 = 9.87")

_HEADER = ("| T | method | chosen step | best cost | final cost | iterations | "
           "diverged steps in grid |\n|---|---|---|---|---|---|---|")


def run_grids(horizons: Sequence[int], iters: int,
              verbose: bool = True) -> Dict[int, Dict[str, GridResult]]:
    """One grid search per horizon and method of :data:`DEMO_METHODS`.

    Returns
    -------
    dict
        ``{T: {label: GridResult}}``; each grid keeps the winning run's full result.
    """
    grids: Dict[int, Dict[str, GridResult]] = {}
    for T in horizons:
        prob = models.pendulum_swingup(horizon=T)
        grids[T] = {}
        for label, (method, kw, (lo, hi)) in DEMO_METHODS.items():
            g = grid_search(prob, method, steps=powers_of_two(lo, hi), iters=iters,
                            criterion="best", **kw)
            grids[T][label] = g
            if verbose:
                print(f"  T={T:4d} {label:30s} best step {format_step(g.step):6s} best cost "
                      f"{g.best_cost:.4g}", flush=True)
    return grids


def table_rows(grids: Mapping[int, Mapping[str, GridResult]]) -> List[Tuple]:
    """``(T, label, chosen step, best cost, final cost, iterations, failed, grid size)`` per
    grid; a grid whose every step failed has no step, costs or iterations (None)."""
    rows = []
    for T, by_label in grids.items():
        for label, g in by_label.items():
            res = g.result
            if res is None:
                rows.append((T, label, None, None, None, None, g.n_failed, len(g.records)))
            else:
                rows.append((T, label, format_step(g.step), res.best_cost, res.costs[-1],
                             res.nit, g.n_failed, len(g.records)))
    return rows


def _cell(v, fmt: str = "") -> str:
    """A table cell; ``-`` where a grid had no winner."""
    return "-" if v is None else format(v, fmt)


def markdown_table(rows: Sequence[Tuple]) -> str:
    """The rows of :func:`table_rows` as a markdown table (no trailing newline)."""
    lines = [_HEADER]
    for T, label, step, best, final, nit, failed, size in rows:
        step = "none: every step failed" if step is None else step
        lines.append(f"| {T} | {label} | {step} | {_cell(best, '.4g')} | {_cell(final, '.4g')} "
                     f"| {_cell(nit)} | {failed}/{size} |")
    return "\n".join(lines)


def _winners(grids) -> Dict[int, Dict[str, object]]:
    """``{T: {"label (step 2^e)": SolveResult}}`` of the grids that have a winner."""
    return {T: {f"{label} (step {format_step(g.step)})": g.result
                for label, g in by_label.items() if g.result is not None}
            for T, by_label in grids.items()}


def compute(horizons=(50, 100), iters=50, verbose=True):
    """Run the grids and print the table: ``(best, table)`` with ``best`` as returned by
    :func:`run_demo` and ``table`` the markdown table."""
    grids = run_grids(horizons, iters, verbose=verbose)
    table = markdown_table(table_rows(grids))
    print(f"\n{TITLE.format(iters=iters)}\n")
    print(table)
    return _winners(grids), table


def write_outputs(out, best, table) -> bool:
    """Write ``table.md``, ``results.json`` and ``fig3.png`` under ``out``, each complete or
    absent. A file that cannot be written (``out`` is checked before the compute, but disks
    fill up) is named in one line on stderr and the results JSON goes to stdout instead, so
    nothing computed is lost. Returns whether every file was written."""
    results = {str(T): {lab: r.to_dict() for lab, r in d.items()} for T, d in best.items()}
    written, ok = [], True
    for name, write in (
            ("table.md", lambda p: write_text_atomic(p, table + "\n")),
            ("results.json", lambda p: write_json_atomic(p, results)),
            ("fig3.png", lambda p: plot_min_cost(
                best, p, title="Pendulum swing-up: GD vs Moreau GD (best step per method)"))):
        path = os.path.join(out, name)
        try:
            write(path)
            written.append(path)
        except OSError as e:
            ok = False
            print(f"moreauctl: error: could not write {path!r}: {e.strerror or e}"
                  + ("; the results JSON follows on stdout" if name == "results.json" else ""),
                  file=sys.stderr)
            if name == "results.json":
                print(json.dumps(results, indent=1))
    if written:
        print(f"\nwrote {', '.join(written)}")
    return ok


def run_demo(out="results/demo", iters=50, horizons=(50, 100), verbose=True):
    """Run the comparison, print the table, write ``table.md``, ``results.json`` and
    ``fig3.png`` under ``out`` (each complete or absent; ``out`` is checked before any
    compute, see :func:`write_outputs` for a write that fails after it).

    Returns
    -------
    dict
        ``{T: {"label (step 2^e)": SolveResult}}``: the winning run of each grid.
    """
    check_output_dir(out, "out")
    best, table = compute(horizons, iters, verbose)
    write_outputs(out, best, table)
    return best
