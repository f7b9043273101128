r"""Target propagation on the penalized formulation (20) (Sec. 3.2, Fact D.4, D.5, Algo 10-13).

The penalized formulation ``h(x_T) + kappa/2 sum_t |phi_t(w_t, x_{t-1}) - x_t|^2`` (x_0
fixed), started at the forward states, is decreased block by block from ``t = T`` to 1:
each state ``x_t`` gets a *target* ``x_t^+`` and each ``w_t`` moves towards producing it.
On the displacements ``d_t = x_t - x_t^+`` every line is one rule of :mod:`moreauctl.rules`:

**Target propagation** (Algo 10-11: block *minimization*, virtual target propagation)::

    x_T^+     = argmin_y h(y) + kappa/2 |y - x_T|^2           d_T = grad env(h/kappa)(x_T)
    x_{t-1}^+ = argmin_y |phi_t(w_t, y) - x_t^+|^2            (an inverse of the layer)
    w_t^+     = argmin_v |phi_t(v, x_{t-1}) - x_t^+|^2

i.e. MBP on the objective with step ``alpha = 1/kappa`` and IBP with ``c = inf`` (the plain
inverse: the minimum-norm least-squares solution on affine lines, Newton/Gauss-Newton-like
iterations of the inner algorithm otherwise) on the other lines.

**Regularized (proximal) target propagation** (Algo 12-13: block *proximal point*)::

    x_T^+     = argmin_y h(y) + (kappa + 1/gamma_T)/2 |y - x_T|^2
    x_{t-1}^+ = argmin_y kappa/2 |phi_t(w_t, y) - x_t^+|^2
                         + (kappa + 1/gamma_{t-1})/2 |y - x_{t-1}|^2
    w_t^+     = argmin_v kappa/2 |phi_t(v, x_{t-1}) - x_t^+|^2 + |v - w_t|^2 / (2 alpha_t)

i.e. MBP on the objective with step ``1/(kappa + 1/gamma_T)``, IBP on the states with
``c = kappa/(kappa + 1/gamma_{t-1})`` and on the weights with ``c = kappa alpha_t``;
``gamma_t, alpha_t`` are the Moreau oracle's schedule (named, per unit of time, or Algo 2's
arrays). It is the augmented-Lagrangian pass with ``beta_t = 0`` (D.4).

Both return ``g_t = w_t - w_t^+`` divided by ``alpha`` (gradient units): the plain methods
``target-prop`` and ``prox-target-prop`` with ``step = alpha`` take ``w <- w - g``, the
algorithms as written. With D.6's regularizer the weight lines gain ``r_t`` (in the
proximal version with the factor ``alpha_t``; the plain inverse takes none).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle, register_oracle_methods
from ..rules import IBP, MBP, BackwardSpec, Inner
from .base import SpecOracle, gamma_per_stage
from .moreau import paper_steps, schedule_factory

__all__ = ["TargetPropOracle", "ProxTargetPropOracle"]


class TargetPropOracle(SpecOracle):
    """``w -> (h(f(w)), g / alpha)`` by target propagation (Algo 10-11). Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    alpha : float
        ``1/kappa``: the step of the first target, ``x_T^+ = x_T - grad env(alpha h)(x_T)``.
    inner : {"paper", "gd", "newton"}
        Inner algorithm of the inverses of lines that are not affine (``"newton"`` takes
        Gauss-Newton-like steps with the exact Hessian of ``|phi - x^+|^2/2``).
    inner_iters, inner_tol, diagnostics
        As for the Moreau oracle.
    """

    name = "target-prop"

    def __init__(self, chain, alpha: float = 1.0, *, inner="newton", inner_iters=20,
                 inner_tol=1e-10, diagnostics=False):
        super().__init__(chain)
        self.alpha = v.positive_number("alpha (= 1/kappa, the first target's step)", alpha)
        if getattr(chain, "regularizer", None) is not None:
            raise ValueError("target propagation (Algo 10-11) inverts the layers exactly; a "
                             "regularizer needs the proximal version, prox-target-prop")
        T = chain.horizon
        self.scale = self.alpha
        inf = np.full(T, np.inf)
        self.spec = BackwardSpec((MBP, IBP, IBP), self.alpha, inf, inf,
                                 Inner(inner, inner_iters, inner_tol), bool(diagnostics))


class ProxTargetPropOracle(SpecOracle):
    """``w -> (h(f(w)), g / alpha)`` by regularized target propagation (Algo 12-13).
    Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    alpha, gamma : float
        The proximal steps ``alpha_t`` (weights) and ``gamma_t`` (states) of the named
        schedule, as for :class:`~moreauctl.oracles.MoreauOracle` (``schedule``,
        ``alpha_convention``, ``gammas``/``alphas``, ``gamma_time``, ``dt`` likewise).
    kappa : float
        The penalty ``kappa > 0`` of the formulation (20).
    inner, inner_iters, inner_tol, diagnostics
        As for the Moreau oracle.
    """

    name = "prox-target-prop"

    def __init__(self, chain, alpha=None, gamma=None, *, kappa: float = 1.0,
                 schedule="geometric", alpha_convention="eq52", gammas=None, alphas=None,
                 gamma_time=None, dt=None, inner="paper", inner_iters=20, inner_tol=1e-10,
                 diagnostics=False):
        super().__init__(chain)
        self.kappa = v.positive_number("kappa", kappa)
        if gamma_time is not None and gammas is not None:
            raise ValueError("gamma_time rescales a named schedule's gamma; with the arrays "
                             "gammas/alphas set the per-stage values yourself")
        self.gamma = gamma_per_stage(gamma, gamma_time, dt, chain)
        gs, als = paper_steps(chain.horizon, alpha, self.gamma, schedule, alpha_convention,
                              gammas, alphas)
        k = self.kappa
        with np.errstate(divide="ignore", over="ignore"):
            inv = 1.0 / gs        # the geometric schedule's early gamma_t underflow: inf
        self.scale = 1.0 if gammas is not None else float(alpha)
        reg_scale = None
        if getattr(chain, "regularizer", None) is not None:
            reg_scale = np.full(chain.horizon, 1.0 / k)   # (k alpha_t) r_t / k = alpha_t r_t
        self.spec = BackwardSpec((MBP, IBP, IBP), 1.0 / (k + inv[-1]), k / (k + inv[:-1]),
                                 k * als, Inner(inner, inner_iters, inner_tol),
                                 bool(diagnostics), reg_scale)


register_oracle("target-prop", TargetPropOracle)
register_oracle_methods("target-prop", "target-prop", step_option="alpha",
                        doc="target propagation (Algo 10-11)")
register_method("target-prop", oracle="target-prop", optimizer="sgd", step_option="alpha",
                doc="target propagation, w <- w - g (Algo 10-11)")
register_oracle("prox-target-prop",
                schedule_factory(ProxTargetPropOracle, "regularized target propagation"))
register_oracle_methods("prox-target-prop", "prox-target-prop", step_option="alpha",
                        doc="regularized target propagation (Algo 12-13)")
register_method("prox-target-prop", oracle="prox-target-prop", optimizer="sgd",
                step_option="alpha", doc="regularized target propagation, w <- w - g "
                                         "(Algo 12-13)")
