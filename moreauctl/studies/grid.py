"""Step-size grids: run a method for each step, pick the best by a stated criterion.

:func:`grid_search` runs ``solve(problem, method, step, iters)`` for every step of a grid
(in this process or on any executor) and keeps one :class:`StepRecord` per run; the
winner is the lowest score under a criterion of :mod:`.metrics` (``"best"``, ``"final"``,
``"auc"``), ties going to the smaller step. A run that failed -- diverged, or a non-finite
backward pass -- never wins, whatever its score.

Sweeps (:mod:`moreauctl.studies.sweep`) build the same :class:`GridResult` from cells computed elsewhere.
This module depends only on :mod:`.metrics`, :mod:`.executors` and the solver.
"""
from __future__ import annotations

import math
import pickle
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._validate import nonnegative_int, positive_number
from ..result import SolveResult
from ..solve import solve
from .executors import runs_in_process
from .metrics import auc_of_costs, best_cost, check_criterion, min_so_far

__all__ = ["powers_of_two", "check_exponent", "EXPONENT_RANGE", "StepRecord", "GridResult", "grid_search", "format_step", "choose"]

#: criterion -> the StepRecord property it minimizes
_SCORED_BY = {"best": "best_cost", "final": "final_cost", "auc": "auc"}


#: exponents ``e`` for which ``2**e`` is a finite float64 > 0 (subnormals included)
EXPONENT_RANGE = (-1074, 1023)


