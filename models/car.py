"""Kinematic car (bicycle model; public API only: copy and edit)."""
from __future__ import annotations

import casadi as ca
import numpy as np

import moreauctl as mc


def car(L: float = 2.5) -> mc.Plant:
    """Kinematic bicycle model referenced at the rear axle.

    State ``x = (px, py, psi, v)``: position, heading and forward speed; controls
    ``(a, delta)``: acceleration and front steering angle::

        px' = v cos psi,   py' = v sin psi,   psi' = v tan(delta) / L,   v' = a

    (Rajamani, *Vehicle Dynamics and Control*, 2nd ed. 2012, Sec. 2.2 with the slip angle
    of the rear-axle reference point zero; Kong, Pfeiffer, Schildbach & Borrelli 2015,
    "Kinematic and dynamic vehicle models for autonomous driving control design", Eq. (1)
    with ``l_r = 0``). Wheelbase ``L = 2.5`` m: a mid-size passenger car (Kong et al. use
    ``l_f + l_r`` of about 2.9 m for a Hyundai Azera).
    """
    x = ca.SX.sym("x", 4)
    u = ca.SX.sym("u", 2)
    Ls = ca.SX.sym("L")
    psi, v = x[2], x[3]
    rhs = ca.vertcat(v * ca.cos(psi), v * ca.sin(psi), v * ca.tan(u[1]) / Ls, u[0])
    return mc.Plant(state=x, control=u, rhs=rhs, name="car", params={"L": L},
                    state_names=("px", "py", "psi", "v"), control_names=("a", "delta"))


def car_parking(horizon: int = 100, dt: float = 0.05, scheme: str = "rk4",
                goal=(4.0, 1.5, 0.0, 0.0), amax: float = 3.0, delta_max: float = 0.6,
                effort: float = 1e-2, substeps: int = 1, control_bounds="default",
                **plant_params) -> mc.ControlProblem:
    """Reach task: from rest at the origin heading +x to ``goal = (px, py, psi, v)`` (by
    default 4 m ahead and 1.5 m to the left, same heading, at rest: a lane change into a
    parking spot) in ``horizon * dt`` seconds (5 s by default).

    Cost ``|x_T - goal|^2`` weighted ``(1, 1, 1, 1)`` times 100 at the end, plus the running
    cost ``effort (a^2 + delta^2)``. Bounds ``|a| <= amax = 3`` m/s^2 (a firm braking is
    about 6) and ``|delta| <= delta_max = 0.6`` rad (about 34 degrees, a typical maximum
    steering angle) unless ``control_bounds`` is given (None: unbounded).
    """
    plant = car(**plant_params)
    g = ca.DM(list(goal))
    if isinstance(control_bounds, str) and control_bounds == "default":
        control_bounds = ([-amax, -delta_max], [amax, delta_max])
    return mc.ControlProblem(
        plant, horizon=horizon, dt=dt, x0=[0.0, 0.0, 0.0, 0.0],
        terminal_cost=lambda x: 100.0 * ca.dot(x - g, x - g),
        stage_cost=lambda x, u: effort * (u[0] ** 2 + u[1] ** 2), scheme=scheme,
        substeps=substeps, control_bounds=control_bounds, name=f"car-T{horizon}")


def car_geometry(x, L: float = 2.5, width: float = 1.6):
    """Polylines of a frame: the car's outline (rear axle at the position) and its path
    marker."""
    px, py, psi = float(x[0]), float(x[1]), float(x[2])
    c, s = np.cos(psi), np.sin(psi)
    corners = [(-0.5, -width / 2), (L + 0.7, -width / 2), (L + 0.7, width / 2),
               (-0.5, width / 2), (-0.5, -width / 2)]
    xs = [px + c * a - s * b for a, b in corners]
    ys = [py + s * a + c * b for a, b in corners]
    return [(xs, ys), ([px, px + c * L], [py, py + s * L])]
