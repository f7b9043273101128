"""Tables and figures of a :class:`~moreauctl.studies.sweep.SweepResult`.

The report reads a sweep through its attributes (``horizons``, ``labels``, ``grid(T,
label)``, ``references``, ``dts``, ``settings``, ``c_star(T)``) and never imports
:mod:`moreauctl.studies.sweep`, which calls it (see :mod:`moreauctl.studies` for the import order).

Columns of ``summary.csv`` / ``summary.md`` (one row per method and horizon, plus one IPOPT
row per horizon):

- ``method``: the method's label; ``T``: horizon; ``dt``: time step used;
- ``chosen step``: the step the grid picked (by the sweep's criterion; failed runs never win);
- ``best cost``: ``min_k c_k`` of the chosen run; ``final cost``: ``c_K``;
- ``gap to IPOPT``: ``(best - c*) / (c_0 - c*)``, with ``c*`` IPOPT's optimum at that
  horizon and ``c_0`` the cost at the initial controls (0 = optimal, 1 = no progress; a
  negative value would mean the method beat IPOPT, i.e. IPOPT stopped at a worse local
  solution);
- ``iters to 1e-2 gap``: first iteration ``k`` with ``(min_{i<=k} c_i - c*) / (c_0 - c*) <=
  1e-2`` (empty if never reached; IPOPT rows: IPOPT's iteration count); ``seconds``: wall
  time of the chosen run (IPOPT: its solve); ``grid seconds``: all runs of the grid;
  ``failed steps``: diverged runs / grid size; ``at grid edge``: the chosen step is the
  smallest or largest of the grid, so a wider grid might do better (the markdown table
  marks it "(grid edge)").

Figures:

- ``fig_min_cost.png``: minimum cost so far against iterations, one panel per ``T``
  (the paper's Fig. 3), the chosen step of each method;
- ``fig_gap_vs_T.png``: the gap to IPOPT reached after ``K`` iterations against ``T``,
  one line per method;
- ``fig_step_sensitivity.png``: best cost against step, one panel per ``T``, one line per
  method (``x`` marks failed runs, at their best cost before failing; a circle the chosen
  step).
"""
from __future__ import annotations

import csv
import io
import math
import os
from typing import Dict, List, Optional

import numpy as np

from .._io import write_text_atomic
from ..plots import _plt, save_figure
from .grid import format_step
from .metrics import first_at_or_below, normalized_gap

__all__ = ["sweep_rows", "markdown_table", "csv_text", "write_report", "plot_min_cost_panels",
           "plot_gap_vs_horizon", "plot_step_sensitivity", "GAP_TARGET", "COLUMNS"]

#: the gap level of the "iters to 1e-2 gap" column
GAP_TARGET = 1e-2

#: Columns of a sweep's table (:func:`sweep_rows`, CSV and markdown), one row per method
#: and horizon.
COLUMNS = ("method", "T", "dt", "chosen step", "best cost", "final cost", "c* (IPOPT)",
           "gap to IPOPT", "final gap", "iters to 1e-2 gap", "seconds", "grid seconds",
           "failed steps", "grid size", "at grid edge", "solver", "status")


def _name(sweep) -> str:
    p = str(sweep.settings["problem"])
    return p[len("plant:"):] if p.startswith("plant:") else p


