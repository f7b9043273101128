r"""Approximate Moreau back-propagation (Algo 1-2 of Roulet & Harchaoui), compiled.

Correspondence with the paper's Algo 2
--------------------------------------
Algo 2 is written with step sizes ``gamma_t`` (``t = 0..T``) and ``alpha_t`` (``t = 1..T``):

    lam_T     = gamma_T^{-1} grad env(gamma_T h)(x_T)
    lam_{t-1} = gamma_{t-1}^{-1} grad env(gamma_{t-1} lam_t^T phi_t(w_t, .))(x_{t-1})
    g_t       = grad env(alpha_t lam_t^T phi_t(., x_{t-1}))(w_t)

with ``grad env(f)(z) = -argmin_y f(z + y) + |y|^2 / 2``. The kernel runs the *rescaled*
recursion of E.2.1 on ``lamhat_t = gamma_t lam_t``:

    lamhat_T     = grad env(gam_h h)(x_T),                         gam_h = gamma_T
    lamhat_{t-1} = grad env(gam_t lamhat_t^T phi_t(w_t, .))(x_{t-1}), gam_t = gamma_{t-1} / gamma_t
    g_t          = grad env(alp_t lamhat_t^T phi_t(., x_{t-1}))(w_t), alp_t = alpha_t / gamma_t

which is the same computation, exactly (substitute ``lam_t = lamhat_t / gamma_t``).
:func:`moreau_schedule` does this conversion.

Named schedules (``gamma`` > 0, ``alpha = step`` > 0):

- ``"geometric"`` (the paper): ``gamma_t = gamma^(T-t+1)``, so ``gam_h = gam_t = gamma``.
- ``"constant"``: ``gamma_t = gamma``, so ``gam_h = gamma`` and ``gam_t = 1``.

and two readings of how ``alpha`` enters, which differ by a factor ``gamma``:

- ``alpha_convention="eq52"`` (default): ``alpha_t = alpha gamma_t``, i.e. ``alp_t = alpha``,
  Eq. (52): ``g_t = grad env(alpha lamhat_t^T phi_t(., x_{t-1}))(w_t)``.
- ``alpha_convention="text"``: ``alpha_t = alpha gamma_{t+1}`` as E.2.1's sentence sets it
  (``gamma_{T+1}`` continues the schedule: 1 for geometric, ``gamma`` for constant), i.e.
  ``alp_t = alpha gamma_{t+1} / gamma_t`` = ``alpha / gamma`` for the geometric schedule.

The oracle's ``direction`` is ``g / alpha`` (gradient units, see
:class:`~moreauctl.oracles.OracleOutput`): Moreau GD (Algo 6) is ``w <- w - alpha *
direction = w - g``, which is what the method ``"moreau-gd"`` does with ``alpha = step``.
With Algo 2's own arrays ``gammas``/``alphas`` there is no scalar ``alpha``: the direction
is ``g`` itself, and ``"moreau-gd"`` takes ``w <- w - step * g`` (``step=1`` is Algo 6).

Control bounds (``ControlProblem(control_bounds=...)``): the oracle itself ignores them;
:func:`moreauctl.minimize` projects the updated iterate onto the box, ``w <- P(w - g)``. For
a stage affine in ``w`` (``x_t = a(x_{t-1}) + B(x_{t-1}) w_t``, e.g. any Euler-discretized
plant with additive controls) this *is* the weight prox with the box's indicator added,
``argmin_{v in box} alp_t lamhat_t^T phi_t(v, x_{t-1}) + |v - w_t|^2 / 2 =
P(w_t - alp_t B^T lamhat_t)``, exactly; for other stages it is the projection of the
unconstrained prox (a projected step, the usual approximation), and the state line is
unchanged.

For small steps every envelope gradient linearizes (``grad env(c f)(z) ~ c grad f(z)``), so
with the geometric schedule and ``eq52`` the direction of stage ``t`` tends to
``alpha gamma^(T-t+1) dh/dw_t``: gradient descent with geometrically decaying per-stage steps.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_oracle, register_oracle_methods
from ..rules import INNERS, BackwardSpec, Inner, parse_rules
from .base import Oracle, OracleOutput

__all__ = ["MoreauOracle", "moreau_schedule", "stage_gammas", "SCHEDULES", "CONVENTIONS", "INNERS"]

SCHEDULES = ("geometric", "constant")
CONVENTIONS = ("eq52", "text")


def moreau_schedule(T: int, alpha: Optional[float] = None, gamma: Optional[float] = None,
                    schedule: str = "geometric", alpha_convention: str = "eq52",
                    gammas: Optional[Sequence[float]] = None,
                    alphas: Optional[Sequence[float]] = None):
    """Step sizes of the rescaled recursion.

    Either a named ``schedule`` with scalars ``alpha`` and ``gamma``, or Algo 2's own arrays
    ``gammas`` (shape (T+1,), ``gamma_0..gamma_T``) and ``alphas`` (shape (T,),
    ``alpha_1..alpha_T``). See the module docstring for the formulas.

    Returns
    -------
    gam_h : float
    gam : ndarray, shape (T,)
        Row ``t`` is the state-subproblem step of the paper's stage ``t+1``.
    alp : ndarray, shape (T,)
    """
    if (gammas is None) != (alphas is None):
        raise ValueError("give both gammas (T+1,) and alphas (T,), or neither")
    if gammas is not None:
        if alpha is not None or gamma is not None:
            raise ValueError("give either scalar alpha/gamma with a named schedule, or the "
                             "arrays gammas/alphas, not both")
        gs = v.positive_array("gammas", gammas, (T + 1,))
        al = v.positive_array("alphas", alphas, (T,))
        return float(gs[T]), gs[:-1] / gs[1:], al / gs[1:]
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)} "
                         "or pass the arrays gammas= and alphas=")
    v.choice("alpha_convention", alpha_convention, CONVENTIONS)
    a = v.positive_number("alpha (the step)", alpha)
    g = v.positive_number("gamma", gamma)
    if schedule == "geometric":
        gam = np.full(T, g)
        alp = np.full(T, a if alpha_convention == "eq52" else a / g)
    else:
        gam = np.ones(T)
        alp = np.full(T, a)  # gamma_{t+1} = gamma_t = gamma under both readings
    return g, gam, alp


def stage_gammas(T: int, gamma: Optional[float] = None, schedule: str = "geometric",
                 gammas: Optional[Sequence[float]] = None) -> np.ndarray:
    """The paper's ``gamma_t`` of each stage's output ``x_t``, shape (T,) (row ``t`` is
    stage ``t+1``): ``gamma^(T-t)`` for the geometric schedule, ``gamma`` for the constant
    one, ``gammas[1:]`` for Algo 2's arrays. They scale a regularizer in the rescaled
    recursion (D.6; :class:`moreauctl.chain.StageRegularizer`)."""
    if gammas is not None:
        return np.asarray(gammas, dtype=float)[1:]
    if schedule == "geometric":
        return float(gamma) ** np.arange(T, 0, -1, dtype=float)
    return np.full(T, float(gamma))


class MoreauOracle(Oracle):
    """``w -> (h(f(w)), g / alpha)`` by approximate Moreau back-propagation (Algo 1-2).
    Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    alpha, gamma : float
        Steps of the named schedule (see the module docstring).
    schedule : {"geometric", "constant"}
    alpha_convention : {"eq52", "text"}
    gammas, alphas : array_like, optional
        Algo 2's arrays ``gamma_0..gamma_T`` (T+1,) and ``alpha_1..alpha_T`` (T,) instead of
        a named schedule.
    rules : str, 3-sequence or dict
        A rule of :mod:`moreauctl.rules` per line of Algo 2: objective (line 2), states
        (line 4), weights/controls (line 5). ``"mbp"`` everywhere is Moreau GD; ``"gbp"``
        everywhere is a gradient with per-stage weights.
    inner : {"paper", "gd", "newton"}
        Inner algorithm A for the subproblems (:class:`moreauctl.rules.Inner`): ``"paper"``
        is one gradient step with a Goldstein line search then one Barzilai-Borwein step
        (E.2.1); ``"gd"`` is up to ``inner_iters`` gradient steps with Armijo backtracking;
        ``"newton"`` damped Newton with the exact Hessian. ``"gd"`` and ``"newton"`` stop
        when the subproblem gradient norm is <= ``inner_tol`` times its value at the start
        point.
    diagnostics : bool
        Also compute every subproblem's gradient norm at its solution
        (``OracleOutput.info["residuals"]``, shape (T+1, 2)); costs one more gradient per
        subproblem.
    """

    name = "moreau"

    def __init__(self, chain, alpha=None, gamma=None, *, schedule="geometric",
                 alpha_convention="eq52", gammas=None, alphas=None, rules="mbp",
                 inner="paper", inner_iters=20, inner_tol=1e-10, diagnostics=False):
        super().__init__(chain)
        self.gam_h, self.gam, self.alp = moreau_schedule(
            chain.horizon, alpha, gamma, schedule, alpha_convention, gammas, alphas)
        #: what the directions g are divided by (gradient units)
        self.scale = 1.0 if gammas is not None else float(alpha)
        reg_scale = None
        if getattr(chain, "regularizer", None) is not None:
            reg_scale = stage_gammas(chain.horizon, gamma, schedule, gammas)
        self.spec = BackwardSpec(parse_rules(rules), self.gam_h, self.gam, self.alp,
                                 Inner(inner, inner_iters, inner_tol), bool(diagnostics),
                                 reg_scale)

    @property
    def rules(self) -> np.ndarray:
        """Kernel codes of the three lines' rules (int64, (3,))."""
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


def _from_options(chain, alpha=None, gamma=None, **options) -> MoreauOracle:
    """The registry's factory: ``alpha`` defaults to 1 (``moreau-<optimizer>`` methods,
    whose learning rate is ``step``), and a missing ``gamma`` gets a pointed message."""
    if gamma is None and options.get("gammas") is None:
        raise ValueError("the Moreau oracle needs gamma (the paper uses gamma=0.5), or Algo "
                         "2's arrays oracle_options={'gammas': ..., 'alphas': ...}")
    if alpha is None and options.get("gammas") is None:
        alpha = 1.0
    return MoreauOracle(chain, alpha, gamma, **options)


register_oracle("moreau", _from_options)
register_oracle_methods("moreau", "moreau", step_option="alpha",
                        doc="Moreau back-propagation (Algo 1-2)")
