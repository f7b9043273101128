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
``"semi-implicit-euler"``
    Symplectic (semi-implicit) Euler for mechanical states ``x = (q, v)`` with
    ``q' = v``: ``v_t = v + dt a(q, v, w_t)``, then ``q_t = q + dt v_t`` (the position moves
    with the *new* speed). Needs ``nx`` even and the first half of ``rhs`` to be exactly
    the second half of the state. Unlike explicit Euler it does not inflate the energy of
    an undamped oscillator, so gradients do not grow geometrically with the horizon.
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


def _semi_implicit_euler(f, x, u, h):
    n = x.numel() // 2
    d = f(x, u)
    v_new = x[n:] + h * d[n:]
    return ca.vertcat(x[:n] + h * v_new, v_new)


def _check_mechanical(rhs, x):
    n2 = x.numel()
    if n2 % 2 or not all(ca.is_equal(rhs[i], x[n2 // 2 + i], 2) for i in range(n2 // 2)):
        raise ValueError(
            "scheme 'semi-implicit-euler' needs a state (q, v) with q' = v: nx even and "
            f"rhs[:nx/2] equal to x[nx/2:]; got nx = {n2} and rhs[:nx/2] = {rhs[: n2 // 2]} "
            "(a stage cost adds a state, so it is not supported with this scheme)")


SCHEMES = {"euler": _euler, "heun": _heun, "rk4": _rk4,
           "semi-implicit-euler": _semi_implicit_euler}


def discretize(rhs: ca.SX, x: ca.SX, u: ca.SX, dt: float, scheme: str = "euler",
               substeps: int = 1) -> ca.SX:
    """One step of ``scheme`` for ``dx/dt = rhs(x, u)`` with ``u`` held constant.

    Parameters
    ----------
    rhs : casadi.SX, shape (nx, 1)
        ODE right-hand side, an expression of ``x`` and ``u``.
    x : casadi.SX, shape (nx, 1)
    u : casadi.SX, shape (nu, 1)
    dt : float or casadi.SX
        Step length, > 0, or a symbol (the step is then a run-time input of the stage).
    scheme : {"euler", "heun", "rk4", "semi-implicit-euler"}
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
    if scheme == "semi-implicit-euler":
        _check_mechanical(rhs, x)
    # symbols of rhs other than x and u (parameters left symbolic) ride along unchanged
    xu = {v.name() for v in ca.symvar(ca.vertcat(x, u))}
    extra = [v for v in ca.symvar(rhs) if v.name() not in xu]
    if isinstance(dt, ca.SX):
        extra = [v for v in extra if not any(ca.is_equal(v, d) for d in ca.symvar(dt))]
    if extra:
        e = ca.vertcat(*extra)
        fe = ca.Function("f", [x, u, e], [rhs])
        f = lambda x_, u_: fe(x_, u_, e)  # noqa: E731
    else:
        f = ca.Function("f", [x, u], [rhs])
    step = SCHEMES[scheme]
    h = (dt if isinstance(dt, ca.SX) else float(dt)) / substeps
    xn = x
    for _ in range(substeps):
        xn = step(f, xn, u, h)
    # Calling an SX Function on SX arguments inlines it, so xn is a flat SX graph.
    return xn
