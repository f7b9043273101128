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

__all__ = ["OracleOutput", "Oracle", "first_bad_stage"]


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


def first_bad_stage(layout, G: np.ndarray) -> Optional[int]:
    """Row of the stage closest to the objective (the first a backward pass reaches) with a
    non-finite entry in ``G`` (n,), or None."""
    # a finite sum proves every entry finite and costs half of np.isfinite at small T; an
    # overflowing sum of finite entries only sends us to the exact check
    if math.isfinite(G.sum()) or np.all(np.isfinite(G)):
        return None
    last = int(np.nonzero(~np.isfinite(G))[0].max())
    return int(np.searchsorted(layout.offsets, last, side="right") - 1)
