r"""Moreau gradients through the augmented Lagrangian (Algo 7-9, Fact D.3, D.4, D.6).

The augmented Lagrangian of ``h(f(w, x_0))`` (Eq. (37), with the D.6 regularizer)::

    L(w, x, lam) = h(x_T) + sum_t lam_t^T (phi_t(w_t, x_{t-1}) - x_t)
                   + kappa/2 sum_t |phi_t(w_t, x_{t-1}) - x_t|^2 + sum_t r_t(w_t)

One pass of a block-coordinate proximal point method on it, from the forward states and
``lam = 0``, in the order ``x_t -> lam_t -> w_t`` for ``t = T..1`` (Algo 8-9), gives
targets ``x_t^+``, multipliers ``lam_t^+ = beta_t (x_t - x_t^+)`` and the new weights::

    x_T^+     = argmin_y h(y) + (1/gamma_T + kappa)/2 |y - x_T|^2
    w_t^+     = argmin_v lam_t^+^T phi_t(v, x_{t-1}) + kappa/2 |phi_t(v, x_{t-1}) - x_t^+|^2
                         + r_t(v) + |v - w_t|^2 / (2 alpha_t)
    x_{t-1}^+ = argmin_y lam_t^+^T phi_t(w_t, y) + kappa/2 |phi_t(w_t, y) - x_t^+|^2
                         + (1/gamma_{t-1} + kappa)/2 |y - x_{t-1}|^2

On the displacements ``d_t = x_t - x_t^+`` every line is an ALBP line of
:mod:`moreauctl.rules` (a linear term ``beta_t d_t^T phi`` and a penalty on
``phi - x_t + d_t``), with the steps of :func:`~moreauctl.oracles.moreau.lagrangian_steps`;
the directions are ``g_t = w_t - w_t^+`` and the oracle returns ``g / alpha`` like the Moreau
oracle (``auglag-gd`` with ``step = alpha`` is Algo 7). The multipliers start from 0 at
every call, as Fact D.3 writes the pass: the oracle is stateless.

Special cases (D.4), tests of this package: ``kappa = 0`` with ``beta_t = 1/gamma_t`` (the
default) is Algo 1-2, Moreau GD; ``beta_t = 0`` is regularized target propagation (Algo
12-13, :mod:`moreauctl.oracles.target_prop`); ``kappa = 0`` with other ``beta_t`` is the
proximal point pass of Prop. 2.2.
"""
from __future__ import annotations

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle, register_oracle_methods
from ..rules import ALBP, BackwardSpec, Inner
from .base import SpecOracle
from .moreau import schedule_factory, schedule_steps

__all__ = ["AugLagOracle"]


class AugLagOracle(SpecOracle):
    """``w -> (h(f(w)), g / alpha)`` by the augmented-Lagrangian pass (Algo 8-9). Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    alpha, gamma : float
        Steps of the named schedule, as for :class:`~moreauctl.oracles.MoreauOracle`
        (``schedule``, ``alpha_convention``, ``gammas``/``alphas``, ``gamma_time``, ``dt``
        likewise).
    kappa : float
        The penalty ``kappa >= 0`` of Eq. (37).
    beta, betas : optional
        The multipliers' proximal steps: ``beta_t = beta / gamma_t`` (default ``beta = 1``,
        Algo 2's ``beta_t = 1/gamma_t``), or ``betas`` ``beta_1..beta_T``.
    inner, inner_iters, inner_tol, diagnostics
        As for the Moreau oracle: the inner algorithm of every line that is not solved in
        closed form.
    """

    name = "auglag"

    def __init__(self, chain, alpha=None, gamma=None, *, kappa: float = 0.0, beta=None,
                 betas=None, schedule="geometric", alpha_convention="eq52", gammas=None,
                 alphas=None, gamma_time=None, dt=None, inner="paper", inner_iters=20,
                 inner_tol=1e-10, diagnostics=False):
        super().__init__(chain)
        self.kappa = v.nonnegative_number("kappa", kappa)
        self.gamma, st, self.scale = schedule_steps(
            chain, alpha, gamma, schedule, alpha_convention, gammas, alphas, gamma_time, dt,
            kappa=self.kappa, beta=beta, betas=betas)
        self.steps = st
        reg_scale = None if getattr(chain, "regularizer", None) is None else st.reg_scale
        self.spec = BackwardSpec((ALBP, ALBP, ALBP), st.gam_h, st.lin_x, st.lin_w,
                                 Inner(inner, inner_iters, inner_tol), bool(diagnostics),
                                 reg_scale, pen_x=st.pen_x, pen_w=st.pen_w)


register_oracle("auglag", schedule_factory(AugLagOracle, "augmented-Lagrangian oracle"))
register_oracle_methods("auglag", "auglag", step_option="alpha",
                        doc="augmented-Lagrangian Moreau gradients (Algo 7-9)")
register_method("auglag", oracle="auglag", optimizer="sgd", step_option="alpha",
                doc="augmented-Lagrangian Moreau gradient descent, Algo 7 (plain steps)")
