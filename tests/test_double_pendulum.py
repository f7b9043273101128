"""The double pendulum (models/double_pendulum.py) against its Lagrangian.

Reference: the Euler-Lagrange equations ``d/dt dL/dom - dL/dth = Q`` of
``L = T - V`` derived by CasADi's own differentiation (an independent derivation of the
mass matrix, Coriolis and gravity terms written out in the model), and the conservation of
energy without torques and friction.
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models


def _euler_lagrange_accel(m1, m2, l1, l2, g, b):
    th, om = ca.SX.sym("th", 2), ca.SX.sym("om", 2)
    u = ca.SX.sym("u", 2)
    T = ((m1 + m2) * l1 ** 2 * om[0] ** 2 / 2 + m2 * l2 ** 2 * om[1] ** 2 / 2
         + m2 * l1 * l2 * ca.cos(th[0] - th[1]) * om[0] * om[1])
    V = -(m1 + m2) * g * l1 * ca.cos(th[0]) - m2 * g * l2 * ca.cos(th[1])
    L = T - V
    dL_dom = ca.gradient(L, om)
    M = ca.jacobian(dL_dom, om)
    # d/dt dL/dom = M th'' + (d dL/dom / d th) om
    rel = om[1] - om[0]
    Q = ca.vertcat(u[0] - u[1] - b * om[0] + b * rel, u[1] - b * rel)
    rhs = Q - ca.mtimes(ca.jacobian(dL_dom, th), om) + ca.gradient(L, th)
    return ca.Function("acc", [th, om, u], [ca.solve(M, rhs)])


def test_equations_of_motion_are_euler_lagrange():
    params = dict(m1=1.3, m2=0.7, l1=0.9, l2=1.2, g=9.81, b=0.05)
    plant = models.double_pendulum(**params)
    acc = _euler_lagrange_accel(**params)
    rng = np.random.default_rng(0)
    prob = mc.ControlProblem(plant, horizon=1, dt=1e-3, x0=[0.0] * 4,
                             terminal_cost=lambda x: x[0] ** 2, scheme="euler")
    for _ in range(5):
        x = rng.normal(size=4)
        w = rng.normal(size=2)
        # one explicit Euler step of length dt gives the state derivative exactly
        xdot = (np.asarray(prob.stage(w, x), dtype=float).ravel() - x) / 1e-3
        np.testing.assert_allclose(xdot[:2], x[2:], rtol=1e-10)
        ref = np.asarray(acc(x[:2], x[2:], w), dtype=float).ravel()
        np.testing.assert_allclose(xdot[2:], ref, rtol=1e-9, atol=1e-9)


def test_energy_is_conserved_without_torque_and_friction():
    p = models.double_pendulum_swingup(horizon=2000, dt=1e-3, b=0.0)
    # the CasADi stage itself, step by step (no kernels to compile)
    x = np.array([1.0, -0.5, 0.0, 0.3])
    X = [x]
    for _ in range(2000):
        x = np.asarray(p.stage(np.zeros(2), x), dtype=float).ravel()
        X.append(x)

    def energy(x):
        th1, th2, om1, om2 = x
        T = om1 ** 2 + om2 ** 2 / 2 + np.cos(th1 - th2) * om1 * om2
        return T - 2 * 9.81 * np.cos(th1) - 9.81 * np.cos(th2)
    assert energy(X[-1]) == pytest.approx(energy(X[0]), rel=1e-9)


def test_swingup_problem_at_rest_costs_two_pi_squared():
    p = models.double_pendulum_swingup(horizon=20)
    x = np.asarray(p.x0_chain, dtype=float)
    for _ in range(20):
        x = np.asarray(p.stage(np.zeros(2), x), dtype=float).ravel()
    assert float(p.objective(x)) == pytest.approx(2 * np.pi ** 2, rel=1e-15)
    assert p.nw == 2 and p.nx == 4
