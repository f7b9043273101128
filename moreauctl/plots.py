"""matplotlib figures: cost curves, trajectories, horizon panels.

Functions return the Figure and, given ``path``, save it (PNG/PDF by extension) atomically.
The non-interactive Agg backend is used when saving, so they work on machines with no
display.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import numpy as np

from ._io import atomic_path

__all__ = ["plot_solve", "plot_min_cost", "plot_mpc", "save_figure"]


def _plt():
    import matplotlib
    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path: str) -> str:
    """Save ``fig`` to ``path`` (format from the extension), complete or absent."""
    ext = os.path.splitext(os.fspath(path))[1] or ".png"
    with atomic_path(path, suffix=ext) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=ext[1:])
    return os.fspath(path)


def plot_solve(result, problem, path: Optional[str] = None):
    """Cost per iteration, then each state and control along the horizon at ``result.w``.

    Parameters
    ----------
    result : SolveResult
    problem : ControlProblem
    """
    plt = _plt()
    plant = problem.plant
    names = list(plant.state_names) + list(plant.control_names)
    n = 1 + len(names)
    ncol = 2
    nrow = (n + 1) // 2
    fig, axes = plt.subplots(nrow, ncol, figsize=(10, 3 * nrow), squeeze=False)
    ax = axes.flat[0]
    c = np.where(np.isfinite(result.costs), result.costs, np.nan)
    ax.semilogy(np.arange(c.size), np.maximum(c, 1e-16), marker=".", lw=1)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("cost h(f(w^k))")
    ax.set_title(f"{result.method}: {result.message}", fontsize=8)
    t = np.arange(problem.horizon + 1) * problem.dt
    X = result.states
    for i, name in enumerate(plant.state_names):
        a = axes.flat[1 + i]
        a.plot(t, X[:, i])
        a.set_xlabel("time")
        a.set_ylabel(name)
    for j, name in enumerate(plant.control_names):
        a = axes.flat[1 + plant.nx + j]
        a.step(t[:-1], result.w[:, j], where="post")
        a.set_xlabel("time")
        a.set_ylabel(name)
    for a in list(axes.flat)[n:]:
        a.set_visible(False)
    fig.suptitle(f"{problem.name} ({problem.scheme}, dt={problem.dt}): final cost {result.fun:.4g}")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def plot_min_cost(runs: Mapping[int, Mapping[str, object]], path: Optional[str] = None,
                  title: str = "minimum cost so far"):
    """One panel per horizon: the minimum cost so far against iterations, one line per method
    (in the spirit of the paper's Fig. 3).

    Parameters
    ----------
    runs : mapping ``T -> {label: SolveResult}``
    """
    plt = _plt()
    Ts = sorted(runs)
    fig, axes = plt.subplots(1, len(Ts), figsize=(5 * len(Ts), 3.6), squeeze=False)
    for ax, T in zip(axes.flat, Ts):
        for label, res in runs[T].items():
            m = res.history.min_so_far()
            ax.semilogy(np.arange(m.size), np.where(np.isfinite(m), m, np.nan), label=label)
        ax.set_title(f"horizon T = {T}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("min cost so far")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def plot_mpc(result, problem, path: Optional[str] = None):
    """Closed loop of :func:`moreauctl.mpc`: each plant state and control against time
    (bounds dashed), and the iterations and wall time of every solve.

    Parameters
    ----------
    result : MPCResult
    problem : ControlProblem
        The prediction model (names, bounds).
    """
    plt = _plt()
    plant = problem.plant
    n = plant.nx + plant.nu + 1
    nrow = (n + 1) // 2
    fig, axes = plt.subplots(nrow, 2, figsize=(10, 2.6 * nrow), squeeze=False)
    t = result.times
    for i, name in enumerate(plant.state_names):
        a = axes.flat[i]
        a.plot(t, result.states[:, i], lw=1.2)
        if result.plans is not None:
            H = result.plans.shape[1] - 1
            for k in range(0, len(result.plans), max(1, len(result.plans) // 8)):
                a.plot(t[k] + problem.dt * np.arange(H + 1), result.plans[k, :, i], lw=0.6,
                       alpha=0.5, color="gray")
        a.set_ylabel(name)
        a.set_xlabel("time")
        a.set_xlim(t[0], t[-1])
    for j, name in enumerate(plant.control_names):
        a = axes.flat[plant.nx + j]
        a.step(t[:-1], result.controls[:, j], where="post", lw=1.2)
        for b in (problem.lower[j], problem.upper[j]):
            if np.isfinite(b):
                a.axhline(b, ls="--", lw=0.8, color="k")
        a.set_ylabel(name)
        a.set_xlabel("time")
    a = axes.flat[plant.nx + plant.nu]
    a.bar(t[:-1], result.iterations, width=problem.dt, color="C1", alpha=0.6)
    a.set_ylabel("iterations per solve", color="C1")
    a2 = a.twinx()
    a2.semilogy(t[:-1], 1e3 * result.solve_seconds, ".", ms=3, color="C2")
    a2.set_ylabel("ms per solve (the first compiles)", color="C2")
    a.set_xlabel("time")
    for a in list(axes.flat)[n:]:
        a.set_visible(False)
    fig.suptitle(f"MPC, {result.settings.get('method')}, horizon {result.settings.get('horizon')}"
                 f" x dt {problem.dt}: closed-loop cost {result.cost:.4g}", fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
