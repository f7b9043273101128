"""Results of :func:`moreauctl.solve`: frozen objects with scipy-like field names."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional

import numpy as np

__all__ = ["History", "SolveResult", "STATUS", "first_nonfinite_state", "nonfinite_start_message"]

#: status code -> meaning. Negative codes are failures (``success=False``).
STATUS = {
    0: "completed the requested iterations",
    1: "stopped by the callback",
    2: "converged: direction norm below gtol",
    3: "line search could not decrease the cost (stationary up to rounding)",
    4: "converged: the solver's tolerance was met",
    -1: "diverged: the cost or the controls became non-finite",
    -2: "diverged: the cost blew up",
    -3: "the backward pass produced a non-finite value",
    -5: "stalled: no decrease even at the largest regularization",
}


def first_nonfinite_state(X) -> Optional[int]:
    """Index ``t`` of the first state ``x_t`` of ``X`` (``(T+1, nx)``, or a list of arrays)
    with a non-finite entry; None when every state is finite."""
    for t, x in enumerate(X):
        if not np.all(np.isfinite(np.asarray(x, dtype=float))):
            return t
    return None


def nonfinite_start_message(X) -> str:
    """Why a run cannot start: its initial rollout is not finite. Names the first non-finite
    state ``x_t`` and the stage ``t`` that produced it (``X`` as in
    :func:`first_nonfinite_state`; None when the states are unknown)."""
    head = "the initial rollout is not finite"
    if X is None:
        return f"{head}: the objective at the initial parameters is not finite"
    t = first_nonfinite_state(X)
    if t is None:
        return f"{head}: every state is finite but the objective h(x_T) is not"
    if t == 0:
        return f"{head}: the initial state x_0 is not finite"
    return (f"{head}: x_{t}, the output of stage {t} (row {t - 1} of w), is the first "
            f"non-finite state")


def _frozen_array(a) -> np.ndarray:
    arr = np.array(a, dtype=float, copy=True)
    arr.setflags(write=False)
    return arr


def _frozen_params(w):
    """A read-only copy of parameters: one array (control, ``(T, nw)``) or a list of tuples
    of arrays (networks)."""
    if isinstance(w, (list, tuple)):
        return [tuple(_frozen_array(a) for a in (p if isinstance(p, (list, tuple)) else (p,)))
                for p in w]
    return _frozen_array(w)


@dataclass(frozen=True)
class History:
    """Per-iteration record of a run (``K`` iterations done).

    Attributes
    ----------
    costs : ndarray, shape (K+1,)
        ``h(f(w^(k)))`` for ``k = 0..K``.
    steps : ndarray, shape (K,)
        Step multiplier accepted at iteration ``k`` (1 without line search).
    direction_norms : ndarray, shape (K+1,)
        Euclidean norm of the oracle's direction at ``w^(k)`` (NaN where not computed).
    times : ndarray, shape (K+1,)
        Seconds since the start of the run when ``costs[k]`` was known.
    evals : ndarray, shape (K+1,)
        Cumulative objective evaluations (forward passes, line-search trials included).
    epoch_ends : ndarray of int, shape (E+1,)
        Runs on mini-batches: the number of updates done when each epoch ended (0 first);
        ``costs`` then holds the mini-batch loss of each update (``K`` entries) and the
        other arrays are per update too. Empty for runs on fixed data.
    """

    costs: np.ndarray
    steps: np.ndarray
    direction_norms: np.ndarray
    times: np.ndarray
    evals: np.ndarray
    epoch_ends: np.ndarray = ()

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen_array(getattr(self, f.name)))
        ends = np.array(self.epoch_ends, dtype=np.int64)
        ends.setflags(write=False)
        object.__setattr__(self, "epoch_ends", ends)

    def min_so_far(self) -> np.ndarray:
        """Running minimum of ``costs`` (NaN counts as +inf), shape (K+1,)."""
        c = np.where(np.isfinite(self.costs), self.costs, np.inf)
        return np.minimum.accumulate(c)

    def to_dict(self) -> dict:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class SolveResult:
    """Outcome of :func:`moreauctl.solve`.

    Attributes
    ----------
    w : ndarray, shape (T, nw), or list of tuples of arrays
        Last parameters with a finite cost (the iterate of the last accepted step): controls
        ``(T, nw)``, or a network's ``[(W_1, b_1), ...]``.
    states : ndarray, shape (T+1, nx), or None
        States of the chain at ``w`` (None for runs on mini-batches).
    fun : float
        ``h(f(w))``.
    costs : ndarray
        Cost per iteration, starting at the initial parameters (``nit + 1`` entries), or,
        on mini-batches, the objective on the whole data at the start and after each epoch.
        On divergence the last entry is the non-finite or blown-up value that stopped the
        run.
    nit : int
        Iterations done.
    success : bool
    status : int
        See :data:`~moreauctl.result.STATUS`.
    message : str
    history : History
    method : str
    settings : mapping
        The settings used (method, step, gamma, ...), for reports and JSON.
    """

    w: np.ndarray
    states: np.ndarray
    fun: float
    costs: np.ndarray
    nit: int
    success: bool
    status: int
    message: str
    history: History
    method: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "w", _frozen_params(self.w))
        if self.states is not None and not isinstance(self.states, list):
            object.__setattr__(self, "states", _frozen_array(self.states))
        object.__setattr__(self, "costs", _frozen_array(self.costs))

    @property
    def x(self) -> np.ndarray:
        """Alias of ``w`` (scipy's name for the solution)."""
        return self.w

    @property
    def best_cost(self) -> float:
        """Smallest finite cost seen."""
        c = self.costs[np.isfinite(self.costs)]
        return float(c.min()) if c.size else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready dict with the same field names."""
        out = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "history"}
        out["history"] = self.history.to_dict()
        out["best_cost"] = _jsonable(self.best_cost)
        return out

    def __repr__(self):
        return (f"SolveResult(method={self.method!r}, success={self.success}, status={self.status}, "
                f"nit={self.nit}, fun={self.fun:.6g}, best_cost={self.best_cost:.6g}, "
                f"message={self.message!r})")


def _jsonable(v):
    """numpy -> plain Python; non-finite floats -> None would lose information, so we keep
    them as the strings 'nan', 'inf', '-inf'."""
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()] if v.ndim else _jsonable(v.item())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (np.floating, float)):
        f = float(v)
        if np.isnan(f):
            return "nan"
        if np.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v
