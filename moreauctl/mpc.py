"""Warm starts and receding horizon control: :func:`~moreauctl.shift` and
:func:`~moreauctl.mpc`.

Model predictive control re-solves the finite-horizon problem from the measured state at
every control period and applies the first control only::

    for k = 0..N-1:
        w^(k) = argmin_w  J_H(w; x_k)       (problem.horizon = H stages of dt, from x_k)
                started from shift(w^(k-1)) (a warm start: the tail of the last plan)
        u_k   = w^(k)[0]
        x_{k+1} = simulate(x_k, u_k)        (the plant; by default the problem's own stage)

Any method of :func:`moreauctl.solve` works inside the loop; ``"ddp"`` and ``"ilqr"``
converge in a few iterations from a warm start. The subproblems share the compiled kernels
(same stage and objective, another ``x0``), so nothing is compiled after the first step.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from . import _validate as v
from ._progress import progress
from .result import _frozen_array, _jsonable
from .solve import solve

__all__ = ["shift", "mpc", "MPCResult"]

FILLS = ("last", "zero")


def shift(w, n: int = 1, fill: str = "last") -> np.ndarray:
    """The warm start of the next receding-horizon solve: ``w`` advanced by ``n`` stages.

    Parameters
    ----------
    w : array_like, shape (T, nw)
        A plan (e.g. ``SolveResult.w``).
    n : int
        Stages to drop from the front, ``0 <= n <= T``.
    fill : {"last", "zero"}
        What the ``n`` new stages at the end hold: copies of the last control (stays in any
        box the plan was in), or zeros.

    Returns
    -------
    ndarray, shape (T, nw)
        ``concat(w[n:], fill)`` (a new array).
    """
    arr = np.asarray(w, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"w has shape {arr.shape}; expected (T, nw)")
    T = arr.shape[0]
    n = v.nonnegative_int("n", n)
    if n > T:
        raise ValueError(f"n must be <= T = {T} (the plan's length); got {n}")
    v.choice("fill", fill, FILLS)
    if T == 0:
        return arr.copy()
    tail = np.repeat(arr[-1:], n, axis=0) if fill == "last" else np.zeros((n, arr.shape[1]))
    return np.concatenate([arr[n:], tail], axis=0)


@dataclass(frozen=True)
class MPCResult:
    """A closed-loop run of :func:`~moreauctl.mpc` (``N`` control periods).

    Attributes
    ----------
    states : ndarray, shape (N+1, nx)
        Measured plant states ``x_0..x_N`` (the plant's state, without the accumulated
        running cost).
    controls : ndarray, shape (N, nw)
        Applied controls ``u_0..u_{N-1}``.
    times : ndarray, shape (N+1,)
        ``k * dt``.
    running_cost : float
        ``sum_k`` of the running cost over each period, integrated by the problem's scheme
        (0 without a ``stage_cost``).
    terminal_cost : float
        ``h(x_N)`` (the problem's terminal cost at the last state).
    predicted : ndarray, shape (N,)
        Optimal cost of each subproblem as solved.
    iterations : ndarray of int, shape (N,)
        Iterations of each solve.
    solve_seconds : ndarray, shape (N,)
        Wall time of each solve.
    statuses : ndarray of int, shape (N,)
    success : bool
        Every solve succeeded.
    message : str
    plans : ndarray, shape (N, H+1, nx) or None
        With ``keep_plans``: the predicted state trajectory of every solve.
    settings : mapping
    """

    states: np.ndarray
    controls: np.ndarray
    times: np.ndarray
    running_cost: float
    terminal_cost: float
    predicted: np.ndarray
    iterations: np.ndarray
    solve_seconds: np.ndarray
    statuses: np.ndarray
    success: bool
    message: str
    plans: Optional[np.ndarray] = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for name in ("states", "controls", "times", "predicted", "solve_seconds"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name)))
        for name in ("iterations", "statuses"):
            arr = np.array(getattr(self, name), dtype=np.int64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.plans is not None:
            object.__setattr__(self, "plans", _frozen_array(self.plans))

    @property
    def cost(self) -> float:
        """Closed-loop cost: ``running_cost + terminal_cost``."""
        return self.running_cost + self.terminal_cost

    def to_dict(self) -> dict:
        d = {k: _jsonable(getattr(self, k)) for k in (
            "states", "controls", "times", "running_cost", "terminal_cost", "predicted",
            "iterations", "solve_seconds", "statuses", "success", "message", "settings")}
        d["cost"] = _jsonable(self.cost)
        return d


def _model_step(problem):
    """``(x, c, u) -> (x_next, c_next)`` by the problem's own stage (the chain's state is the
    plant's state, plus the accumulated running cost when there is one)."""
    nxp = problem.plant.nx
    augmented = problem.nx > nxp

    def step(x, c, u):
        z = np.concatenate([x, [c]]) if augmented else x
        zn = np.asarray(problem.stage(u, z), dtype=float).ravel()
        return zn[:nxp], (float(zn[nxp]) if augmented else 0.0)
    return step


def mpc(problem, steps: int, *, method: str = "ddp", iters: Optional[int] = None,
        solver_options: Optional[Mapping[str, Any]] = None,
        simulate: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None,
        warm_start: bool = True, fill: str = "last", keep_plans: bool = False,
        verbose: bool = True, **solve_kwargs) -> MPCResult:
    """Receding-horizon control of ``problem`` for ``steps`` periods of ``problem.dt``.

    Parameters
    ----------
    problem : ControlProblem
        The prediction model: horizon ``H = problem.horizon`` stages of ``dt``, costs,
        bounds; ``problem.x0`` is the first measured state.
    steps : int
        Closed-loop periods ``N >= H`` (a horizon longer than the simulation is an error:
        the plans would reach past its end).
    method : str
        Any method of :func:`moreauctl.solve` (default ``"ddp"``).
    iters, solver_options, **solve_kwargs
        Passed to every :func:`moreauctl.solve` call (``step``, ``gamma`` for first-order
        methods, ...). Unknown keywords raise there.
    simulate : callable, optional
        ``simulate(x, u) -> x_next`` on the plant's state ``(nx,)`` (a "true" plant with
        model mismatch or disturbances); default: the problem's own stage. The running
        cost of the closed loop is then integrated along the model's step from the
        measured state.
    warm_start : bool
        Start each solve from :func:`shift` of the previous plan (else from the default
        start, zero projected onto the bounds).
    fill : {"last", "zero"}
        How :func:`shift` fills the new last stage.
    keep_plans : bool
        Keep every solve's predicted states (``N * (H+1) * nx`` floats).
    verbose : bool
        Progress bar over the periods.

    Returns
    -------
    MPCResult
    """
    for attr in ("with_horizon", "plant", "stage"):
        if not hasattr(problem, attr):
            raise TypeError(f"mpc needs a ControlProblem; got {type(problem).__name__}")
    N = v.positive_int("steps", steps)
    H = problem.horizon
    if H > N:
        raise ValueError(f"the MPC horizon (problem.horizon = {H} stages) is longer than the "
                         f"simulation (steps = {N}); use steps >= {H} or a shorter horizon")
    v.choice("fill", fill, FILLS)
    if simulate is not None and not callable(simulate):
        raise TypeError(f"simulate must be a callable (x, u) -> x_next; got "
                        f"{type(simulate).__name__}")
    nxp, nw = problem.plant.nx, problem.nw
    model = _model_step(problem)
    X = np.empty((N + 1, nxp))
    U = np.empty((N, nw))
    X[0] = problem.x0
    predicted, its, secs, stats = [], [], [], []
    plans = [] if keep_plans else None
    running = 0.0
    w0 = None
    bar = progress(N, verbose, f"mpc {method} H={H}")
    try:
        for k in range(N):
            sub = problem if k == 0 else problem.with_horizon(H, x0=X[k])
            t0 = time.perf_counter()
            res = solve(sub, method, iters=iters, w0=w0, verbose=False,
                        solver_options=solver_options, **solve_kwargs)
            secs.append(time.perf_counter() - t0)
            predicted.append(res.fun)
            its.append(res.nit)
            stats.append(res.status)
            if plans is not None:
                _, Xp = sub.chain.forward(np.asarray(res.w).reshape(-1))
                plans.append(Xp)
            u = np.array(res.w[0], dtype=float)
            U[k] = u
            x_model, c = model(X[k], 0.0, u)
            running += c
            if simulate is None:
                X[k + 1] = x_model
            else:
                xn = np.asarray(simulate(X[k].copy(), u.copy()), dtype=float).ravel()
                if xn.shape != (nxp,) or not np.all(np.isfinite(xn)):
                    raise ValueError(f"simulate returned {xn!r}; expected {nxp} finite "
                                     "numbers (the plant's next state)")
                X[k + 1] = xn
            w0 = shift(res.w, 1, fill) if warm_start else None
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{res.fun:.4g}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    xN = np.concatenate([X[N], [0.0]]) if problem.nx > nxp else X[N]
    terminal = float(problem.objective(xN))
    ok = all(s >= 0 for s in stats)
    message = (f"{N} periods of {problem.dt} with {method}, horizon {H}: "
               + ("every solve succeeded" if ok else
                  f"{sum(s < 0 for s in stats)} solves failed (statuses {sorted(set(stats))})"))
    if not math.isfinite(terminal):
        ok = False
    settings = {"method": method, "horizon": H, "dt": problem.dt, "steps": N,
                "warm_start": warm_start, "fill": fill, "iters": iters,
                "problem": problem.name, "simulate": None if simulate is None else
                getattr(simulate, "__name__", "callable")}
    return MPCResult(states=X, controls=U, times=np.arange(N + 1) * problem.dt,
                     running_cost=running, terminal_cost=terminal,
                     predicted=np.asarray(predicted), iterations=np.asarray(its),
                     solve_seconds=np.asarray(secs), statuses=np.asarray(stats), success=ok,
                     message=message, plans=None if plans is None else np.asarray(plans),
                     settings=settings)
