"""Numbers read off cost curves: minimum so far, area under it, normalized gap, criteria.

Pure functions of arrays, nothing here runs a solver. Grids (:mod:`.grid`) rank steps with
them, reports (:mod:`.report`) tabulate them, sweeps (:mod:`moreauctl.studies.sweep`) plot them.

A cost curve is ``c_k = h(f(w^(k)))`` for ``k = 0..K'``, shape ``(K'+1,)``; a run asked for
``K`` iterations may have stopped early (``K' < K``), successfully (``gtol``, a callback) or
not (divergence: its last entry is then non-finite or blown up).

Criteria (lower is better; how a grid turns a curve into a score, see
:meth:`moreauctl.studies.StepRecord.score`; a failed run -- diverged, or a non-finite
backward pass -- never wins, whatever its score):

``"best"``
    The best cost reached in ``K`` iterations, ``min_k c_k``.
``"final"``
    The cost after the last iteration, ``c_K``.
``"auc"``
    The area under the minimum-so-far curve ``y_k = min_{i<=k} c_i`` (the selection rule of
    the long paper's F.2: "the parameters with the smallest area under the optimization
    curve after 50 iterations"). Normalized so it reads as a fraction: the trapezoidal area
    over ``k = 0..K`` divided by ``K |c_0|``, i.e. the mean of ``y_k / |c_0|`` over the
    run. It lies in ``[0, 1]`` for non-negative costs, and since every step of a grid starts
    from the same ``c_0`` and runs the same ``K`` it ranks steps exactly as the raw area does.
    A run that stopped early *successfully* is extended at its last value up to ``K``.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .._validate import choice

__all__ = ["CRITERIA", "check_criterion", "min_so_far", "best_cost", "auc_of_costs",
           "normalized_gap", "first_at_or_below"]

#: How a step is chosen from a grid: by the best cost reached, the final cost, or the
#: normalized area under the min-so-far curve (:func:`~moreauctl.studies.auc_of_costs`).
CRITERIA = ("best", "final", "auc")


def check_criterion(criterion: str) -> str:
    """``criterion`` if it is one of :data:`~moreauctl.studies.CRITERIA`, else a ValueError listing them."""
    return choice("criterion", criterion, CRITERIA)


def min_so_far(costs) -> np.ndarray:
    """Running minimum ``y_k = min_{i<=k} c_i``, shape (K'+1,); NaN counts as ``+inf``."""
    c = np.asarray(costs, dtype=float)
    c = np.where(np.isfinite(c), c, np.inf)
    return np.minimum.accumulate(c) if c.size else c


def best_cost(costs) -> float:
    """Smallest finite cost of the curve (NaN when none is finite)."""
    c = np.asarray(costs, dtype=float)
    c = c[np.isfinite(c)]
    return float(c.min()) if c.size else math.nan


def auc_of_costs(costs, iters: Optional[int] = None) -> float:
    """Normalized area under the min-so-far curve of ``costs`` (see the module docstring).

    Parameters
    ----------
    costs : array_like, shape (K'+1,)
    iters : int, optional
        ``K``: the curve is extended at its last value up to ``K`` iterations.

    Returns
    -------
    float
        ``inf`` when the first cost is not finite.
    """
    y = min_so_far(costs)
    if y.size == 0 or not np.isfinite(y[0]):
        return math.inf
    K = max(int(iters) if iters is not None else y.size - 1, y.size - 1)
    if y.size < K + 1:
        y = np.concatenate([y, np.full(K + 1 - y.size, y[-1])])
    if K == 0:
        return float(y[0] / abs(y[0])) if y[0] != 0 else 0.0
    area = float(np.sum(0.5 * (y[:-1] + y[1:])))
    scale = K * abs(y[0]) if y[0] != 0 else K
    return area / scale


def normalized_gap(c, c0: float, c_star: float) -> np.ndarray:
    """``(c - c*) / (c0 - c*)`` elementwise: 1 = no progress from ``c0``, 0 = optimal.

    NaN everywhere when ``c*`` or ``c0`` is not finite, or ``c0 == c*``.
    """
    c = np.asarray(c, dtype=float)
    if not (math.isfinite(c_star) and math.isfinite(c0)) or c0 == c_star:
        return np.full(c.shape, math.nan)
    return (c - c_star) / (c0 - c_star)


def first_at_or_below(values, target: float) -> Optional[int]:
    """First index ``k`` with ``values[k] <= target`` (NaN never counts), or None."""
    v = np.asarray(values, dtype=float)
    hit = np.nonzero(np.isfinite(v) & (v <= target))[0]
    return int(hit[0]) if hit.size else None
