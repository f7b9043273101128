r"""Proximal back-propagation (ProxProp, Frerix et al. 2018; long paper Sec. 3.2 and D.5,
Eq. (43); short paper: GBP on lines 2 and 4 of Algo 2, IBP on line 5).

A backward pass of plain gradient back-propagation gives the costates ``lam_t`` (line 2:
``lam_T = tau grad h(x_T)``, a gradient step of size ``tau`` towards a target
``z_T = x_T - lam_T``; line 4: ``lam_{t-1} = dphi_t/dx^T lam_t``, so ``z_t = x_t - lam_t`` are
the targets of a block-coordinate gradient step on the penalized formulation (20)). The
weights then take a *proximal* step towards their targets (Eq. (19)/(43))::

    w_t^+ = argmin_v  1/2 |phi_t(v, x_{t-1}) - z_t|^2 + 1/(2 tau_theta) |v - w_t|^2

i.e. ``g_t = w_t - w_t^+ = IBP(phi_t(., x_{t-1}))(w_t, lam_t; c = tau_theta)``. For a dense
layer this is the closed form ``(A^T A + I/tau_theta)^{-1}`` (``A``: the layer's inputs with a
column of ones; a stage offers it as ``normal_solve_w``), for any stage affine in ``w`` the
Jacobian built from VJPs, or conjugate gradient with a step count (``inner="cg"``,
``inner_iters``) as the authors' code offers; a weight line that is not affine is solved by
the inner algorithm.

Frerix et al. apply the prox to the *linear* part of a layer ``x_t = sigma(A_t(w_t,
x_{t-1}))`` and reach its pre-activation by a gradient step through ``sigma``. A stage that
fuses an activation can expose that split with two optional members: ``affine_part`` (a
stage computing the pre-activation ``A_t``, affine in ``w``) and
``vjp_activation(w, x, lam)`` (the costate of the pre-activation, ``sigma'(A_t) * lam``);
with ``split=True`` (default ``"auto"``: wherever a stage has them) the weight line is then
IBP on ``A_t`` with that costate, the authors' update exactly. Other stages take IBP on the
whole stage (the inner algorithm when it is not affine in ``w``).

The direction is ``g / tau_theta`` (gradient units): ``proxprop-gd`` with ``step =
tau_theta`` is ``w <- w - g``, ProxProp's update, and as ``tau_theta -> 0`` the direction
tends to ``tau`` times the gradient, ``O(tau_theta)`` away (back-propagation). With the D.6
regularizer the weight subproblem gains ``r_t(v)`` (weight decay inside the prox).
"""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import optimizers  # noqa: F401  (registers the optimizers the methods below pair with)
from ..registry import register_method, register_oracle, register_oracle_methods
from ..rules import GBP, IBP, BackwardSpec, Inner, Rule
from .base import SpecOracle

__all__ = ["ProxPropOracle", "SPLITS"]

SPLITS = ("auto", True, False)


def _has_split(stage) -> bool:
    return hasattr(stage, "affine_part") and hasattr(stage, "vjp_activation")


class _IBPOnAffinePart(Rule):
    """The weight line of Frerix et al.: IBP on a stage's pre-activation map
    ``stage.affine_part`` with the pre-activation costate ``stage.vjp_activation(w, x,
    lam)``; IBP on the whole stage where the stage has no split. Python only (network
    layers)."""

    name, code = "ibp-affine-part", None

    def objective(self, h, x, data, c, inner):
        return GBP.objective(h, x, data, c, inner)

    def states(self, stage, w, x, lam, c, inner, x_next=None):
        return GBP.states(stage, w, x, lam, c, inner, x_next)

    def weights(self, stage, w, x, lam, c, inner, x_next=None, reg=None):
        if not _has_split(stage):
            return IBP.weights(stage, w, x, lam, c, inner, x_next, reg)
        return IBP.weights(stage.affine_part, w, x, stage.vjp_activation(w, x, lam), c, inner,
                           None, reg)


class ProxPropOracle(SpecOracle):
    """``w -> (h(f(w)), g / tau_theta)`` by proximal back-propagation. Stateless.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    tau_theta : float
        Proximal step of the weights (the method's step; Frerix et al.'s ``tau_theta``).
    tau : float
        Gradient step of the targets: ``z_t = x_t - tau dh/dx_t`` (Frerix et al.'s ``tau``).
    inner : {"paper", "gd", "newton", "cg"}
        How a weight subproblem is solved: stages affine in ``w`` use their closed form
        unless ``"cg"`` (conjugate gradient, ``inner_iters`` steps at most, relative
        tolerance ``inner_tol``); other stages use the inner algorithm
        (:class:`moreauctl.rules.Inner`).
    inner_iters, inner_tol, diagnostics
        As for :class:`~moreauctl.oracles.MoreauOracle`.
    split : {"auto", True, False}
        Prox on the pre-activation map of stages that expose it (``affine_part``,
        ``vjp_activation``), as Frerix et al.; ``True`` requires every stage to expose it,
        ``False`` never uses it.
    """

    name = "proxprop"

    def __init__(self, chain, tau_theta: float = 1.0, *, tau: float = 1.0, inner="paper",
                 inner_iters: int = 20, inner_tol: float = 1e-10, diagnostics: bool = False,
                 split="auto"):
        super().__init__(chain)
        self.tau_theta = v.positive_number("tau_theta (the proximal step)", tau_theta)
        self.tau = v.positive_number("tau (the target step)", tau)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}; got {split!r}")
        T = chain.horizon
        # (a long control chain repeats one stage: look at the first)
        stages = chain.stages if T <= 1000 else chain.stages[:1]
        has = [_has_split(st) for st in stages]
        if split is True and not all(has):
            raise ValueError("split=True needs every stage to expose affine_part and "
                             "vjp_activation")
        w_rule = _IBPOnAffinePart() if (split is not False and any(has)) else IBP
        self.scale = self.tau_theta
        self.spec = BackwardSpec((GBP, GBP, w_rule), self.tau, np.ones(T),
                                 np.full(T, self.tau_theta), Inner(inner, inner_iters, inner_tol),
                                 bool(diagnostics))


register_oracle("proxprop", ProxPropOracle)
register_oracle_methods("proxprop", "proxprop", step_option="tau_theta",
                        doc="proximal back-propagation (Frerix et al.; GBP, GBP, IBP)")
register_method("proxprop", oracle="proxprop", optimizer="sgd", step_option="tau_theta",
                doc="proximal back-propagation, w <- w - g (plain steps)")
