r"""Block-coordinate gradient descent on the penalized formulation (20) (Frerix et al. 2018,
Prop. 1; long paper Sec. 3.2 and D.5).

From the forward states, one backward sweep over ``h(x_T) + rho/2 sum_t |phi_t(w_t,
x_{t-1}) - x_t|^2`` takes a gradient step on each block in the order ``x_T``, then
``w_t, x_{t-1}`` for ``t = T..1``::

    z_T     = x_T - tau grad h(x_T)
    w_t^+   = w_t - tau_w rho dphi_t/dw^T (x_t - z_t)
    z_{t-1} = x_{t-1} - tau rho dphi_t/dx^T (x_t - z_t)

On the displacements ``d_t = x_t - z_t`` these are GBP lines with steps ``tau`` (objective),
``tau rho`` (states) and ``tau_w rho`` (weights): ``d_t = tau (tau rho)^(T-t) dh/dx_t``, so
the pass is gradient back-propagation with per-stage weights ``(tau rho)^(T-t)`` (Frerix et
al.'s observation that back-propagation is this pass with ``tau rho = 1``). Replacing the
weights' gradient step by a proximal step gives ProxProp (:mod:`.proxprop`), a block
minimization gives target propagation (:mod:`.target_prop`).

The direction is ``g / (tau tau_w rho)``, the gradient when ``tau rho = 1``; ``penalized``
(plain steps) with ``step = tau_w`` is the sweep as written, ``w <- w - g``.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle, register_oracle_methods
from ..rules import GBP, BackwardSpec
from .base import OracleOutput, SpecOracle, first_bad_stage

__all__ = ["PenalizedOracle"]


class PenalizedOracle(SpecOracle):
    """``w -> (h(f(w)), g / (tau tau_w rho))`` by one block-coordinate gradient sweep on the
    penalized formulation. Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    tau_w : float
        Gradient step of the weight blocks (the method's step).
    tau : float
        Gradient step of the state blocks (the targets).
    rho : float
        The penalty of the formulation (20).
    """

    name = "penalized"

    def __init__(self, chain, tau_w: float = 1.0, *, tau: float = 1.0, rho: float = 1.0):
        super().__init__(chain)
        self.tau_w = v.positive_number("tau_w (the weights' step)", tau_w)
        self.tau = v.positive_number("tau (the targets' step)", tau)
        self.rho = v.positive_number("rho (the penalty)", rho)
        T = chain.horizon
        self.scale = self.tau * self.tau_w * self.rho
        reg_scale = None
        if getattr(chain, "regularizer", None) is not None:
            # GBP adds c grad r_t: c = tau_w rho, and the block's objective has r_t itself
            reg_scale = np.full(T, 1.0 / self.rho)
        self.spec = BackwardSpec((GBP, GBP, GBP), self.tau, np.full(T, self.tau * self.rho),
                                 np.full(T, self.tau_w * self.rho), reg_scale=reg_scale)
        # Without a regularizer the sweep's direction is the gradient with per-stage weights
        # (tau rho)^(T-t): one gradient pass (the compiled fast path of a control chain)
        # instead of the general rule kernel (1.24x the gradient pass at T = 1e5).
        self._weights = None
        if reg_scale is None:
            self._weights = chain.layout.expand(
                (self.tau * self.rho) ** np.arange(T - 1, -1, -1, dtype=float))

    def __call__(self, w, state=(), data=None):
        if self._weights is None or self.spec.diagnostics:
            return super().__call__(w, state, data)
        cost, X, G, lam0 = self.chain.value_and_gradient(w, data)
        d = G * self._weights
        return OracleOutput(cost=cost, direction=d, states=X, gradient=G,
                            failed_stage=first_bad_stage(self.chain.layout, G),
                            info={"lam0": lam0, "g": self.scale * d}), state


register_oracle("penalized", PenalizedOracle)
register_oracle_methods("penalized", "penalized", step_option="tau_w",
                        doc="block-coordinate gradient on the penalized formulation (20)")
register_method("penalized", oracle="penalized", optimizer="sgd", step_option="tau_w",
                doc="block-coordinate gradient sweep on the penalized formulation, "
                    "w <- w - g")
