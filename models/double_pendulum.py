"""Double pendulum with a torque at each joint (public API only: copy and edit).

A coupled plant for the oracle comparisons: two point masses on massless rods, the second
hanging from the first, so each control moves both links through the mass matrix.
"""
from __future__ import annotations

import casadi as ca

import moreauctl as mc


def double_pendulum(m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0,
                    g: float = 9.81, b: float = 0.01) -> mc.Plant:
    """Planar double pendulum, torques ``u = (u1, u2)`` at the shoulder and the elbow.

    State ``x = (th1, th2, om1, om2)``: the *absolute* angles of the two links from the
    downward vertical (``0`` hanging) and their rates. With point masses ``m1, m2`` at the
    ends of rods ``l1, l2`` the Lagrangian ``L = T - V``,
    ``T = (m1 + m2) l1^2 om1^2 / 2 + m2 l2^2 om2^2 / 2 + m2 l1 l2 cos(th1 - th2) om1 om2``,
    ``V = -(m1 + m2) g l1 cos th1 - m2 g l2 cos th2``, gives ``M(th) th'' = Q - c - grad V``:

    - ``M = [[(m1 + m2) l1^2, m2 l1 l2 cos(th1 - th2)], [m2 l1 l2 cos(th1 - th2), m2 l2^2]]``
    - ``c = m2 l1 l2 sin(th1 - th2) (om2^2, -om1^2)``
    - ``grad V = ((m1 + m2) g l1 sin th1, m2 g l2 sin th2)``
    - ``Q = (u1 - u2 - b om1 + b (om2 - om1), u2 - b (om2 - om1))``: the elbow torque acts
      on the relative angle ``th2 - th1`` (virtual work ``u1 d th1 + u2 d(th2 - th1)``), with
      viscous friction ``b`` at each joint.

    Defaults: unit masses and lengths, ``g = 9.81`` and the joint friction of the paper's
    pendulum (``mu = 0.01``, Appendix E.1.1). ``tests/test_double_pendulum.py`` derives the
    same equations from ``L`` with CasADi's Euler-Lagrange.
    """
    x = ca.SX.sym("x", 4)
    u = ca.SX.sym("u", 2)
    m1s, m2s, l1s, l2s, gs, bs = (ca.SX.sym(n) for n in ("m1", "m2", "l1", "l2", "g", "b"))
    th1, th2, om1, om2 = x[0], x[1], x[2], x[3]
    cd, sd = ca.cos(th1 - th2), ca.sin(th1 - th2)
    M11 = (m1s + m2s) * l1s ** 2
    M12 = m2s * l1s * l2s * cd
    M22 = m2s * l2s ** 2
    r1 = (u[0] - u[1] - bs * om1 + bs * (om2 - om1)
          - m2s * l1s * l2s * sd * om2 ** 2 - (m1s + m2s) * gs * l1s * ca.sin(th1))
    r2 = (u[1] - bs * (om2 - om1)
          + m2s * l1s * l2s * sd * om1 ** 2 - m2s * gs * l2s * ca.sin(th2))
    det = M11 * M22 - M12 ** 2
    rhs = ca.vertcat(om1, om2, (M22 * r1 - M12 * r2) / det, (M11 * r2 - M12 * r1) / det)
    return mc.Plant(state=x, control=u, rhs=rhs, name="double_pendulum",
                    params={"m1": m1, "m2": m2, "l1": l1, "l2": l2, "g": g, "b": b},
                    state_names=("th1", "th2", "om1", "om2"), control_names=("u1", "u2"))


def double_pendulum_swingup(horizon: int = 100, dt: float = 0.05, scheme: str = "rk4",
                            rho: float = 0.1, substeps: int = 1,
                            **plant_params) -> mc.ControlProblem:
    """Swing both links up from hanging at rest: ``x0 = 0``,
    ``h(x) = (th1 - pi)^2 + (th2 - pi)^2 + rho (om1^2 + om2^2)`` (the pendulum's terminal cost
    for each link). RK4 with ``dt = 0.05`` by default (5 s at ``T = 100``). At ``w = 0`` the
    pendulum stays at rest: the cost is ``2 pi^2``.
    """
    plant = double_pendulum(**plant_params)
    return mc.ControlProblem(
        plant, horizon=horizon, dt=dt, x0=[0.0, 0.0, 0.0, 0.0],
        terminal_cost=lambda x: ((x[0] - ca.pi) ** 2 + (x[1] - ca.pi) ** 2
                                 + rho * (x[2] ** 2 + x[3] ** 2)),
        scheme=scheme, substeps=substeps, name=f"double_pendulum-T{horizon}")
