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
        Varying Jacobian entries per stage (the rest are compiled-in constants).
    store_jacobians : bool
        Whether :meth:`value_and_gradient` stores them in the forward pass (Algo 3) so the
        backward pass needs no stage re-evaluation; chosen when ``njv <= nx + nw`` so the
        extra memory stays below the trajectory's.
    affine_w, affine_x, quadratic_h : bool
        Structure detected symbolically; the Moreau pass uses closed forms where they hold.
    """

    kernels: ModuleType
    x0: np.ndarray
    horizon: int
    nx: int
    nw: int
    njv: int = 1
    store_jacobians: bool = False
    affine_w: bool = False
    affine_x: bool = False
    quadratic_h: bool = False

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
        cost = self.kernels.forward(w, self.x0, X)
        return float(cost), X

    def objective(self, w: np.ndarray) -> float:
        """``h(f(w, x0))`` without storing states."""
        return float(self.kernels.objective(w, self.x0))

    def gradient(self, w: np.ndarray, X: np.ndarray):
        """Gradient back-propagation (Algo 4) given the states of :meth:`forward`.

        Returns
        -------
        G : ndarray, shape (T, nw)
        lam0 : ndarray, shape (nx,)
        """
        G = np.empty_like(w)
        lam0 = np.empty(self.nx)
        self.kernels.backward_gradient(w, X, G, lam0)
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
        if not self.store_jacobians:
            cost, X = self.forward(w)
            G, lam0 = self.gradient(w, X)
            return cost, X, G, lam0
        T = w.shape[0]
        X = np.empty((T + 1, self.nx))
        JV = np.empty((T, self.njv))
        cost = self.kernels.forward_jac(w, self.x0, X, JV)
        G = np.empty_like(w)
        lam0 = np.empty(self.nx)
        self.kernels.backward_gradient_jac(JV, X, G, lam0)
        return float(cost), X, G, lam0