def sweep_rows(sweep) -> List[Dict[str, object]]:
    """One dict per (T, method) with the columns of :data:`~moreauctl.studies.report.COLUMNS` (numbers unformatted),
    IPOPT rows first within each horizon."""
    rows = []
    for T in sweep.horizons:
        c_star = sweep.c_star(T)
        ref = sweep.references.get(T)
        if ref is not None:
            rows.append({"method": "IPOPT", "T": T, "dt": sweep.dts[T], "chosen step": None,
                         "best cost": ref.costs[-1], "final cost": ref.costs[-1],
                         "c* (IPOPT)": c_star, "gap to IPOPT": 0.0 if math.isfinite(c_star) else None,
                         "final gap": 0.0 if math.isfinite(c_star) else None,
                         "iters to 1e-2 gap": ref.nit, "seconds": ref.seconds,
                         "grid seconds": ref.seconds, "failed steps": int(not ref.success),
                         "grid size": 1, "solver": "ipopt", "status": ref.message,
                         "at grid edge": False})
        for label in sweep.labels:
            g = sweep.grid(T, label)
            w = g.winner
            row = {"method": label, "T": T, "dt": sweep.dts[T], "chosen step": g.step,
                   "best cost": None, "final cost": None, "c* (IPOPT)": c_star if ref else None,
                   "gap to IPOPT": None, "final gap": None, "iters to 1e-2 gap": None,
                   "seconds": None, "grid seconds": g.seconds, "failed steps": g.n_failed,
                   "grid size": len(g.records), "solver": g.settings.get("method", label),
                   "status": "every step failed" if w is None else w.message,
                   "at grid edge": w is not None and len(g.records) > 1
                   and w.step in (min(g.steps), max(g.steps))}
            if w is not None:
                row["best cost"] = w.best_cost
                row["final cost"] = w.final_cost
                row["seconds"] = w.seconds
                if ref is not None and math.isfinite(c_star):
                    c0 = float(w.costs[0])
                    gap = normalized_gap(w.min_so_far(), c0, c_star)
                    row["gap to IPOPT"] = float(gap[-1])
                    row["final gap"] = float(normalized_gap(w.final_cost, c0, c_star))
                    row["iters to 1e-2 gap"] = first_at_or_below(gap, GAP_TARGET)
            rows.append(row)
    return rows


def _fmt(v, kind="g"):
    if v is None:
        return ""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if kind == "gap":
        return f"{v:.2e}"
    if kind == "step":
        return format_step(v)
    if kind == "s":
        return f"{v:.3g}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown_table(sweep) -> str:
    """The summary as a markdown table (numbers rounded for reading; the CSV keeps them all)."""
    s = sweep.settings
    if s["scaling"] == "fixed-dt":
        scale = "fixed dt (the model's default)" if s["dt"] is None else f"fixed dt = {s['dt']}"
    else:
        scale = f"fixed total time {s['total_time']} (dt = total_time / T)"
    head = (f"{_name(sweep)}, {scale}, {s['iters']} iterations, step chosen by the "
            f"'{s['criterion']}' criterion (failed runs never win).\n\n")
    cols = ("method", "T", "dt", "chosen step", "best cost", "final cost", "gap to IPOPT",
            "iters to 1e-2 gap", "seconds", "failed steps")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in sweep_rows(sweep):
        step = _fmt(r["chosen step"], "step")
        if r["method"] != "IPOPT" and r["chosen step"] is None:
            step = "none: every step failed"
        if r.get("at grid edge"):
            step += " (grid edge)"
        cells = [r["method"], str(r["T"]), f"{r['dt']:.4g}", step,
                 _fmt(r["best cost"]), _fmt(r["final cost"]), _fmt(r["gap to IPOPT"], "gap"),
                 _fmt(r["iters to 1e-2 gap"]), _fmt(r["seconds"], "s"),
                 f"{r['failed steps']}/{r['grid size']}"]
        lines.append("| " + " | ".join(cells) + " |")
    foot = ("\n\n(grid edge): the chosen step is an end of the grid; widen it to be sure. "
            "gap to IPOPT = (best cost - c*) / (c_0 - c*), c* = IPOPT's optimum "
            "(multiple shooting, same discretization); iters to 1e-2 gap = first iteration "
            "where the min-so-far gap is <= 1e-2 (IPOPT rows: IPOPT's iterations).")
    return head + "\n".join(lines) + foot + "\n"


def _csv_value(v):
    """Floats at full precision (repr round-trips), numpy scalars as Python ones."""
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, np.integer):
        return str(int(v))
    return v


