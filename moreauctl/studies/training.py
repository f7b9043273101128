"""Studies on networks: grids of methods x step sizes on one classification task, on any
executor, with resumable cells.

The long paper picks every step by a grid search (Sec. 4 and F.2: powers of 2, "the
parameters with the smallest area under the optimization curve" of the best-so-far training
loss). :func:`training_grid` runs that search for several methods at once:

- one *cell* is one run ``(method settings, step)`` of :func:`moreauctl.solve` on a task of
  :func:`moreauctl.nn.make_task` for ``epochs`` epochs with a shuffling ``seed``; its record
  keeps the training objective per epoch and the test accuracy of the final weights;
- cells run on any :class:`concurrent.futures.Executor` (a local process pool by default,
  ``"serial"``, ``"thread"``, or a Dask cluster's executor via
  :func:`~moreauctl.studies.dask_executor`); only the task's keywords and the settings travel
  to workers, each of which builds a task once and keeps it;
- with ``out=DIR`` every finished cell is stored atomically in ``DIR/cells`` (the format of
  :mod:`.store`) and reused by the next call with the same settings;
- each method's step is chosen by ``criterion`` (default ``"auc"``, the paper's rule; see
  :mod:`.metrics`) among the runs that did not fail, as :func:`.grid.choose` does.
"""
from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from .. import __version__
from .._io import check_output_dir, write_json_atomic, write_text_atomic
from .._validate import nonnegative_int, positive_number
from ..solve import solve
from .cells import compute_cells, floats_from_json, floats_to_json
from .executors import terminate_on_signal
from .grid import GridResult, StepRecord, choose, format_step
from .metrics import check_criterion
from .store import cell_key

__all__ = ["training_grid", "TrainingStudy", "run_training_cell", "check_training_record"]

_FORBIDDEN = {"step": "give a grid as 'steps'", "epochs": "set epochs for the study",
              "iters": "networks train for epochs", "seed": "set seed for the study",
              "w0": "runs start from the task's initialization",
              "callback": "callbacks cannot be stored", "verbose": "cells are always silent"}

#: per-worker cache: task keywords (JSON) -> Task
_TASKS: Dict[str, Any] = {}


def _task(task_kwargs: Mapping[str, Any]):
    from ..nn.tasks import make_task
    key = json.dumps(task_kwargs, sort_keys=True)
    t = _TASKS.get(key)
    if t is None:
        t = _TASKS[key] = make_task(**task_kwargs)
    return t


def run_training_cell(spec: Mapping[str, Any]) -> dict:
    """Compute one cell (in a worker): ``solve(task.problem, method, step, epochs, seed,
    **solve_kwargs)``; returns its JSON-ready record (costs per epoch, status, test accuracy
    of the final weights, seconds)."""
    task = _task(spec["task"])
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):  # a diverging step is a result (its status), not a warning
        res = solve(task.problem, method=spec["method"], step=float(spec["step"]),
                    epochs=int(spec["epochs"]), seed=int(spec["seed"]), verbose=False,
                    **dict(spec.get("solve_kwargs") or {}))
    seconds = time.perf_counter() - t0
    acc = task.accuracy(res.w) if np.all(np.isfinite(res.costs[:1])) else math.nan
    return {"key": cell_key(spec), "spec": dict(spec), "costs": floats_to_json(res.costs),
            "success": bool(res.success), "status": int(res.status),
            "message": str(res.message), "nit": int(res.nit), "seconds": float(seconds),
            "test_accuracy": float(acc) if math.isfinite(acc) else "nan",
            "pid": os.getpid(), "finished_at": time.time(), "moreauctl_version": __version__}


def check_training_record(rec: Mapping[str, Any], spec: Mapping[str, Any]) -> Optional[str]:
    """Why a stored record cannot be the result of the training cell ``spec`` (None when it
    can): its settings, and the fields a study reads with their types."""
    for name, typ in (("spec", dict), ("costs", list), ("success", bool), ("status", int),
                      ("message", str), ("nit", int), ("seconds", (int, float)),
                      ("test_accuracy", (int, float, str))):
        if not isinstance(rec.get(name), typ) or (typ is int and isinstance(rec[name], bool)):
            return f"its {name!r} is missing or of the wrong type"
    if cell_key(rec["spec"]) != cell_key(spec):
        return "its settings are not those of this cell"
    if not 1 <= len(rec["costs"]) <= int(spec["epochs"]) + 1:
        return f"its cost curve has {len(rec['costs'])} entries for {spec['epochs']} epochs"
    try:
        floats_from_json(rec["costs"])
        float(rec["test_accuracy"])
    except (TypeError, ValueError):
        return "its costs or test accuracy are not numbers"
    return None


