"""Gradient back-propagation (Algo 3-4): the gradient oracle."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle
from .base import Oracle, OracleOutput, first_bad_stage, gamma_per_stage

__all__ = ["GradientOracle", "stage_weight_vector", "STAGE_WEIGHTS"]

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
    v.choice("stage_weights", stage_weights, STAGE_WEIGHTS)
    if gamma is None:
        raise ValueError("stage_weights='geometric' needs gamma (e.g. gamma=0.5)")
    g = v.positive_number("gamma", gamma)
    return g ** np.arange(T, 0, -1, dtype=float)


class GradientOracle(Oracle):
    """``w -> (h(f(w)), grad)`` by gradient back-propagation. Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    weights : ndarray, shape (T,), optional
        Multiply stage ``t``'s direction by ``weights[t]`` (see
        :func:`stage_weight_vector`); the exact gradient stays in ``OracleOutput.gradient``.
    """

    name = "gradient"

    def __init__(self, chain, weights: Optional[np.ndarray] = None):
        super().__init__(chain)
        self.weights = None
        if weights is not None:
            wts = v.finite_array("weights", weights, (chain.horizon,))
            self.weights = chain.layout.expand(wts)

    @classmethod
    def from_options(cls, chain, *, stage_weights: Optional[str] = None,
                     gamma: Optional[float] = None, gamma_time: Optional[float] = None,
                     dt: Optional[float] = None) -> "GradientOracle":
        """The registry's factory: ``stage_weights="geometric"`` with ``gamma`` (per stage,
        or per ``gamma_time`` seconds: see :func:`~moreauctl.oracles.base.gamma_per_stage`)."""
        if gamma_time is not None and stage_weights in (None, "none"):
            raise ValueError("gamma_time is only used with stage_weights='geometric' for "
                             "gradient methods")
        g = gamma_per_stage(gamma, gamma_time, dt, chain)
        return cls(chain, stage_weight_vector(chain.horizon, stage_weights, g))

    def __call__(self, w, state=(), data=None):
        cost, X, G, lam0 = self.chain.value_and_gradient(w, data)
        d = G if self.weights is None else G * self.weights
        return OracleOutput(cost=cost, direction=d, states=X, gradient=G,
                            failed_stage=first_bad_stage(self.chain.layout, G),
                            info={"lam0": lam0}), state


register_oracle("gradient", GradientOracle.from_options)
for _name, _opt, _doc in (("gd", "sgd", "gradient descent (fixed step, or Armijo line search)"),
                          ("sgd", "sgd", "stochastic gradient descent (GD on full batches)"),
                          ("momentum", "momentum", "heavy-ball momentum on the gradient"),
                          ("nesterov", "nesterov", "Nesterov momentum on the gradient"),
                          ("rmsprop", "rmsprop", "RMSprop on the gradient"),
                          ("adam", "adam", "Adam on the gradient")):
    register_method(_name, oracle="gradient", optimizer=_opt, doc=_doc)
