"""The swinging pendulum of Roulet & Harchaoui, Appendix E.1.1 (public API only: copy and edit)."""
from __future__ import annotations

import casadi as ca
import numpy as np

import moreauctl as mc


def pendulum(m: float = 1.0, l: float = 1.0, mu: float = 0.01, g: float = 9.81) -> mc.Plant:
    """Pendulum with friction, torque-controlled.

    ``theta'' = -(g/l) sin(theta) - mu/(m l^2) theta' + w/(m l^2)`` with state
    ``x = (theta, omega)`` (``theta = 0`` hanging down) and control ``w`` (torque).
    Formula and defaults ``m = l = 1``, ``mu = 0.01``, ``g = 9.81``: Roulet & Harchaoui,
    *Differentiable Programming a la Moreau*, Appendix E.1.1.
    """
    x = ca.SX.sym("x", 2)
    u = ca.SX.sym("u", 1)
    ms, ls, mus, gs = (ca.SX.sym(n) for n in ("m", "l", "mu", "g"))
    theta, omega = x[0], x[1]
    rhs = ca.vertcat(omega, -gs / ls * ca.sin(theta) - mus / (ms * ls**2) * omega
                     + u[0] / (ms * ls**2))
    return mc.Plant(state=x, control=u, rhs=rhs, name="pendulum",
                 params={"m": m, "l": l, "mu": mu, "g": g},
                 state_names=("theta", "omega"), control_names=("u",))


def pendulum_swingup(horizon: int = 100, dt: float = 0.1, scheme: str = "euler",
                     rho: float = 0.1, substeps: int = 1, runtime_params: bool = False,
                     **plant_params) -> mc.ControlProblem:
    """The paper's swing-up: ``x0 = (0, 0)``, ``h(x) = (theta - pi)^2 + rho omega^2``.

    Defaults (``dt = 0.1``, ``rho = 0.1``, explicit Euler, T = 50 or 100 in the paper) are
    those of Appendix E.1.1. With ``scheme="euler"`` the stage is exactly E.1.1's update
    ``theta_t = theta_{t-1} + dt omega_{t-1}``,
    ``omega_t = omega_{t-1} + dt (-(g/l) sin theta_{t-1} - mu/(m l^2) omega_{t-1} + w_t/(m l^2))``.
    At ``w = 0`` the pendulum stays at rest, so the cost is ``pi^2``. ``runtime_params``:
    see :class:`moreauctl.ControlProblem` (``dt`` and the parameters as run-time inputs of
    the kernels, for sweeps over ``dt``).
    """
    plant = pendulum(**plant_params)
    return mc.ControlProblem(plant, horizon=horizon, dt=dt, x0=[0.0, 0.0],
                          terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + rho * x[1] ** 2,
                          scheme=scheme, substeps=substeps, runtime_params=runtime_params,
                          name=f"pendulum-T{horizon}")


def pendulum_swingup_running(horizon: int = 1000, dt=None, scheme: str = "rk4",
                             total_time: float = 5.0, rho: float = 0.1, effort: float = 1e-2,
                             control_bounds=None, substeps: int = 1, runtime_params: bool = False,
                             **plant_params) -> mc.ControlProblem:
    """The swing-up of issue 12 (the long-horizon benchmark): ``total_time`` seconds split
    into ``horizon`` steps of RK4 (``dt = total_time / horizon`` unless ``dt`` is given: then
    the problem lasts ``horizon * dt``), ``x0 = (0, 0)``, terminal
    cost ``(theta - pi)^2 + rho omega^2`` and running cost ``effort * u^2`` (folded into the
    chain as an accumulated-cost state, so ``nx = 3``).

    IPOPT's optimum (tol 1e-10): 0.19345144160805 at T = 10^3 and 0.19344858822171 at
    T = 10^4; with ``control_bounds=([-1.5], [1.5])``, 2.20655143 at T = 10^3 (see
    tests/test_ilqr.py and tests/test_plants.py).

    With ``runtime_params=True``, ``dt`` and the pendulum's parameters are run-time inputs
    of the compiled kernels: every horizon of a fixed-total-time study shares one compiled
    module (the passes are then about 10% slower: CasADi cannot fold the constants).
    """
    plant = pendulum(**plant_params)
    return mc.ControlProblem(plant, horizon=horizon, dt=total_time / horizon if dt is None
                             else dt, x0=[0.0, 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + rho * x[1] ** 2,
                             stage_cost=lambda x, u: effort * u[0] ** 2, scheme=scheme,
                             substeps=substeps, control_bounds=control_bounds,
                             runtime_params=runtime_params, name=f"pendulum-running-T{horizon}")


def pendulum_geometry(x, l: float = 1.0):
    """Polylines of a frame: the rod from the pivot at (0, 0) (``theta = 0`` hanging down)."""
    th = float(x[0])
    return [([0.0, l * np.sin(th)], [0.0, -l * np.cos(th)])]
