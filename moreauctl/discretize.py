"""Discretization: a continuous-time ODE -> the stage map ``x_t = phi(w_t, x_{t-1})``.

Every scheme holds the control ``w_t`` constant over the step ``[t-1, t] * dt`` (zero-order
hold) and may split the step into ``substeps`` equal sub-steps.

Schemes
-------
``"euler"``
    Explicit Euler, ``x_t = x_{t-1} + dt f(x_{t-1}, w_t)``. For the pendulum this is
    *exactly* the update written in Appendix E.1.1 of Roulet & Harchaoui
    (``theta_t = theta_{t-1} + dt omega_{t-1}``: the angle moves with the *old* speed).
``"heun"``
    Explicit trapezoid (RK2).
``"rk4"``
    Classical fourth-order Runge–Kutta.
"""
from __future__ import annotations

import casadi as ca

__all__ = ["SCHEMES", "discretize"]


def _euler(f, x, u, h):
    return x + h * f(x, u)


def _heun(f, x, u, h):
    k1 = f(x, u)
    k2 = f(x + h * k1, u)
    return x + 0.5 * h * (k1 + k2)


def _rk4(f, x, u, h):
    k1 = f(x, u)
    k2 = f(x + 0.5 * h * k1, u)
    k3 = f(x + 0.5 * h * k2, u)
    k4 = f(x + h * k3, u)
    return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


SCHEMES = {"euler": _euler, "heun": _heun, "rk4": _rk4}


def discretize(rhs: ca.SX, x: ca.SX, u: ca.SX, dt: float, scheme: str = "euler",
               substeps: int = 1) -> ca.SX:
    """One step of ``scheme`` for ``dx/dt = rhs(x, u)`` with ``u`` held constant.

    Parameters
    ----------
    rhs : casadi.SX, shape (nx, 1)
        ODE right-hand side, an expression of ``x`` and ``u``.
    x : casadi.SX, shape (nx, 1)
    u : casadi.SX, shape (nu, 1)
    dt : float
        Step length, > 0.
    scheme : {"euler", "heun", "rk4"}
    substeps : int
        Number of equal sub-steps of length ``dt / substeps``.

    Returns
    -------
    casadi.SX, shape (nx, 1)
        ``x_next`` as an expression of ``x`` and ``u``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {sorted(SCHEMES)}")
    if not isinstance(substeps, int) or isinstance(substeps, bool) or substeps < 1:
        raise ValueError(f"substeps must be an integer >= 1; got {substeps!r}")
    f = ca.Function("f", [x, u], [rhs])
    step = SCHEMES[scheme]
    h = float(dt) / substeps
    xn = x
    for _ in range(substeps):
        xn = step(f, xn, u, h)
    # Calling an SX Function on SX arguments inlines it, so xn is a flat SX graph.
    return xn
