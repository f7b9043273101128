"""Gradient oracle: finite differences and CasADi's own reverse mode."""
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models

from . import naive

RNG = np.random.default_rng(12345)


@pytest.mark.parametrize("make,T", [(models.pendulum_swingup, 50),
                                    (lambda horizon: models.cartpole_swingup(horizon=horizon), 100)])
@pytest.mark.parametrize("at", ["zero", "random"])
def test_check_gradient_fd(make, T, at):
    # Reference: central finite differences, relative error |a-b|/max(|a|,|b|) (Fischer).
    p = make(horizon=T)
    w = None if at == "zero" else 0.5 * RNG.normal(size=(T, p.nw))
    assert mc.check_gradient(p, w) <= 1e-6


@pytest.mark.parametrize("T", [1, 7, 200])
def test_gradient_matches_casadi_reverse_mode(T):
    # Reference: CasADi's reverse-mode gradient of the full symbolic rollout.
    p = models.pendulum_swingup(horizon=T)
    w = RNG.normal(size=(T, 1))
    ref = naive.casadi_gradient(p, w)
    assert mc.relative_error(mc.gradient(p, w), ref) <= 1e-10


def test_cartpole_rk4_gradient_matches_casadi():
    p = models.cartpole_swingup(horizon=60)
    w = RNG.normal(size=(60, 1))
    assert mc.relative_error(mc.gradient(p, w), naive.casadi_gradient(p, w)) <= 1e-10


def test_linear_chain_gradient_closed_form():
    # x_t = A x_{t-1} + B w_t, h = |x_T|^2 / 2: grad_t = B^T (A^T)^(T-t) x_T (closed form).
    import casadi as ca
    A = np.array([[1.0, 0.1], [-0.2, 0.9]])
    B = np.array([[0.0], [0.1]])
    x = ca.SX.sym("x", 2)
    u = ca.SX.sym("u", 1)
    plant = mc.Plant(state=x, control=u, rhs=ca.mtimes(ca.DM(A - np.eye(2)), x) / 0.1
                     + ca.mtimes(ca.DM(B), u) / 0.1, name="lin")
    T = 30
    p = mc.ControlProblem(plant, horizon=T, dt=0.1, x0=[1.0, -1.0],
                          terminal_cost=lambda x: 0.5 * ca.dot(x, x))
    w = RNG.normal(size=(T, 1))
    X = mc.rollout(p, w)
    lam = X[-1].copy()
    ref = np.empty_like(w)
    for t in range(T - 1, -1, -1):
        ref[t] = B.T @ lam
        lam = A.T @ lam
    np.testing.assert_allclose(mc.gradient(p, w), ref, rtol=1e-12, atol=1e-14)


def test_stored_kind_follows_the_memory_budget():
    # pendulum: one varying Jacobian entry; RK4 cart-pole: 20 varying entries exceed the
    # budget 2 (nx + nw) = 10, so its 8 sin/cos values (4 RK sub-stages) are stored instead
    pend = models.pendulum_swingup(horizon=5).chain
    assert (pend.stored, pend.njv) == ("jacobian", 1)
    cp = models.cartpole_swingup(horizon=5, scheme="rk4").chain
    assert cp.store_jacobians and (cp.stored, cp.njv) == ("transcendentals", 8)
    # more RK sub-steps: 24 values exceed the budget, the backward pass recomputes
    cp3 = models.cartpole_swingup(horizon=5, scheme="rk4", substeps=3).chain
    assert not cp3.store_jacobians and cp3.stored == "none"


@pytest.mark.parametrize("make,kw,T", [
    (models.pendulum_swingup, {}, 300),                     # stores Jacobian entries
    (models.cartpole_swingup, dict(scheme="rk4"), 40),     # stores sin/cos values
    (models.cartpole_swingup, dict(scheme="rk4", substeps=3), 40),  # recomputes
    (models.cartpole_swingup, dict(scheme="euler"), 40)])
def test_stored_passes_equal_recomputing_pass(make, kw, T):
    # Algo 3 with stored per-stage values vs the backward pass that re-evaluates the stage
    # VJPs, and CasADi's reverse mode: the same gradient up to rounding
    p = make(horizon=T, **kw)
    ch = p.chain
    w = RNG.normal(size=(T, 1))
    cost, X, G, lam0 = ch.value_and_gradient(w)
    cost2, X2 = ch.forward(w)
    G2, lam02 = ch.gradient(w, X2)
    assert cost == cost2
    np.testing.assert_array_equal(X, X2)
    assert mc.relative_error(G, G2) <= 1e-13
    assert mc.relative_error(lam0, lam02) <= 1e-13
    assert mc.relative_error(G, naive.casadi_gradient(p, w)) <= 1e-12
