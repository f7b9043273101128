"""matplotlib figures: cost curves, trajectories, horizon panels, training curves and
confusion matrices.

Functions return the Figure and, given ``path``, save it (PNG/PDF by extension) atomically.
The non-interactive Agg backend is used when saving, so they work on machines with no
display.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

import numpy as np

from ._io import atomic_path, atomic_write

__all__ = ["plot_solve", "plot_min_cost", "plot_mpc", "animate", "plot_training",
           "plot_confusion", "save_figure"]


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


def plot_training(result, path: Optional[str] = None, title: str = ""):
    """A network's training run: the objective on the whole training set per epoch (and its
    minimum so far), over the mini-batch losses of every update.

    Parameters
    ----------
    result : SolveResult
        Of a run on mini-batches (``result.history.epoch_ends`` set).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    h = result.history
    ends = np.asarray(h.epoch_ends, dtype=float)
    per_epoch = max(float(ends[1]), 1.0) if ends.size > 1 else 1.0
    if h.costs.size:
        ax.semilogy((np.arange(h.costs.size) + 1) / per_epoch, h.costs, lw=0.5, alpha=0.35,
                    color="gray", label="mini-batch loss")
    c = np.where(np.isfinite(result.costs), result.costs, np.nan)
    e = np.arange(c.size)
    ax.semilogy(e, c, marker="o", ms=3, label="training objective")
    ax.semilogy(e, np.minimum.accumulate(np.where(np.isfinite(c), c, np.inf)), ls="--",
                label="best so far")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{result.method}: {result.message}", fontsize=9)
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


def plot_confusion(cm, path: Optional[str] = None, title: str = "confusion matrix (test)"):
    """A confusion matrix ``cm[i, j]`` = samples of class ``i`` predicted as ``j`` (counts),
    with row-normalized colors."""
    plt = _plt()
    cm = np.asarray(cm)
    K = cm.shape[0]
    fig, ax = plt.subplots(figsize=(0.45 * K + 2.5, 0.45 * K + 2))
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    if path:
        save_figure(fig, path)
    return fig


def animate(states, geometry, path: str, dt: float, *, title: str = "",
            max_frames: int = 120, trail: Optional[int] = 0) -> int:
    """Write a GIF of a trajectory, drawn by matplotlib frame by frame and encoded by Pillow.

    Parameters
    ----------
    states : array_like, shape (N, nx)
        States along time (extra entries after those ``geometry`` reads, such as an
        accumulated cost, are ignored by it).
    geometry : callable
        ``geometry(x) -> list of polylines (xs, ys)`` in the plant's plane (see
        :data:`moreauctl.models.GEOMETRY`).
    path : str
        Destination ``.gif``, written complete or not at all.
    dt : float
        Time between consecutive ``states``; the GIF plays in real time (its frame
        duration is the time between the frames kept, at least 20 ms).
    title : str
    max_frames : int
        At most this many frames, evenly spaced, first and last included.
    trail : int, optional
        Draw the path of the last polyline's end point over the previous ``trail`` frames
        (0: none).

    Returns
    -------
    int
        Number of frames written.
    """
    import io

    from PIL import Image

    plt = _plt()
    X = np.asarray(states, dtype=float)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"states has shape {X.shape}; expected (N, nx) with N >= 1")
    if not callable(geometry):
        raise TypeError(f"geometry must be a callable x -> polylines; got {type(geometry).__name__}")
    n = X.shape[0]
    idx = np.unique(np.linspace(0, n - 1, min(n, int(max_frames))).round().astype(int))
    frames = [geometry(X[i]) for i in idx]
    pts = np.concatenate([np.column_stack([np.ravel(a), np.ravel(b)])
                          for f in frames for a, b in f])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * max(float(np.max(hi - lo)), 1e-6)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=80)
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    ax.set_aspect("equal")
    ax.grid(True, lw=0.3)
    lines = [ax.plot([], [], "o-", lw=2.5, ms=4)[0] for _ in frames[0]]
    path_line = ax.plot([], [], lw=0.8, color="gray")[0]
    label = ax.set_title("")
    tips = [(f[-1][0][-1], f[-1][1][-1]) for f in frames]
    images = []
    for j, (i, f) in enumerate(zip(idx, frames)):
        for line, (a, b) in zip(lines, f):
            line.set_data(a, b)
        if trail:
            tt = tips[max(0, j - int(trail)):j + 1]
            path_line.set_data([p[0] for p in tt], [p[1] for p in tt])
        label.set_text(f"{title}  t = {i * dt:.2f}".strip())
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
    plt.close(fig)
    step = (idx[1] - idx[0]) * dt if len(idx) > 1 else dt
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=max(20, int(round(1000 * step))), loop=0)
    atomic_write(path, buf.getvalue())
    return len(images)
