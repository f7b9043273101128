r"""Stochastic virtual gradients (Li & Shu, *SVGD: a virtual gradients descent method*,
Alg. 1): an oracle with state.

For every stage whose parameters enter through an affine map, ``x_t = sigma(A(w_t, x_{t-1}))``
(dense and convolution layers: :class:`moreauctl.nn.layers.AffineActivation`), the weights
receive the affine map's transposed Jacobian applied to a *rescaled* output-side signal,
while the states, and every other stage, back-propagate the plain costate:

.. code-block:: text

    lam_z,t  = sigma'(z_t) * lam_t                     (costate of z_t = A(w_t, x_{t-1}), (m, ...))
    r_t     <- rho r_t + (1 - rho) mean_i (m lam_z,t[i])^2      (one entry per output unit)
    d_t      = dA/dw^T ( s lam_z,t / sqrt(r_t + eps) )          (W and b alike)
    lam_{t-1} = dA/dx^T lam_z,t                                  (plain back-propagation)

and the direction (in gradient units) is ``d`` plus the gradient of the chain's
regularizer, if any. ``"svgd"`` is this oracle with plain steps, ``w <- w - step * d``
(``alpha`` of Alg. 1 is ``step``); ``svgd-momentum``, ``svgd-adam``... feed ``d`` to the
other update rules.

The convention (the paper's Alg. 1, read literally; the authors' public code differs)
---------------------------------------------------------------------------------------
- **Per-sample signals.** Alg. 1 accumulates ``(1/m) sum_tau (grad_sigma J^(tau))^2`` with
  ``J^(tau)`` the loss of sample ``tau``. The chain's objective is the batch *mean*, whose
  costate is ``lam_z[tau] = grad_sigma J^(tau) / m``, so ``r`` accumulates
  ``(m lam_z[tau])^2``. The update ``(1/m) sum_tau dA/dw^T(s grad J^(tau) / sqrt(r+eps))``
  is then ``dA/dw^T(s lam_z / sqrt(r + eps))`` on the whole batch. The authors' code feeds
  the batch-mean loss's gradient to ``r`` instead, i.e. ``r_code = r / m^2``: its ``eps``
  acts like ``m^2 eps`` here.
- **Update, then read.** ``r`` is updated with the current batch before it rescales the
  signal (Alg. 1's order; the code reads ``r`` before updating it).
- **Biases too.** The bias enters the affine map linearly, so it gets the rescaled signal
  like ``W`` (Alg. 1's rule "if f_i is linear in theta"); the code gives biases plain
  gradients.
- ``r`` starts at 0 (Alg. 1), one array per stage shaped like one sample's ``z_t``
  (``(out,)`` for a dense layer, ``(C_out, H_out, W_out)`` for a convolution, as the
  paper's ``Dim(r_Conv2D) = H_out W_out C_out``).
- The regularizer (weight decay) is not part of Alg. 1's loss: its gradient is added as is.

Defaults ``rho = 0.9``, ``eps = 1e-6`` are Alg. 1's "good default settings"; ``s = 0.1`` is
the value of the paper's MLP experiment (Table 1).
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle, register_oracle_methods
from .base import Oracle, OracleOutput, first_bad_stage

__all__ = ["SVGDOracle", "SVGDState", "virtual_stages"]


class SVGDState(NamedTuple):
    """``count``: batches seen; ``r``: per stage, the running average of squared per-sample
    output signals (None for stages without one, and before the first batch)."""

    count: int
    r: Tuple[Optional[np.ndarray], ...]


def virtual_stages(stages) -> Tuple[bool, ...]:
    """Which stages get virtual gradients: those with parameters that offer the affine
    part's transposed Jacobians (``preactivation_costate``, ``affine_vjp_w``,
    ``affine_vjp_x``, as :class:`moreauctl.nn.layers.AffineActivation`)."""
    return tuple(bool(st.param_shapes) and all(hasattr(st, a) for a in (
        "preactivation_costate", "affine_vjp_w", "affine_vjp_x")) for st in stages)


class SVGDOracle(Oracle):
    """``w -> (h(f(w); batch), d)`` with ``d`` the virtual gradient of Alg. 1 (see the module
    docstring for the convention).

    Parameters
    ----------
    chain : moreauctl.chain.Chain
        Typically a network's (:class:`moreauctl.nn.Classification`); stages without an
        affine part get plain gradients.
    s : float
        Scaling coefficient ``s >= 0`` of the rescaled signal.
    rho : float in [0, 1)
        Decay of the running average ``r``.
    eps : float > 0
        Added to ``r`` under the square root.
    """

    name = "svgd"

    def __init__(self, chain, s: float = 0.1, rho: float = 0.9, eps: float = 1e-6):
        super().__init__(chain)
        self.s = v.nonnegative_number("s", s)
        self.rho = v.fraction("rho", rho)
        self.eps = v.positive_number("eps", eps)
        self.virtual = virtual_stages(chain.stages)

    def init(self, w):
        return SVGDState(0, (None,) * self.chain.horizon)

    def __call__(self, w, state=None, data=None):
        if not state:  # called without the state of init()
            state = self.init(w)
        ch, rho = self.chain, self.rho
        cost, X = ch.forward(w, data)
        G = np.empty(ch.layout.size, dtype=w.dtype)
        lam = ch.h.grad(X[-1], data)
        m = X[0].shape[0]
        r_new = list(state.r)
        for t in range(ch.horizon - 1, -1, -1):
            st, wt = ch.stages[t], ch.layout.segment(w, t)
            if self.virtual[t]:
                lam_z = st.preactivation_costate(lam, X[t + 1])
                sq = np.mean((m * lam_z) ** 2, axis=0)
                r = (1.0 - rho) * sq if state.r[t] is None else rho * state.r[t] + (1.0 - rho) * sq
                r_new[t] = r
                seg = ch.layout.segment(G, t)
                gw = st.affine_vjp_w(X[t], (self.s / np.sqrt(r + self.eps)) * lam_z, seg)
                need_x = t > 0 or ch.input_costate
                lam = st.affine_vjp_x(wt, lam_z, X[t].shape) if need_x else None
            else:
                seg = ch.layout.segment(G, t)
                gw, lam = st.vjp_with_output(wt, X[t], X[t + 1], lam, out=seg,
                                             need_x=t > 0 or ch.input_costate)
            if gw is not seg:
                seg[:] = np.ravel(gw)
            if ch.regularizer is not None:
                seg += np.ravel(ch.regularizer.grad(wt, t))
        out = OracleOutput(cost=cost, direction=G, states=X, gradient=None,
                           failed_stage=first_bad_stage(ch.layout, G), info={"lam0": lam})
        return out, SVGDState(state.count + 1, tuple(r_new))


register_oracle("svgd", SVGDOracle)
register_oracle_methods("svgd", "svgd", doc="stochastic virtual gradients (Li & Shu, Alg. 1)")
register_method("svgd", oracle="svgd", optimizer="sgd",
                doc="SVGD (Li & Shu, Alg. 1): virtual gradients with plain steps, alpha = step")
