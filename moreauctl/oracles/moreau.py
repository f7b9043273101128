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

Two more choices:

- **Prop. 2.2's steps** ``beta_t`` (the proximal steps of the multipliers; Algo 2 takes
  ``beta_t = 1/gamma_t``): ``beta=b`` sets ``beta_t = b / gamma_t``, ``betas`` gives
  ``beta_1..beta_T``. The pass is then ``lamhat_{t-1} = grad env(gamma_{t-1} beta_t
  lamhat_t^T phi_t)``, ``g_t = grad env(alpha_t beta_t lamhat_t^T phi_t)`` on
  ``lamhat_t = mu_t / beta_t`` (``mu_t`` the multipliers): :func:`lagrangian_steps` with
  ``kappa = 0``.
- **gamma per unit of time** (``gamma_time=s``): ``gamma`` is the decay of the weights per
  ``s`` seconds of the plant, so the per-stage factor is ``gamma ** (dt / s)`` at time step
  ``dt`` (the chain's, or ``dt=``): a finer discretization of the same problem keeps the
  same weighting of its physical time (:func:`~moreauctl.oracles.base.gamma_per_stage`).

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

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_oracle, register_oracle_methods
from ..rules import INNERS, BackwardSpec, Inner, parse_rules
from .base import SpecOracle, gamma_per_stage

__all__ = ["MoreauOracle", "moreau_schedule", "stage_gammas", "paper_steps",
           "lagrangian_steps", "LagrangianSteps", "schedule_steps", "schedule_factory",
           "SCHEDULES", "CONVENTIONS", "INNERS"]

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


def paper_steps(T: int, alpha=None, gamma=None, schedule="geometric", alpha_convention="eq52",
                gammas=None, alphas=None):
    """Algo 2's own arrays ``(gamma_0..gamma_T (T+1,), alpha_1..alpha_T (T,))`` of a named
    schedule (or the arrays themselves, validated). For the geometric schedule at long
    horizons the early ``gamma_t`` underflow to 0: use them where that is harmless (their
    inverses then read inf)."""
    if gammas is not None:
        moreau_schedule(T, alpha, gamma, schedule, alpha_convention, gammas, alphas)  # checks
        return np.asarray(gammas, dtype=float), np.asarray(alphas, dtype=float)
    gam_h, gam, alp = moreau_schedule(T, alpha, gamma, schedule, alpha_convention)
    g_out = stage_gammas(T, gamma, schedule)
    gs = np.concatenate([[g_out[0] * gam[0]], g_out])
    return gs, alp * g_out


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


@dataclass(frozen=True)
class LagrangianSteps:
    """Steps of the (augmented) Lagrangian pass in rescaled form, rows = stages (T,).

    ``gam_h`` (objective line), ``lin_x, pen_x`` (state lines: linear term, penalty),
    ``lin_w, pen_w`` (weight lines), ``reg_scale`` (factor of ``r_t`` in the ALBP weight
    line, so that ``(lin_w + pen_w) reg_scale = alpha_t``; see :mod:`moreauctl.rules`).
    """

    gam_h: float
    lin_x: np.ndarray
    pen_x: np.ndarray
    lin_w: np.ndarray
    pen_w: np.ndarray
    reg_scale: np.ndarray


def lagrangian_steps(T: int, alpha=None, gamma=None, schedule="geometric",
                     alpha_convention="eq52", gammas=None, alphas=None, *, kappa=0.0,
                     beta=None, betas=None) -> LagrangianSteps:
    """Steps of Algo 9 (augmented Lagrangian, penalty ``kappa``) with Prop. 2.2's
    ``beta_t``, on the rescaled targets ``d_t = x_t - x_t^+``.

    With ``gamma_t, alpha_t`` of :func:`moreau_schedule` and ``b_t = beta_t gamma_t``
    (``beta=b``: ``b_t = b``; ``betas``: ``beta_1..beta_T``; default ``b_t = 1``, i.e.
    ``beta_t = 1/gamma_t``), the lines of stage ``t`` solve

    - objective: ``d_T = grad env(c h)(x_T)``, ``c = gamma_T / (1 + kappa gamma_T)``;
    - states: ``-argmin_y c [beta_t d_t^T phi_t(w_t, x_{t-1} + y) + kappa/2 |phi_t(..) - x_t +
      d_t|^2] + |y|^2/2`` with ``c = gamma_{t-1} / (1 + kappa gamma_{t-1})``;
    - weights: the same with ``alpha_t`` in place of ``c`` (and ``alpha_t r_t``, D.6),

    i.e. ALBP lines with ``lin = c beta_t`` and ``pen = c kappa``. With ``kappa = 0`` and
    ``b_t = 1`` these are exactly the Moreau pass's steps (D.4: Algo 8-9 recover Algo 1-2);
    with ``b_t = 0`` the lines are IBP (Algo 12-13). Every quantity is formed from the
    ratios ``gamma_{t-1}/gamma_t`` and ``alpha_t/gamma_t``, so the geometric schedule stays
    finite at any ``T`` (``gamma_t`` alone may underflow to 0, harmlessly).
    """
    kap = v.nonnegative_number("kappa", kappa)
    gam_h, gam, alp = moreau_schedule(T, alpha, gamma, schedule, alpha_convention, gammas,
                                      alphas)
    g_out = stage_gammas(T, gamma, schedule, gammas)       # gamma_t of x_t (row t-1)
    g_in = gam * g_out                                      # gamma_{t-1}
    if beta is not None and betas is not None:
        raise ValueError("give beta (beta_t = beta / gamma_t) or betas (beta_1..beta_T), "
                         "not both")
    if betas is not None:
        b = v.finite_array("betas", betas, (T,))
        if np.any(b < 0):
            raise ValueError("betas must be >= 0")
        b = b * g_out
    else:
        b = np.full(T, 1.0 if beta is None else v.nonnegative_number("beta", beta))
    with np.errstate(invalid="ignore"):
        reg_scale = np.where(b + kap * g_out > 0, g_out / (b + kap * g_out), 0.0)
    return LagrangianSteps(
        gam_h=gam_h / (1.0 + kap * gam_h),
        lin_x=b * gam / (1.0 + kap * g_in), pen_x=kap * g_in / (1.0 + kap * g_in),
        lin_w=b * alp, pen_w=kap * alp * g_out, reg_scale=reg_scale)


def schedule_steps(chain, alpha, gamma, schedule="geometric", alpha_convention="eq52",
                   gammas=None, alphas=None, gamma_time=None, dt=None, *, kappa=0.0,
                   beta=None, betas=None):
    """The step options shared by the Moreau family (Moreau, augmented Lagrangian,
    regularized target propagation) -> ``(per-stage gamma, LagrangianSteps, scale)``, with
    ``scale`` what the pass's ``g`` is divided by (``alpha``; 1 with Algo 2's arrays)."""
    if gamma_time is not None and gammas is not None:
        raise ValueError("gamma_time rescales a named schedule's gamma; with the arrays "
                         "gammas/alphas set the per-stage values yourself")
    g = gamma_per_stage(gamma, gamma_time, dt, chain)
    T = chain.horizon
    if kappa == 0.0 and beta is None and betas is None:
        # Algo 2 exactly (no arithmetic on the steps: the pinned numbers keep their bits)
        gam_h, gam, alp = moreau_schedule(T, alpha, g, schedule, alpha_convention, gammas,
                                          alphas)
        z = np.zeros(T)
        st = LagrangianSteps(gam_h, gam, z, alp, z, stage_gammas(T, g, schedule, gammas))
    else:
        st = lagrangian_steps(T, alpha, g, schedule, alpha_convention, gammas, alphas,
                              kappa=kappa, beta=beta, betas=betas)
    return g, st, (1.0 if gammas is not None else float(alpha))


class MoreauOracle(SpecOracle):
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
    beta, betas : optional
        Prop. 2.2's multiplier steps: ``beta_t = beta / gamma_t``, or ``betas``
        ``beta_1..beta_T`` (default ``beta_t = 1/gamma_t``, Algo 2); see
        :func:`lagrangian_steps`.
    gamma_time : float, optional
        ``gamma`` per ``gamma_time`` seconds instead of per stage (named schedules): the
        per-stage factor is ``gamma ** (dt / gamma_time)``.
    dt : float, optional
        The time step for ``gamma_time`` (default: the chain's ``dt``).
    """

    name = "moreau"

    def __init__(self, chain, alpha=None, gamma=None, *, schedule="geometric",
                 alpha_convention="eq52", gammas=None, alphas=None, rules="mbp",
                 inner="paper", inner_iters=20, inner_tol=1e-10, diagnostics=False,
                 beta=None, betas=None, gamma_time=None, dt=None):
        super().__init__(chain)
        #: the per-stage gamma of the named schedule (gamma itself unless gamma_time)
        self.gamma, st, self.scale = schedule_steps(
            chain, alpha, gamma, schedule, alpha_convention, gammas, alphas, gamma_time, dt,
            beta=beta, betas=betas)
        self.gam_h, self.gam, self.alp = st.gam_h, st.lin_x, st.lin_w
        reg_scale = None if getattr(chain, "regularizer", None) is None else st.reg_scale
        self.spec = BackwardSpec(parse_rules(rules), self.gam_h, self.gam, self.alp,
                                 Inner(inner, inner_iters, inner_tol), bool(diagnostics),
                                 reg_scale)


def schedule_factory(cls, label: str):
    """The registry's factory of an oracle of the Moreau family: ``alpha`` defaults to 1
    (the ``<prefix>-<optimizer>`` methods, whose learning rate is ``step``), and a missing
    ``gamma`` gets a pointed message."""
    def factory(chain, alpha=None, gamma=None, **options):
        if gamma is None and options.get("gammas") is None:
            raise ValueError(f"the {label} needs gamma (the paper uses gamma=0.5), or Algo "
                             "2's arrays oracle_options={'gammas': ..., 'alphas': ...}")
        if alpha is None and options.get("gammas") is None:
            alpha = 1.0
        return cls(chain, alpha, gamma, **options)
    return factory


register_oracle("moreau", schedule_factory(MoreauOracle, "Moreau oracle"))
register_oracle_methods("moreau", "moreau", step_option="alpha",
                        doc="Moreau back-propagation (Algo 1-2)")