def _to_step(rec: Mapping[str, Any]) -> StepRecord:
    return StepRecord(step=float(rec["spec"]["step"]), success=bool(rec["success"]),
                      status=int(rec["status"]), message=str(rec["message"]),
                      nit=int(rec["nit"]), costs=floats_from_json(rec["costs"]),
                      seconds=float(rec["seconds"]), iters=int(rec["spec"]["epochs"]))


@dataclass(frozen=True)
class TrainingStudy:
    """What :func:`~moreauctl.studies.training_grid` found.

    Attributes
    ----------
    labels : tuple of str
    grids : mapping ``label -> GridResult``
        Records per step (``costs``: training objective per epoch), the chosen step.
    accuracies : mapping ``(label, step) -> float``
        Test accuracy of each run's final weights.
    settings : mapping
        ``task``, ``epochs``, ``seed``, ``criterion``, ``methods``.
    computed, loaded : int
        Cells computed by this call, and found finished on disk.
    seconds : float
    out : str or None
    """

    labels: Tuple[str, ...]
    grids: Mapping[str, GridResult]
    accuracies: Mapping[Tuple[str, float], float]
    settings: Mapping[str, Any]
    computed: int = 0
    loaded: int = 0
    seconds: float = 0.0
    out: Optional[str] = None

    def accuracy(self, label: str) -> float:
        """Test accuracy of ``label``'s chosen run (NaN when every run failed)."""
        g = self.grids[label]
        return math.nan if g.step is None else float(self.accuracies[(label, g.step)])

    @property
    def n_nonfinite(self) -> int:
        """Runs whose training objective became NaN or inf (diverged runs included)."""
        return sum(int(not np.all(np.isfinite(r.costs))) for g in self.grids.values()
                   for r in g.records)

    def rows(self) -> list:
        """One dict per method: chosen step, best and final training objective, test accuracy
        of the chosen run, failed runs, seconds."""
        out = []
        for lab in self.labels:
            g = self.grids[lab]
            out.append({"method": lab, "step": format_step(g.step),
                        "best loss": g.best_cost, "final loss": g.final_cost,
                        "test accuracy": self.accuracy(lab),
                        "failed": f"{g.n_failed}/{len(g.records)}",
                        "seconds": g.seconds})
        return out

    def to_markdown(self) -> str:
        head = ("| method | chosen step | best training loss | final training loss | "
                "test accuracy | failed runs | seconds (all steps) |")
        lines = [head, "|---|---|---|---|---|---|---|"]
        for r in self.rows():
            lines.append(f"| {r['method']} | {r['step']} | {r['best loss']:.4g} | "
                         f"{r['final loss']:.4g} | {r['test accuracy']:.4f} | {r['failed']} | "
                         f"{r['seconds']:.1f} |")
        return "\n".join(lines)

    def plot(self, path: Optional[str] = None, title: str = "", ax=None):
        """Best-so-far training objective per epoch of each method's chosen run."""
        from ..plots import _plt, save_figure
        plt = _plt()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 4))
        for lab in self.labels:
            g = self.grids[lab]
            if g.winner is None:
                continue
            y = g.winner.min_so_far()
            ax.semilogy(np.arange(y.size), y, marker=".",
                        label=f"{lab} (step {format_step(g.step)}, acc {self.accuracy(lab):.3f})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("best training loss so far")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        if title:
            ax.set_title(title, fontsize=9)
        if fig is not None:
            fig.tight_layout()
            if path:
                save_figure(fig, path)
        return fig


def _check_methods(methods) -> Dict[str, Dict[str, Any]]:
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("methods must be a non-empty mapping {label: settings with 'method' "
                         f"and 'steps'}}; got {methods!r}")
    out = {}
    for label, st in methods.items():
        if not isinstance(st, Mapping) or "method" not in st or "steps" not in st:
            raise ValueError(f"settings of {label!r} need 'method' and 'steps'; got {st!r}")
        st = dict(st)
        for k, why in _FORBIDDEN.items():
            if k in st:
                raise ValueError(f"settings of {label!r} may not set {k!r}: {why}")
        steps = tuple(positive_number(f"every step of {label!r}", s) for s in st.pop("steps"))
        if not steps:
            raise ValueError(f"steps of {label!r} is empty")
        out[str(label)] = {**st, "steps": steps}
    return out


def training_grid(task: Mapping[str, Any], methods: Mapping[str, Mapping[str, Any]],
                  epochs: int = 20, *, seed: int = 0, criterion: str = "auc",
                  executor: Union[None, str, Executor] = None, workers: Optional[int] = None,
                  out: Optional[str] = None, force: bool = False,
                  progress: bool = True) -> TrainingStudy:
    """Grid-search each method's step on one network task.

    Parameters
    ----------
    task : mapping
        Keywords of :func:`moreauctl.nn.make_task` (JSON-like), e.g.
        ``{"dataset": "digits", "arch": "mlp", "hidden": [64]}``.
    methods : mapping ``label -> settings``
        Each with ``method``, ``steps`` (the grid) and any other keyword of
        :func:`moreauctl.solve` (``gamma``, ``oracle_options``, ``optimizer_options``...).
    epochs : int
        Epochs of every run.
    seed : int
        Shuffling seed of every run (the task's own seed sets its split and initialization).
    criterion : {"auc", "best", "final"}
        How each grid picks its step (:mod:`.metrics`); runs that failed never win.
    executor : Executor, or "process" | "thread" | "serial", optional
        Where cells run; default a process pool of ``workers`` (one per core). An executor
        passed in is not shut down.
    out : str, optional
        Study directory: cells are stored there and reused; ``study.json``, ``summary.md``
        and ``fig_best_loss.png`` are written there.
    force : bool
        Recompute stored cells.
    progress : bool
        A tqdm bar over cells.
    """
    t_start = time.perf_counter()
    if not isinstance(task, Mapping):
        raise TypeError(f"task must be a mapping of nn.make_task keywords; got {type(task).__name__}")
    task = dict(task)
    meths = _check_methods(methods)
    nonnegative_int("epochs", epochs)
    nonnegative_int("seed", seed)
    check_criterion(criterion)
    if out is not None:
        check_output_dir(out, "out")  # a file, or not writable: say so before any compute
    _task(task)  # fail fast (unknown data set, architecture...) before any cell runs
    specs: Dict[str, dict] = {}
    keys: Dict[str, list] = {}
    for label, st in meths.items():
        skw = {k: v for k, v in st.items() if k not in ("method", "steps")}
        keys[label] = []
        for s in st["steps"]:
            spec = {"kind": "train", "task": task, "method": st["method"], "step": s,
                    "epochs": int(epochs), "seed": int(seed), "solve_kwargs": skw}
            k = cell_key(spec)
            specs[k] = spec
            keys[label].append(k)
    with terminate_on_signal():  # SIGTERM stops the study the way Ctrl-C does
        records, n_loaded = compute_cells(
            specs, run_training_cell, out=out, force=force, executor=executor,
            workers=workers, progress=progress, check=check_training_record,
            describe=lambda sp: f"method={sp['method']} step={sp['step']:g}")
    grids, accs = {}, {}
    for label, ks in keys.items():
        recs = tuple(_to_step(records[k]) for k in ks)
        for k, r in zip(ks, recs):
            accs[(label, r.step)] = float(records[k]["test_accuracy"])
        win = choose(recs, criterion)
        grids[label] = GridResult(method=label, criterion=criterion, records=recs,
                                  step=None if win is None else win.step, winner=win,
                                  settings={**meths[label], "epochs": int(epochs)})
    settings = {"task": task, "epochs": int(epochs), "seed": int(seed), "criterion": criterion,
                "methods": {lab: {**st, "steps": list(st["steps"])} for lab, st in meths.items()}}
    study = TrainingStudy(labels=tuple(meths), grids=grids, accuracies=accs, settings=settings,
                          computed=len(specs) - n_loaded, loaded=n_loaded,
                          seconds=time.perf_counter() - t_start, out=out)
    if out is not None:
        write_json_atomic(os.path.join(out, "study.json"),
                          {"settings": settings, "cells": sorted(specs),
                           "chosen": {lab: grids[lab].step for lab in meths}})
        write_text_atomic(os.path.join(out, "summary.md"), study.to_markdown() + "\n")
        study.plot(os.path.join(out, "fig_best_loss.png"))
    return study
