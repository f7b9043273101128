from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np


@dataclass(frozen=True)
class OracleOutput:
    """What one oracle call returns.

    Attributes
    ----------
    cost : float
        ``h(f(w, x0))``.
    direction : ndarray, shape (T, nw)
        The direction for each ``w_t``; the plain update is ``w - step * direction`` for a
        gradient and ``w - direction`` for a Moreau direction (which contains its step).
    states : ndarray, shape (T+1, nx)
    gradient : ndarray, shape (T, nw) or None
        The exact gradient when the oracle computed it (line searches use it).
    failed_stage : int or None
        Row of the first stage whose backward output was not finite (``T`` = objective).
    info : mapping
        Oracle-specific diagnostics (e.g. subproblem residuals).
    """

    cost: float
    direction: np.ndarray
    states: np.ndarray
    gradient: Optional[np.ndarray] = None
    failed_stage: Optional[int] = None
    info: Mapping[str, Any] = field(default_factory=dict)
