"""Gradient back-propagation (Algo 3-4), compiled."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .base import OracleOutput

STAGE_WEIGHTS = ("none", "geometric")


def stage_weight_vector(T: int, stage_weights: Optional[str], gamma: Optional[float]):
    """Per-stage multipliers of the gradient, shape (T,), or None.

    ``"geometric"``: row ``t`` (the paper's stage ``t+1``) is scaled by ``gamma^(T-t)``,
    i.e. stage ``s`` by ``gamma^(T-s+1)``: the same per-stage steps as Moreau GD's paper
    schedule, without the prox. This is the ablation that separates what the weighting
    does from what the prox does.
    """
    if stage_weights in (None, "none"):
        if gamma is not None:
            raise ValueError("gamma is only used with stage_weights='geometric' for gradient methods")
        return None
    if stage_weights != "geometric":
        raise ValueError(f"unknown stage_weights {stage_weights!r}; choose one of {list(STAGE_WEIGHTS)}")
    if gamma is None:
        raise ValueError("stage_weights='geometric' needs gamma (e.g. gamma=0.5)")
    g = float(gamma)
    if not (np.isfinite(g) and g > 0):
        raise ValueError(f"gamma must be a finite number > 0; got {gamma!r}")
    return g ** np.arange(T, 0, -1, dtype=float)


class GradientOracle:
    """``w -> (h(f(w)), grad)`` by gradient back-propagation.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    weights : ndarray, shape (T,), optional
        Multiply row ``t`` of the direction by ``weights[t]`` (see
        :func:`stage_weight_vector`); the exact gradient stays in ``OracleOutput.gradient``.
    """

    name = "gradient"

    def __init__(self, chain, weights: Optional[np.ndarray] = None):
        self.chain = chain
        self.weights = None if weights is None else np.asarray(weights, dtype=float)

    def objective(self, w: np.ndarray) -> float:
        return self.chain.objective(w)

    def __call__(self, w: np.ndarray) -> OracleOutput:
        cost, X, G, lam0 = self.chain.value_and_gradient(w)
        d = G if self.weights is None else G * self.weights[:, None]
        # a finite sum proves every entry finite and costs half of np.isfinite at small T;
        # an overflowing sum of finite entries only sends us to the exact check
        bad = None
        if not math.isfinite(G.sum()) and not np.all(np.isfinite(G)):
            bad = int(np.nonzero(~np.isfinite(G).all(axis=1))[0].max())
        return OracleOutput(cost=cost, direction=d, states=X, gradient=G, failed_stage=bad,
                            info={"lam0": lam0})
