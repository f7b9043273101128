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

For small steps every envelope gradient linearizes (``grad env(c f)(z) ~ c grad f(z)``), so
with the geometric schedule and ``eq52`` the direction of stage ``t`` tends to
``alpha gamma^(T-t+1) dh/dw_t``: gradient descent with geometrically decaying per-stage steps.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from .base import OracleOutput

RULES = {"gbp": 0, "mbp": 1}
INNERS = {"paper": 0, "gd": 1, "newton": 2}
SCHEDULES = ("geometric", "constant")
CONVENTIONS = ("eq52", "text")
_LINES = ("objective", "states", "controls")


def _positive(name, v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number > 0; got {v!r}") from None
    if not (np.isfinite(f) and f > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {v!r}")
    return f


def _positive_array(name, a, n):
    arr = np.asarray(a, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({n},)")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must have finite entries > 0; got min {np.nanmin(arr)!r}")
    return arr


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
        gs = _positive_array("gammas", gammas, T + 1)
        al = _positive_array("alphas", alphas, T)
        return float(gs[T]), gs[:-1] / gs[1:], al / gs[1:]
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)} "
                         "or pass the arrays gammas= and alphas=")
    if alpha_convention not in CONVENTIONS:
        raise ValueError(f"unknown alpha_convention {alpha_convention!r}; choose one of {list(CONVENTIONS)}")
    a = _positive("alpha (the step)", alpha)
    g = _positive("gamma", gamma)
    if schedule == "geometric":
        gam = np.full(T, g)
        alp = np.full(T, a if alpha_convention == "eq52" else a / g)
    else:
        gam = np.ones(T)
        alp = np.full(T, a)  # gamma_{t+1} = gamma_t = gamma under both readings
    return g, gam, alp


def _rules(rules: Union[str, Sequence[str], dict]) -> np.ndarray:
    if isinstance(rules, str):
        names = [rules] * 3
    elif isinstance(rules, dict):
        unknown = set(rules) - set(_LINES)
        if unknown:
            raise ValueError(f"unknown line(s) {sorted(unknown)} in rules; use {list(_LINES)}")
        names = [rules.get(k, "mbp") for k in _LINES]
    else:
        names = list(rules)
        if len(names) != 3:
            raise ValueError(f"rules needs 3 entries (objective, states, controls); got {len(names)}")
    out = []
    for line, r in zip(_LINES, names):
        if r == "ibp":
            raise ValueError(f"rule 'ibp' (regularized inversion) for the {line} line is not "
                             f"available yet; choose one of {sorted(RULES)}")
        if r not in RULES:
            raise ValueError(f"unknown rule {r!r} for the {line} line; choose one of {sorted(RULES)}")
        out.append(RULES[r])
    return np.array(out, dtype=np.int64)


class MoreauOracle:
    """``w -> (h(f(w)), g)`` by approximate Moreau back-propagation (Algo 1-2).

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
        ``"gbp"`` or ``"mbp"`` per line of Algo 2: objective (line 2), states (line 4),
        controls (line 5). ``"mbp"`` everywhere is Moreau GD; ``"gbp"`` everywhere is a
        gradient with per-stage weights.
    inner : {"paper", "gd", "newton"}
        Inner algorithm A for the subproblems: ``"paper"`` is one gradient step with a
        Goldstein line search then one Barzilai-Borwein step (E.2.1); ``"gd"`` is up to
        ``inner_iters`` gradient steps with Armijo backtracking; ``"newton"`` damped Newton
        with CasADi's exact Hessian (gradient step where it is not positive definite).
        ``"gd"`` and ``"newton"`` stop when the subproblem gradient norm is <=
        ``inner_tol`` times its value at the start point (a relative tolerance).
    diagnostics : bool
        Also compute every subproblem's gradient norm at its solution
        (``OracleOutput.info["residuals"]``, shape (T+1, 2)); costs one more gradient per
        subproblem.
    """

    name = "moreau"

    def __init__(self, chain, alpha=None, gamma=None, *, schedule="geometric",
                 alpha_convention="eq52", gammas=None, alphas=None, rules="mbp",
                 inner="paper", inner_iters=20, inner_tol=1e-10, diagnostics=False):
        self.chain = chain
        self.gam_h, self.gam, self.alp = moreau_schedule(
            chain.horizon, alpha, gamma, schedule, alpha_convention, gammas, alphas)
        self.rules = _rules(rules)
        if inner not in INNERS:
            raise ValueError(f"unknown inner algorithm {inner!r}; choose one of {sorted(INNERS)}")
        self.inner = inner
        if isinstance(inner_iters, bool) or not isinstance(inner_iters, (int, np.integer)) or inner_iters < 1:
            raise ValueError(f"inner_iters must be an integer >= 1; got {inner_iters!r}")
        self.inner_iters = int(inner_iters)
        tol = float(inner_tol)
        if not (tol >= 0 and np.isfinite(tol)):
            raise ValueError(f"inner_tol must be a finite number >= 0; got {inner_tol!r}")
        self.inner_tol = tol
        self.diagnostics = bool(diagnostics)

    def objective(self, w: np.ndarray) -> float:
        return self.chain.objective(w)

    def __call__(self, w: np.ndarray) -> OracleOutput:
        ch = self.chain
        if self.inner == "paper" and not self.diagnostics:
            # the generic kernel's numbers, with the per-stage work written flat (faster)
            cost, X, G, lam0, bad = ch.moreau_paper(w, self.gam_h, self.gam, self.alp,
                                                    self.rules)
        else:
            cost, X = ch.forward(w)
            G = np.empty_like(w)
            lam0 = np.empty(ch.nx)
            resid = np.empty((w.shape[0] + 1, 2))
            bad = ch.kernels.backward_moreau(
                w, X, self.gam_h, self.gam, self.alp, self.rules, INNERS[self.inner],
                self.inner_iters, self.inner_tol, self.diagnostics, G, lam0, resid)
        info = {"lam0": lam0}
        if self.diagnostics:
            info["residuals"] = resid
        return OracleOutput(cost=cost, direction=G, states=X, gradient=None,
                            failed_stage=None if bad < 0 else int(bad), info=info)