def csv_text(sweep) -> str:
    """The summary as CSV: every column of :data:`~moreauctl.studies.report.COLUMNS`, floats at full precision."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in sweep_rows(sweep):
        w.writerow({k: _csv_value(r[k]) for k in COLUMNS})
    return buf.getvalue()


def _panels(n):
    plt = _plt()
    ncol = min(n, 3)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False)
    for a in list(axes.flat)[n:]:
        a.set_visible(False)
    return fig, list(axes.flat)[:n]


def _pos(v):
    """Values for a log axis: non-positive ones are drawn at 1e-16, non-finite ones omitted."""
    v = np.asarray(v, dtype=float)
    return np.where(np.isfinite(v), np.maximum(v, 1e-16), np.nan)


def plot_min_cost_panels(sweep, path: Optional[str] = None):
    """Minimum cost so far against iterations, one panel per T (paper's Fig. 3)."""
    fig, axes = _panels(len(sweep.horizons))
    for ax, T in zip(axes, sweep.horizons):
        for label in sweep.labels:
            g = sweep.grid(T, label)
            if g.winner is None:
                ax.plot([], [], label=f"{label}: every step failed")
                continue
            m = g.winner.min_so_far()
            ax.semilogy(np.arange(m.size), _pos(m), label=f"{label} (step {format_step(g.step)})")
        c_star = sweep.c_star(T)
        if math.isfinite(c_star):
            if c_star > 1e-14:
                ax.axhline(c_star, color="k", ls="--", lw=1, label=f"IPOPT c* = {c_star:.3g}")
            else:
                ax.plot([], [], " ", label=f"IPOPT c* = {c_star:.1e}")
        ax.set_title(f"T = {T}, dt = {sweep.dts[T]:.4g}")
        ax.set_xlabel("iteration k")
        ax.set_ylabel("min cost so far")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{_name(sweep)}: minimum cost so far (chosen steps)")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def plot_gap_vs_horizon(sweep, path: Optional[str] = None):
    """Normalized gap to IPOPT after K iterations against T, one line per method (best cost
    against T when the sweep has no reference)."""
    plt = _plt()
    rows = sweep_rows(sweep)
    has_ref = any(sweep.references.get(T) is not None for T in sweep.horizons)
    key = "gap to IPOPT" if has_ref else "best cost"
    fig, ax = plt.subplots(figsize=(6, 4))
    for label in sweep.labels:
        pts = [(r["T"], r[key]) for r in rows if r["method"] == label and r[key] is not None]
        if pts:
            Ts, vals = zip(*pts)
            ax.loglog(Ts, _pos(vals), marker="o", label=label)
    ax.set_xlabel("horizon T")
    ax.set_ylabel("(best - c*) / (c_0 - c*)" if has_ref else "best cost")
    ax.set_title(f"{'gap to IPOPT' if has_ref else 'best cost'} after "
                 f"{sweep.settings['iters']} iterations ({sweep.settings['scaling']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def plot_step_sensitivity(sweep, path: Optional[str] = None):
    """Best cost against step, one panel per T, one line per method."""
    fig, axes = _panels(len(sweep.horizons))
    for ax, T in zip(axes, sweep.horizons):
        for i, label in enumerate(sweep.labels):
            g = sweep.grid(T, label)
            steps = np.array([r.step for r in g.records])
            best = np.array([r.best_cost for r in g.records])
            ok = np.array([r.success for r in g.records])
            line, = ax.loglog(steps, _pos(np.where(ok, best, np.nan)), marker=".", label=label)
            if (~ok).any():
                ax.loglog(steps[~ok], _pos(best[~ok]), "x", color=line.get_color())
            if g.winner is not None:
                ax.loglog([g.step], _pos([g.best_cost]), "o", mfc="none", ms=9,
                          color=line.get_color())
        ax.set_xscale("log", base=2)
        ax.set_title(f"T = {T}")
        ax.set_xlabel("step (alpha for Moreau GD)")
        ax.set_ylabel(f"best cost in {sweep.settings['iters']} iterations")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("step-size sensitivity (x: diverged, o: chosen)")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def write_report(sweep, out: str, figures: bool = True) -> Dict[str, str]:
    """Write ``summary.csv``, ``summary.md`` and (with ``figures``) the three figures under
    ``out``, each atomically. Returns ``{name: path}``."""
    os.makedirs(out, exist_ok=True)
    paths = {"csv": write_text_atomic(os.path.join(out, "summary.csv"), csv_text(sweep)),
             "markdown": write_text_atomic(os.path.join(out, "summary.md"), markdown_table(sweep))}
    if figures:
        plt = _plt()
        for name, fn in (("fig_min_cost", plot_min_cost_panels),
                         ("fig_gap_vs_T", plot_gap_vs_horizon),
                         ("fig_step_sensitivity", plot_step_sensitivity)):
            fig = fn(sweep, os.path.join(out, name + ".png"))
            plt.close(fig)
            paths[name] = os.path.join(out, name + ".png")
    return paths
