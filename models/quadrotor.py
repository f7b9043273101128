"""Planar quadrotor (public API only: copy and edit)."""
from __future__ import annotations

import casadi as ca
import numpy as np

import moreauctl as mc


def quadrotor(m: float = 0.486, r: float = 0.25, I: float = 0.00383,
              g: float = 9.81) -> mc.Plant:
    """Quadrotor in the vertical plane, two rotor thrusts as controls.

    State ``x = (px, pz, theta, vx, vz, omega)``; controls ``(u1, u2)``, the thrusts of the
    two rotors at distance ``r`` from the centre::

        vx' = -(u1 + u2) sin(theta) / m,  vz' = (u1 + u2) cos(theta) / m - g,
        omega' = r (u1 - u2) / I

    Tedrake, *Underactuated Robotics* (MIT 6.832 notes, "Acrobots, Cart-Poles, and
    Quadrotors", planar quadrotor), with the parameters of its example (Drake's
    ``Quadrotor2D``): ``m = 0.486`` kg, arm ``r = 0.25`` m, ``I = 0.00383`` kg m^2,
    ``g = 9.81``. Hover: ``u1 = u2 = m g / 2``.
    """
    x = ca.SX.sym("x", 6)
    u = ca.SX.sym("u", 2)
    ms, rs, Is, gs = (ca.SX.sym(n) for n in ("m", "r", "I", "g"))
    th = x[2]
    f = u[0] + u[1]
    rhs = ca.vertcat(x[3], x[4], x[5], -f * ca.sin(th) / ms, f * ca.cos(th) / ms - gs,
                     rs * (u[0] - u[1]) / Is)
    return mc.Plant(state=x, control=u, rhs=rhs, name="quadrotor",
                    params={"m": m, "r": r, "I": I, "g": g},
                    state_names=("px", "pz", "theta", "vx", "vz", "omega"),
                    control_names=("u1", "u2"))


def quadrotor_reach(horizon: int = 100, dt: float = 0.02, scheme: str = "rk4",
                    goal=(1.0, 1.0, 0.0, 0.0, 0.0, 0.0), effort: float = 1e-2,
                    umax_factor: float = 1.5, substeps: int = 1, control_bounds="default",
                    **plant_params) -> mc.ControlProblem:
    """Reach task: from hover at the origin to hover at ``goal`` (1 m right and 1 m up by
    default) in ``horizon * dt`` seconds (2 s by default).

    Cost ``100 |x_T - goal|^2`` at the end plus ``effort |u - u_hover|^2`` (thrust away from
    hover, ``u_hover = m g / 2`` per rotor) as running cost; each thrust in
    ``[0, umax_factor * m g]`` (rotors only push) unless ``control_bounds`` is given.
    """
    plant = quadrotor(**plant_params)
    m, g = plant.params["m"], plant.params["g"]
    hover = 0.5 * m * g
    gl = ca.DM(list(goal))
    if isinstance(control_bounds, str) and control_bounds == "default":
        control_bounds = ([0.0, 0.0], [umax_factor * m * g] * 2)
    x0 = [0.0] * 6
    return mc.ControlProblem(
        plant, horizon=horizon, dt=dt, x0=x0,
        terminal_cost=lambda x: 100.0 * ca.dot(x - gl, x - gl),
        stage_cost=lambda x, u: effort * ((u[0] - hover) ** 2 + (u[1] - hover) ** 2),
        scheme=scheme, substeps=substeps, control_bounds=control_bounds,
        name=f"quadrotor-T{horizon}")


def quadrotor_geometry(x, r: float = 0.25):
    """Polylines of a frame: the frame bar and the two rotor masts."""
    px, pz, th = float(x[0]), float(x[1]), float(x[2])
    c, s = np.cos(th), np.sin(th)
    left, right = (px - r * c, pz - r * s), (px + r * c, pz + r * s)
    up = (-s * 0.08, c * 0.08)
    return [([left[0], right[0]], [left[1], right[1]]),
            ([right[0], right[0] + up[0]], [right[1], right[1] + up[1]]),
            ([left[0], left[0] + up[0]], [left[1], left[1] + up[1]])]
