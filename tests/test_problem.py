"""Plants, discretization and input validation."""
import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models

from . import naive


def toy_plant():
    x = ca.SX.sym("x", 2)
    u = ca.SX.sym("u", 1)
    return mc.Plant(state=x, control=u, rhs=ca.vertcat(x[1], -ca.sin(x[0]) + u[0]), name="toy")


def test_pendulum_euler_is_exactly_E11():
    # Appendix E.1.1: theta_t = theta + dt omega; omega_t = omega + dt(-(g/l) sin theta
    # - mu/(m l^2) omega + w/(m l^2)), with m = l = 1, mu = 0.01, g = 9.81, dt = 0.1.
    p = models.pendulum_swingup(horizon=3)
    th, om, w = 0.3, -1.2, 0.7
    expect = [th + 0.1 * om, om + 0.1 * (-9.81 * np.sin(th) - 0.01 * om + w)]
    got = np.asarray(p.stage(w, [th, om])).ravel()
    np.testing.assert_allclose(got, expect, rtol=0, atol=1e-15)


def test_pendulum_cost_at_rest_is_pi_squared():
    # w = 0 leaves the pendulum at rest at theta = 0: h = (0 - pi)^2 (closed form).
    p = models.pendulum_swingup(horizon=50)
    assert mc.objective(p) == pytest.approx(np.pi**2, rel=1e-15)


def test_rollout_matches_casadi_stage_by_stage():
    p = models.cartpole_swingup(horizon=40)
    w = np.random.default_rng(1).normal(size=(40, 1))
    ref_cost, ref_X = naive.forward(p, w)
    np.testing.assert_allclose(mc.rollout(p, w), ref_X, rtol=1e-13, atol=1e-13)
    assert mc.objective(p, w) == pytest.approx(ref_cost, rel=1e-13)


def test_rk4_order_on_linear_ode():
    # x' = -x, x(0)=1: RK4 with one step dt gives the degree-4 Taylor polynomial of exp(-dt).
    x = ca.SX.sym("x", 1)
    u = ca.SX.sym("u", 1)
    plant = mc.Plant(state=x, control=u, rhs=-x + 0 * u, name="decay")
    dt = 0.3
    p = mc.ControlProblem(plant, horizon=1, dt=dt, x0=[1.0], terminal_cost=lambda x: x[0],
                          scheme="rk4")
    taylor = 1 - dt + dt**2 / 2 - dt**3 / 6 + dt**4 / 24
    assert mc.objective(p, [[0.0]]) == pytest.approx(taylor, rel=1e-15)


def test_stage_cost_is_folded_by_augmentation():
    # x' = u, l = u^2, Euler: c_T = dt sum u_t^2 (closed form), h = x_T^2 + c_T.
    x = ca.SX.sym("x", 1)
    u = ca.SX.sym("u", 1)
    plant = mc.Plant(state=x, control=u, rhs=u, name="integrator")
    p = mc.ControlProblem(plant, horizon=4, dt=0.5, x0=[1.0], terminal_cost=lambda x: x[0] ** 2,
                          stage_cost=lambda x, u: u[0] ** 2)
    w = np.array([[1.0], [-2.0], [0.5], [0.0]])
    xT = 1.0 + 0.5 * w.sum()
    assert p.nx == 2
    assert mc.objective(p, w) == pytest.approx(xT**2 + 0.5 * np.sum(w**2), rel=1e-14)
    assert mc.check_gradient(p, w) <= 1e-6


def test_plant_params_are_substituted():
    x = ca.SX.sym("x", 1)
    u = ca.SX.sym("u", 1)
    k = ca.SX.sym("k")
    plant = mc.Plant(state=x, control=u, rhs=-k * x + u, name="p", params={"k": 2.0})
    assert float(plant.ode()(1.0, 0.0)) == -2.0
    with pytest.raises(ValueError, match="symbol 'k'"):
        mc.Plant(state=x, control=u, rhs=-k * x + u, name="p")


# ---- bad input: each gets an error naming what was expected and what arrived ----------

def test_bad_w0_shape():
    p = models.pendulum_swingup(horizon=10)
    with pytest.raises(ValueError, match=r"w0 has shape \(9, 1\); expected \(T, nw\) = \(10, 1\)"):
        mc.solve(p, "gd", step=0.1, iters=1, w0=np.zeros((9, 1)), verbose=False)


def test_nan_in_x0():
    with pytest.raises(ValueError, match="x0 must have finite entries"):
        mc.ControlProblem(toy_plant(), horizon=5, dt=0.1, x0=[np.nan, 0.0],
                          terminal_cost=lambda x: x[0] ** 2)


def test_x0_wrong_shape():
    with pytest.raises(ValueError, match=r"x0 has shape \(3,\); expected \(nx,\) = \(2,\)"):
        mc.ControlProblem(toy_plant(), horizon=5, dt=0.1, x0=[0.0, 0.0, 0.0],
                          terminal_cost=lambda x: x[0] ** 2)


def test_unknown_method():
    p = models.pendulum_swingup(horizon=10)
    with pytest.raises(ValueError, match="unknown method 'gdd'; choose one of"):
        mc.solve(p, "gdd", step=0.1, iters=1)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown scheme 'rk5'; choose one of"):
        models.pendulum_swingup(horizon=10, scheme="rk5")


@pytest.mark.parametrize("dt", [-0.1, 0.0, float("inf"), float("nan")])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        models.pendulum_swingup(horizon=10, dt=dt)


@pytest.mark.parametrize("T", [0, -3, 2.5, True])
def test_bad_horizon(T):
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        models.pendulum_swingup(horizon=T)


def test_misspelled_keyword_fails_loudly():
    p = models.pendulum_swingup(horizon=10)
    with pytest.raises(TypeError):
        mc.solve(p, "moreau-gd", step=1.0, gama=0.5)


def test_bad_step_and_iters():
    p = models.pendulum_swingup(horizon=10)
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        mc.solve(p, "gd", step=-1.0)
    with pytest.raises(ValueError, match="iters must be an integer >= 0"):
        mc.solve(p, "gd", step=1.0, iters=-1)


def test_semi_implicit_euler_pendulum_closed_form():
    # omega first, then theta with the NEW omega (symplectic Euler), E.1.1 parameters.
    p = models.pendulum_swingup(horizon=3, scheme="semi-implicit-euler")
    th, om, w = 0.3, -1.2, 0.7
    om_new = om + 0.1 * (-9.81 * np.sin(th) - 0.01 * om + w)
    got = np.asarray(p.stage(w, [th, om])).ravel()
    np.testing.assert_allclose(got, [th + 0.1 * om_new, om_new], rtol=0, atol=1e-15)
    assert mc.check_gradient(p, np.ones((3, 1))) <= 1e-6


def test_semi_implicit_euler_needs_mechanical_state():
    with pytest.raises(ValueError, match="semi-implicit-euler' needs a state"):
        mc.ControlProblem(toy_plant(), horizon=5, dt=0.1, x0=[0.0, 0.0],
                          terminal_cost=lambda x: x[0] ** 2, stage_cost=lambda x, u: u[0] ** 2,
                          scheme="semi-implicit-euler")
