r"""Proximal back-propagation (ProxProp, Frerix et al. 2018; long paper Sec. 3.2 and D.5,
Eq. (43); short paper: GBP on lines 2 and 4 of Algo 2, IBP on line 5).

A backward pass of plain gradient back-propagation gives the costates ``lam_t`` (line 2:
``lam_T = tau grad h(x_T)``, a gradient step of size ``tau`` towards a target
``z_T = x_T - lam_T``; line 4: ``lam_{t-1} = dphi_t/dx^T lam_t``, so ``z_t = x_t - lam_t`` are
the targets of a block-coordinate gradient step on the penalized formulation (20)). The
weights then take a *proximal* step towards their targets (Eq. (19)/(43)):

    w_t^+ = argmin_v  1/2 |phi_t(v, x_{t-1}) - z_t|^2 + 1/(2 tau_theta) |v - w_t|^2

i.e. ``g_t = w_t - w_t^+ = IBP(phi_t(., x_{t-1}))(w_t, lam_t; c = tau_theta)``. For a dense
layer this is the closed form ``(A^T A + I/tau_theta)^{-1}`` (``A``: the layer's inputs with a
column of ones; a stage offers it as ``normal_solve_w``), for any stage affine in ``w`` the
Jacobian built from VJPs, or conjugate gradient with a step count (``inner="cg"``,
``inner_iters``) as the authors' code offers; a weight line that is not affine is solved by
the inner algorithm.

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
from ..rules import GBP, IBP, BackwardSpec, Inner
from .base import SpecOracle

__all__ = ["ProxPropOracle"]


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
    """

    name = "proxprop"

    def __init__(self, chain, tau_theta: float = 1.0, *, tau: float = 1.0, inner="paper",
                 inner_iters: int = 20, inner_tol: float = 1e-10, diagnostics: bool = False):
        super().__init__(chain)
        self.tau_theta = v.positive_number("tau_theta (the proximal step)", tau_theta)
        self.tau = v.positive_number("tau (the target step)", tau)
        T = chain.horizon
        self.scale = self.tau_theta
        self.spec = BackwardSpec((GBP, GBP, IBP), self.tau, np.ones(T), np.full(T, self.tau_theta),
                                 Inner(inner, inner_iters, inner_tol), bool(diagnostics))


register_oracle("proxprop", ProxPropOracle)
register_oracle_methods("proxprop", "proxprop", step_option="tau_theta",
                        doc="proximal back-propagation (Frerix et al.; GBP, GBP, IBP)")
register_method("proxprop", oracle="proxprop", optimizer="sgd", step_option="tau_theta",
                doc="proximal back-propagation, w <- w - g (plain steps)")
