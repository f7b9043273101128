"""Acrobot: two links, one motor at the elbow (public API only: copy and edit)."""
from __future__ import annotations

import casadi as ca
import numpy as np

import moreauctl as mc


def acrobot(m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, lc1: float = 0.5,
            lc2: float = 0.5, I1: float = 1.0, I2: float = 1.0, g: float = 9.8) -> mc.Plant:
    """Acrobot with torque ``tau`` at the elbow (no friction).

    State ``x = (theta1, theta2, omega1, omega2)``: shoulder angle from hanging down,
    elbow angle relative to the first link, and their rates. The equations are Spong's
    (1995, "The swing up control problem for the Acrobot") as written in Sutton & Barto's
    *Reinforcement Learning* (1998, Sec. 11.3) and OpenAI gym's ``Acrobot-v1`` ("book"
    dynamics), with their parameters: masses ``m1 = m2 = 1`` kg, first link ``l1 = 1`` m,
    centres of mass ``lc1 = lc2 = 0.5`` m, moments of inertia ``I1 = I2 = 1`` kg m^2,
    ``g = 9.8``; trajax's acrobot (``optimizers_test.py``) uses the same::

        d1 = m1 lc1^2 + m2 (l1^2 + lc2^2 + 2 l1 lc2 cos th2) + I1 + I2
        d2 = m2 (lc2^2 + l1 lc2 cos th2) + I2
        phi2 = m2 lc2 g sin(th1 + th2)
        phi1 = -m2 l1 lc2 om2^2 sin th2 - 2 m2 l1 lc2 om2 om1 sin th2
               + (m1 lc1 + m2 l1) g sin th1 + phi2
        th2'' = (tau + d2/d1 phi1 - m2 l1 lc2 om1^2 sin th2 - phi2) / (m2 lc2^2 + I2 - d2^2/d1)
        th1'' = -(d2 th2'' + phi1) / d1
    """
    x = ca.SX.sym("x", 4)
    u = ca.SX.sym("u", 1)
    names = ("m1", "m2", "l1", "lc1", "lc2", "I1", "I2", "g")
    m1s, m2s, l1s, lc1s, lc2s, I1s, I2s, gs = (ca.SX.sym(n) for n in names)
    th1, th2, om1, om2 = x[0], x[1], x[2], x[3]
    d1 = m1s * lc1s ** 2 + m2s * (l1s ** 2 + lc2s ** 2 + 2 * l1s * lc2s * ca.cos(th2)) + I1s + I2s
    d2 = m2s * (lc2s ** 2 + l1s * lc2s * ca.cos(th2)) + I2s
    phi2 = m2s * lc2s * gs * ca.sin(th1 + th2)
    phi1 = (-m2s * l1s * lc2s * om2 ** 2 * ca.sin(th2)
            - 2 * m2s * l1s * lc2s * om2 * om1 * ca.sin(th2)
            + (m1s * lc1s + m2s * l1s) * gs * ca.sin(th1) + phi2)
    th2_dd = ((u[0] + d2 / d1 * phi1 - m2s * l1s * lc2s * om1 ** 2 * ca.sin(th2) - phi2)
              / (m2s * lc2s ** 2 + I2s - d2 ** 2 / d1))
    th1_dd = -(d2 * th2_dd + phi1) / d1
    values = (m1, m2, l1, lc1, lc2, I1, I2, g)
    return mc.Plant(state=x, control=u, rhs=ca.vertcat(om1, om2, th1_dd, th2_dd),
                    name="acrobot", params=dict(zip(names, values)),
                    state_names=("theta1", "theta2", "omega1", "omega2"),
                    control_names=("tau",))


def acrobot_swingup(horizon: int = 50, dt: float = 0.1, scheme: str = "euler",
                    terminal_weight: float = 1000.0, state_weight: float = 0.1,
                    effort: float = 0.01, control_bounds=None, substeps: int = 1,
                    **plant_params) -> mc.ControlProblem:
    """trajax's acrobot problem (``testAcrobotSolve``): from hanging at rest to upright,
    goal ``(pi, 0, 0, 0)``, explicit Euler with ``dt = 0.1``, ``T = 50``, costs per stage
    ``0.5 * 0.1 |x_t - goal|^2 + 0.5 * 0.01 u_t^2`` (``t = 0..T-1``) and terminal
    ``0.5 * 1000 |x_T - goal|^2``.

    trajax's costs are sums over stages, ours integrate a running cost over time; the stage
    cost is divided by ``dt`` so that Euler's ``c_{t+1} = c_t + dt l(x_t, u_t)`` adds exactly
    trajax's term (with another scheme it is the scheme's quadrature of it). At ``w = 0``
    the acrobot stays down and the cost is ``50 * 0.05 pi^2 + 500 pi^2 = 4959.476212``
    (trajax pins it to 1e-6); trajax's iLQR reaches below 51.0.
    """
    plant = acrobot(**plant_params)
    goal = ca.DM([np.pi, 0.0, 0.0, 0.0])

    def stage(x, u):
        d = x - goal
        return (0.5 * state_weight * ca.dot(d, d) + 0.5 * effort * u[0] ** 2) / dt

    return mc.ControlProblem(
        plant, horizon=horizon, dt=dt, x0=[0.0, 0.0, 0.0, 0.0],
        terminal_cost=lambda x: 0.5 * terminal_weight * ca.dot(x - goal, x - goal),
        stage_cost=stage, scheme=scheme, substeps=substeps, control_bounds=control_bounds,
        name=f"acrobot-T{horizon}")


def acrobot_geometry(x, l1: float = 1.0, l2: float = 1.0):
    """Polylines of a frame: the two links from the shoulder at (0, 0) (angles from
    hanging down)."""
    th1, th2 = float(x[0]), float(x[1])
    p1 = (l1 * np.sin(th1), -l1 * np.cos(th1))
    p2 = (p1[0] + l2 * np.sin(th1 + th2), p1[1] - l2 * np.cos(th1 + th2))
    return [([0.0, p1[0], p2[0]], [0.0, p1[1], p2[1]])]
