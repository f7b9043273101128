"""What every oracle is and returns.

An oracle runs a forward pass and one backward pass of a chain and proposes a direction for
every parameter. It may keep state across calls (running averages, multipliers):

- ``init(w) -> state``;
- ``oracle(w, state, data=None) -> (OracleOutput, state)``;
- ``objective(w, data=None) -> float`` (line searches).

``w`` is the chain's flat parameter vector ``(n,)``; ``data`` is the chain's data argument
(``None`` for control, a mini-batch for networks).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from .. import _validate as v

__all__ = ["OracleOutput", "Oracle", "SpecOracle", "first_bad_stage", "gamma_per_stage"]


@dataclass(frozen=True)
class OracleOutput:
    """What one oracle call returns.

    Attributes
    ----------
    cost : float
        ``h(f(w, x0); data)``.
    direction : ndarray, shape (n,)
        **The oracle's replacement for the gradient, in gradient units**, flat like ``w``:
        optimizers scale it by their learning rate, and the plain method is
        ``w <- w - step * direction``. For the gradient oracle it is the gradient (times the
        per-stage weights, if any); for the Moreau oracle it is ``g / alpha``, with ``g``
        Algo 2's directions (so ``alpha * direction = g`` is one Moreau GD step, and the
        direction tends to the ``gamma``-weighted gradient as ``alpha -> 0``).
    states : ndarray (T+1, nx), list, or None
        States of the forward pass (what the chain's ``forward`` returns).
    gradient : ndarray, shape (n,), or None
        The exact gradient when the oracle computed it (line searches use it).
    failed_stage : int or None
        Row of the first stage whose backward output was not finite (``T`` = objective).
    info : mapping
        Oracle-specific diagnostics (``lam0``, subproblem residuals, ...).
    """

    cost: float
    direction: np.ndarray
    states: Any
    gradient: Optional[np.ndarray] = None
    failed_stage: Optional[int] = None
    info: Mapping[str, Any] = field(default_factory=dict)


class Oracle:
    """Base class: a stateless oracle over ``chain`` (subclasses implement ``__call__``)."""

    name = ""

    def __init__(self, chain):
        self.chain = chain

    def init(self, w: np.ndarray):
        """Initial state (empty for a stateless oracle)."""
        return ()

    def __call__(self, w: np.ndarray, state=(), data=None):
        raise NotImplementedError

    def objective(self, w: np.ndarray, data=None) -> float:
        return self.chain.objective(w, data)

    def __repr__(self):
        return f"{type(self).__name__}({self.chain!r})"


class SpecOracle(Oracle):
    """An oracle whose backward pass is the chain's ``forward_backward`` with one fixed
    :class:`~moreauctl.rules.BackwardSpec` (a rule and a step per line of Algo 2): the
    Moreau oracle and its cousins (ProxProp, target propagation, augmented Lagrangian,
    penalized passes) differ only in their rules and steps. Stateless.

    Subclasses set ``self.spec`` and ``self.scale`` (what the pass's directions ``g`` are
    divided by to be in gradient units).
    """

    spec = None
    scale = 1.0

    @property
    def rules(self) -> np.ndarray:
        """Kernel codes of the three lines' rules (int64, (3,)), None without a kernel."""
        return self.spec.codes

    def __call__(self, w, state=(), data=None):
        cost, X, b = self.chain.forward_backward(w, data, self.spec)
        d = b.direction if self.scale == 1.0 else b.direction / self.scale
        info = {"lam0": b.lam0, "g": b.direction}
        if self.spec.diagnostics:
            info["residuals"] = b.residuals
            if b.costates is not None:
                info["costates"] = b.costates
        return OracleOutput(cost=cost, direction=d, states=X, gradient=None,
                            failed_stage=b.failed_stage, info=info), state


def first_bad_stage(layout, G: np.ndarray) -> Optional[int]:
    """Row of the stage closest to the objective (the first a backward pass reaches) with a
    non-finite entry in ``G`` (n,), or None."""
    # a finite sum proves every entry finite and costs half of np.isfinite at small T; an
    # overflowing sum of finite entries only sends us to the exact check
    if math.isfinite(G.sum()) or np.all(np.isfinite(G)):
        return None
    last = int(np.nonzero(~np.isfinite(G))[0].max())
    return int(np.searchsorted(layout.offsets, last, side="right") - 1)


def gamma_per_stage(gamma, gamma_time: Optional[float] = None, dt: Optional[float] = None,
                    chain=None):
    """The per-stage ``gamma`` of a decay ``gamma`` per ``gamma_time`` seconds:
    ``gamma ** (dt / gamma_time)`` (``gamma`` itself when ``gamma_time`` is None).

    ``dt`` defaults to the chain's time step (``chain.dt``, set by
    :func:`moreauctl.compile_chain` from the problem).
    """
    if gamma_time is None:
        if dt is not None:
            raise ValueError("dt is only used with gamma_time (gamma per unit of time)")
        return gamma
    gt = v.positive_number("gamma_time (seconds)", gamma_time)
    if gamma is None:
        raise ValueError("gamma_time needs gamma (the decay per gamma_time seconds)")
    g = v.positive_number("gamma", gamma)
    if dt is None:
        dt = getattr(chain, "dt", None)
        if dt is None:
            raise ValueError("gamma_time (gamma per unit of time) needs the time step: this "
                             "chain has none (pass dt=)")
    d = v.positive_number("dt", dt)
    return g ** (d / gt)
