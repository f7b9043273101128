"""A compiled chain of computations (Def. 1.1 of Roulet & Harchaoui).

Notation
--------
==========  =====================================================================
``T``       number of stages (the horizon)
``nx``      size of a state ``x_t``; ``nw`` size of a control/weight ``w_t``
``w``       controls, shape ``(T, nw)``; row ``t`` is the paper's ``w_{t+1}``
``X``       states, shape ``(T+1, nx)``; ``X[0] = x0``, ``X[t+1] = phi(w[t], X[t])``
``phi_t``   stage map ``(w_t, x_{t-1}) -> x_t``
``h``       objective of the last state
``lam_t``   costate (gradient) or Moreau costate of ``x_t``, shape ``(nx,)``
``g_t``     direction for ``w_t``, shape ``(nw,)``; all of them stacked like ``w``
``gamma_t`` step of the state subproblem of stage ``t`` (Moreau pass), ``alpha_t`` of the
            control subproblem
==========  =====================================================================

A :class:`Chain` is only arrays and compiled kernels: where the stages come from (CasADi,
network layers) is the business of whoever builds it. The kernels module must provide the
names listed at the top of ``moreauctl/_kernels/chain_kernels.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

__all__ = ["Chain"]


@dataclass(frozen=True, eq=False)
class Chain:
    """Compiled stages, objective and initial state.

    Attributes
    ----------
    kernels : module
        Compiled kernels: ``forward``, ``objective``, ``backward_gradient``,
        ``backward_moreau`` and the stage primitives.
    x0 : ndarray, shape (nx,)
    horizon : int
    nx, nw : int
    njv : int
        Values stored per stage by the forward pass (see ``stored``).
    store_jacobians : bool
        Whether :meth:`value_and_gradient` and :meth:`moreau_paper` store them in the
        forward pass (Algo 3) so the backward pass re-evaluates less of the stage; chosen
        when ``njv <= 2 (nx + nw)``, which keeps a gradient call's arrays within 3x the
        trajectory's.
    stored : str
        What is stored: ``"jacobian"`` (the Jacobian entries that vary with ``(w, x)``; the
        backward pass is then multiply-adds), ``"transcendentals"`` (the stage's sin, cos,
        exp... values; the backward pass calls no libm function), or ``"none"``.
    affine_w, affine_x, quadratic_h : bool
        Structure detected symbolically; the Moreau pass uses closed forms where they hold.
    fused : bool
        Whether ``kernels`` also has the fused twins ``f_*`` of the loop kernels (states in
        scalar locals, see :mod:`moreauctl.codegen.fused`); they give the same numbers
        faster, and the methods below prefer them.
    """

    kernels: ModuleType
    x0: np.ndarray
    horizon: int
    nx: int
    nw: int
    njv: int = 1
    store_jacobians: bool = False
    stored: str = "none"
    affine_w: bool = False
    affine_x: bool = False
    quadratic_h: bool = False
    fused: bool = False

    def forward(self, w: np.ndarray):
        """Run the forward pass.

        Parameters
        ----------
        w : ndarray, shape (T, nw), float64, C-contiguous (validated by the caller)

        Returns
        -------
        cost : float
            ``h(x_T)``.
        X : ndarray, shape (T+1, nx)
        """
        X = np.empty((w.shape[0] + 1, self.nx))
        k = self.kernels
        cost = (k.f_forward if self.fused else k.forward)(w, self.x0, X)
        return float(cost), X

    def objective(self, w: np.ndarray) -> float:
        """``h(f(w, x0))`` without storing states."""
        k = self.kernels
        return float((k.f_objective if self.fused else k.objective)(w, self.x0))

    def gradient(self, w: np.ndarray, X: np.ndarray):
        """Gradient back-propagation (Algo 4) given the states of :meth:`forward`.

        Returns
        -------
        G : ndarray, shape (T, nw)
        lam0 : ndarray, shape (nx,)
        """
        G = np.empty_like(w)
        lam0 = np.empty(self.nx)
        k = self.kernels
        (k.f_backward_gradient if self.fused else k.backward_gradient)(w, X, G, lam0)
        return G, lam0

    def value_and_gradient(self, w: np.ndarray):
        """Objective, states, gradient and ``lam_0`` in one forward and one backward pass.

        Returns
        -------
        cost : float
        X : ndarray, shape (T+1, nx)
        G : ndarray, shape (T, nw)
        lam0 : ndarray, shape (nx,)
        """
        T = w.shape[0]
        if self.fused:
            # one kernel call for both passes: at small T the per-call overhead dominates
            X = np.empty((T + 1, self.nx))
            JV = np.empty((T if self.store_jacobians else 0, self.njv))
            G = np.empty_like(w)
            lam0 = np.empty(self.nx)
            cost = self.kernels.f_value_and_gradient(w, self.x0, X, JV, G, lam0)
            return float(cost), X, G, lam0
        if not self.store_jacobians:
            cost, X = self.forward(w)
            G, lam0 = self.gradient(w, X)
            return cost, X, G, lam0
        X = np.empty((T + 1, self.nx))
        JV = np.empty((T, self.njv))
        cost = self.kernels.forward_jac(w, self.x0, X, JV)
        G = np.empty_like(w)
        lam0 = np.empty(self.nx)
        self.kernels.backward_gradient_jac(w, JV, X, G, lam0)
        return float(cost), X, G, lam0

    def moreau_paper(self, w: np.ndarray, gam_h: float, gam: np.ndarray, alp: np.ndarray,
                     rules: np.ndarray):
        """Forward pass and Moreau backward pass with the "paper" inner algorithm.

        Parameters
        ----------
        w : ndarray, shape (T, nw)
        gam_h : float
            Step of the objective's subproblem.
        gam, alp : ndarray, shape (T,)
            Steps of the state and control subproblems, row ``t`` for stage ``t``.
        rules : ndarray of int64, shape (3,)
            ``RULE_GBP``/``RULE_MBP`` for the objective, states and controls.

        Returns
        -------
        cost : float
        X : ndarray, shape (T+1, nx)
        G : ndarray, shape (T, nw)
            The Moreau directions.
        lam0 : ndarray, shape (nx,)
        bad : int
            First row whose result is not finite (``T``: the objective's), or -1.
        """
        T = w.shape[0]
        k = self.kernels
        G = np.empty_like(w)
        lam0 = np.empty(self.nx)
        if not self.fused:
            cost, X = self.forward(w)
            bad = k.backward_moreau_paper(w, X, gam_h, gam, alp, rules, G, lam0)
            return cost, X, G, lam0, int(bad)
        X = np.empty((T + 1, self.nx))
        if self.store_jacobians:
            # the stored entries make each stage's first VJP free of trigonometry
            JV = np.empty((T, self.njv))
            cost = k.f_forward_jac(w, self.x0, X, JV)
        else:
            JV = np.empty((0, self.njv))
            cost = k.f_forward(w, self.x0, X)
        bad = k.f_backward_moreau_paper(w, X, JV, self.store_jacobians, gam_h, gam, alp,
                                        rules, G, lam0)
        return float(cost), X, G, lam0, int(bad)
