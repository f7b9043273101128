"""Cart-pole (inverted pendulum on a cart; public API only: copy and edit)."""
from __future__ import annotations

import casadi as ca
import numpy as np

import moreauctl as mc


def cartpole(m_cart: float = 1.0, m_pole: float = 0.1, l: float = 0.5,
             g: float = 9.8) -> mc.Plant:
    """Frictionless cart-pole, force-controlled.

    State ``x = (p, theta, v, omega)``: cart position and velocity, pole angle from the
    upright and its rate; control: horizontal force ``F`` on the cart. Equations (frictionless
    case) and default parameters (cart 1.0 kg, pole 0.1 kg, half pole length ``l = 0.5`` m,
    ``g = 9.8``) are those of Barto, Sutton & Anderson (1983), "Neuronlike adaptive elements
    that can solve difficult learning control problems", as corrected by Florian (2007),
    "Correct equations for the dynamics of the cart-pole system", Eqs. (23)-(24) with zero
    friction::

        theta'' = (g sin th + cos th (-F - m_p l om^2 sin th)/(m_c + m_p))
                  / (l (4/3 - m_p cos^2 th / (m_c + m_p)))
        p''     = (F + m_p l (om^2 sin th - theta'' cos th)) / (m_c + m_p)
    """
    x = ca.SX.sym("x", 4)
    u = ca.SX.sym("u", 1)
    mc_, mp, ls, gs = (ca.SX.sym(n) for n in ("m_cart", "m_pole", "l", "g"))
    th, v, om = x[1], x[2], x[3]
    F = u[0]
    mt = mc_ + mp
    s, c = ca.sin(th), ca.cos(th)
    th_dd = (gs * s + c * (-F - mp * ls * om**2 * s) / mt) / (ls * (4.0 / 3.0 - mp * c**2 / mt))
    p_dd = (F + mp * ls * (om**2 * s - th_dd * c)) / mt
    rhs = ca.vertcat(v, om, p_dd, th_dd)
    return mc.Plant(state=x, control=u, rhs=rhs, name="cartpole",
                 params={"m_cart": m_cart, "m_pole": m_pole, "l": l, "g": g},
                 state_names=("p", "theta", "v", "omega"), control_names=("F",))


def cartpole_swingup(horizon: int = 100, dt: float = 0.05, scheme: str = "rk4",
                     substeps: int = 1, runtime_params: bool = False,
                     **plant_params) -> mc.ControlProblem:
    """Swing the pole up from hanging down (``theta = pi``) to upright (``theta = 0``).

    ``x0 = (0, pi, 0, 0)``, ``h(x) = theta^2 + 0.1 p^2 + 0.1 (v^2 + omega^2)``: a terminal
    cost of the same shape as the pendulum's. RK4 by default, ``dt = 0.05``.
    ``runtime_params``: see :class:`moreauctl.ControlProblem`.
    """
    plant = cartpole(**plant_params)
    return mc.ControlProblem(
        plant, horizon=horizon, dt=dt, x0=[0.0, ca.pi, 0.0, 0.0],
        terminal_cost=lambda x: x[1] ** 2 + 0.1 * x[0] ** 2 + 0.1 * (x[2] ** 2 + x[3] ** 2),
        scheme=scheme, substeps=substeps, runtime_params=runtime_params,
        name=f"cartpole-T{horizon}")


def cartpole_geometry(x, l: float = 0.5):
    """Polylines of a frame: the cart (a box on the rail) and the pole of length ``2 l``
    (``theta = 0`` upright)."""
    p, th = float(x[0]), float(x[1])
    cart = ([p - 0.2, p + 0.2, p + 0.2, p - 0.2, p - 0.2], [-0.1, -0.1, 0.1, 0.1, -0.1])
    return [cart, ([p, p + 2 * l * np.sin(th)], [0.0, 2 * l * np.cos(th)])]