def check_exponent(name: str, value) -> int:
    """An integer exponent ``e`` of :data:`~moreauctl.studies.grid.EXPONENT_RANGE` (``2**e`` a finite float > 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer exponent; got {value!r}")
    if not EXPONENT_RANGE[0] <= value <= EXPONENT_RANGE[1]:
        raise ValueError(f"step exponent {name} must be in [{EXPONENT_RANGE[0]}, "
                         f"{EXPONENT_RANGE[1]}] (2^{name} a finite float > 0); got {value}")
    return int(value)


def powers_of_two(lo: int, hi: int) -> Tuple[float, ...]:
    """``(2**lo, 2**(lo+1), ..., 2**hi)`` as floats (both ends included); the exponents must
    lie in :data:`~moreauctl.studies.grid.EXPONENT_RANGE`."""
    check_exponent("lo", lo)
    check_exponent("hi", hi)
    if hi < lo:
        raise ValueError(f"powers_of_two needs lo <= hi; got lo={lo}, hi={hi}")
    return tuple(2.0 ** e for e in range(int(lo), int(hi) + 1))


def format_step(step: Optional[float]) -> str:
    """``2^e`` for powers of two, else ``%.4g``; ``-`` for None."""
    if step is None or not math.isfinite(step):
        return "-"
    m, e = math.frexp(step)
    if m == 0.5:
        return f"2^{e - 1}"
    return f"{step:.4g}"


@dataclass(frozen=True)
class StepRecord:
    """One run of a grid: the step, how it ended, and its cost curve.

    Attributes
    ----------
    step : float
    success : bool
        False when the run diverged or failed (such runs never win a grid).
    status : int
    message : str
    nit : int
    costs : ndarray, shape (nit+1,) (one more entry on divergence)
    seconds : float
        Wall time of the run.
    iters : int
        Iterations requested ``K``.
    """

    step: float
    success: bool
    status: int
    message: str
    nit: int
    costs: np.ndarray
    seconds: float
    iters: int

    def __post_init__(self):
        c = np.array(self.costs, dtype=float, copy=True)
        c.setflags(write=False)
        object.__setattr__(self, "costs", c)

    @property
    def best_cost(self) -> float:
        return best_cost(self.costs)

    @property
    def final_cost(self) -> float:
        """Last cost of a successful run; for a failed run the last finite cost before the
        failure."""
        if self.success:
            return float(self.costs[-1])
        c = self.costs[np.isfinite(self.costs)]
        return float(c[-1]) if c.size else math.nan

    def min_so_far(self) -> np.ndarray:
        return min_so_far(self.costs)

    @property
    def auc(self) -> float:
        return auc_of_costs(self.costs, self.iters) if self.success else math.inf

    def score(self, criterion: str) -> float:
        """The value minimized by ``criterion`` (see :mod:`.metrics`); ``inf`` for failed
        runs."""
        attr = _SCORED_BY[check_criterion(criterion)]
        if not self.success:
            return math.inf
        v = getattr(self, attr)
        return v if math.isfinite(v) else math.inf

    @classmethod
    def from_result(cls, step: float, res: SolveResult, iters: int, seconds: float) -> "StepRecord":
        return cls(step=float(step), success=bool(res.success), status=int(res.status),
                   message=str(res.message), nit=int(res.nit), costs=res.costs,
                   seconds=float(seconds), iters=int(iters))


def choose(records: Sequence[StepRecord], criterion: str) -> Optional[StepRecord]:
    """The winning record (lowest score; ties go to the smaller step), or None when every
    run failed."""
    check_criterion(criterion)
    ok = [r for r in records if r.success and math.isfinite(r.score(criterion))]
    if not ok:
        return None
    return min(ok, key=lambda r: (r.score(criterion), r.step))


@dataclass(frozen=True)
class GridResult:
    """Outcome of a step-size grid for one method on one problem.

    Attributes
    ----------
    method : str
        The method (or, in a sweep, the method's label).
    criterion : str
    records : tuple of StepRecord
        One per step, in grid order.
    step : float or None
        The chosen step; None when every run failed.
    winner : StepRecord or None
        The record of the chosen step.
    result : SolveResult or None
        The winning run's full result (:func:`grid_search`); None in sweeps, which keep
        only the records on disk, and when every run failed.
    settings : mapping
        The solver settings shared by the grid (method, iters, gamma, ...).
    """

    method: str
    criterion: str
    records: Tuple[StepRecord, ...]
    step: Optional[float]
    winner: Optional[StepRecord]
    result: Optional[SolveResult] = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> Tuple[float, ...]:
        return tuple(r.step for r in self.records)

    @property
    def best_cost(self) -> float:
        return self.winner.best_cost if self.winner is not None else math.nan

    @property
    def final_cost(self) -> float:
        return self.winner.final_cost if self.winner is not None else math.nan

    @property
    def n_failed(self) -> int:
        return sum(not r.success for r in self.records)

    @property
    def seconds(self) -> float:
        """Wall time of all runs of the grid (summed)."""
        return float(sum(r.seconds for r in self.records))

    def summary(self) -> str:
        lines = [f"{self.method}: criterion {self.criterion!r}, chosen step "
                 f"{format_step(self.step)} ({self.n_failed}/{len(self.records)} runs failed)"]
        for r in self.records:
            mark = "*" if (self.winner is not None and r.step == self.winner.step) else " "
            lines.append(f" {mark} step {format_step(r.step):>7}  best {r.best_cost:.4g}  "
                         f"final {r.final_cost:.4g}  auc {r.auc:.4g}  "
                         f"{'ok' if r.success else 'FAILED: ' + r.message}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"GridResult(method={self.method!r}, criterion={self.criterion!r}, "
                f"step={format_step(self.step)}, best_cost={self.best_cost:.6g}, "
                f"failed={self.n_failed}/{len(self.records)})")


def _timed_solve(problem, method, step, iters, kwargs):
    t0 = time.perf_counter()
    res = solve(problem, method=method, step=step, iters=iters, verbose=False, **kwargs)
    return res, time.perf_counter() - t0


def _check_shippable(problem, executor):
    """A process-based executor must pickle the problem; say so clearly if it cannot."""
    if runs_in_process(executor):
        return
    try:
        pickle.dumps(problem)
    except Exception as e:  # CasADi raises a bare Exception for SX symbols
        raise TypeError(
            f"grid_search cannot send this problem to {type(executor).__name__} workers: it "
            f"does not pickle ({str(e).splitlines()[0]}). Use a ThreadPoolExecutor (the "
            "kernels release the GIL), or horizon_sweep with a plant name or a top-level "
            "make_problem function, which builds the problem inside each worker.") from None


def grid_search(problem, method: str, steps: Sequence[float] = powers_of_two(-10, 10),
                iters: Optional[int] = None, criterion: str = "best",
                executor: Optional[Executor] = None, *, epochs: Optional[int] = None,
                **solve_kwargs) -> GridResult:
    """Run ``solve(problem, method, step, iters, **solve_kwargs)`` for every step and choose.

    Parameters
    ----------
    problem : ControlProblem
    method : str
        Any first-order method of :func:`moreauctl.solve`.
    steps : sequence of float
        The grid (default ``2^-10 .. 2^10``).
    iters : int, optional
        Iterations ``K`` of every run (default 50), for problems without data.
    criterion : {"best", "final", "auc"}
        See :mod:`.metrics`. Failed runs never win.
    executor : concurrent.futures.Executor, optional
        Runs the steps concurrently. A ``ThreadPoolExecutor`` works on any problem (the
        compiled kernels release the GIL); a process-based executor needs a picklable
        problem. For many problems or horizons use :func:`~moreauctl.studies.horizon_sweep`, which sends only
        names and settings to workers.
    epochs : int, optional
        For problems with data (networks): epochs of every run instead of ``iters``; the
        cost curves then have one entry per epoch (``K = epochs``). For many methods, cells
        on disk and Dask, see :func:`~moreauctl.studies.training_grid`.
    **solve_kwargs
        Passed to :func:`moreauctl.solve` (``gamma``, ``stage_weights``, ``line_search``,
        ``seed``...); unknown names raise there.

    Returns
    -------
    GridResult
        With ``result`` the winning :class:`~moreauctl.SolveResult` (None if every run failed).
    """
    check_criterion(criterion)
    if method == "ipopt":
        raise ValueError("grid_search is for first-order methods; IPOPT has no step size")
    steps = tuple(positive_number("every step", s) for s in steps)
    if not steps:
        raise ValueError("steps is empty; expected at least one step size")
    if "verbose" in solve_kwargs:
        raise ValueError("grid_search runs are always silent; do not pass verbose")
    if epochs is not None:
        if iters is not None:
            raise ValueError("give iters (problems without data) or epochs (networks), not both")
        solve_kwargs["epochs"] = nonnegative_int("epochs", epochs)
        iters = solve_kwargs["epochs"]
        run_iters = None
    else:
        iters = 50 if iters is None else nonnegative_int("iters", iters)
        run_iters = iters
    if executor is None:
        outs = [_timed_solve(problem, method, s, run_iters, solve_kwargs) for s in steps]
    else:
        _check_shippable(problem, executor)
        futs = [executor.submit(_timed_solve, problem, method, s, run_iters, solve_kwargs)
                for s in steps]
        outs = [f.result() for f in futs]
    records = tuple(StepRecord.from_result(s, res, iters, sec) for s, (res, sec) in zip(steps, outs))
    win = choose(records, criterion)
    result = None
    if win is not None:
        result = outs[steps.index(win.step)][0]
    settings = {"method": method, "iters": iters, **solve_kwargs}
    return GridResult(method=method, criterion=criterion, records=records,
                      step=None if win is None else win.step, winner=win, result=result,
                      settings=settings)
