"""IPOPT reference optimum (moreauctl.ipopt): multiple shooting through CasADi's Opti stack.

Reference values and where they come from:

- Pendulum swing-up (E.1.1: Euler, dt=0.1, h = (theta-pi)^2 + 0.1 omega^2), T=50 and T=100:
  c* = 0 (closed form: h >= 0, and with unconstrained torque two Euler steps reach any
  state, so the upright rest state is reachable). IPOPT 3.14.19 via casadi 3.8.2 (tol 1e-10)
  returns ~1e-18; scipy L-BFGS-B on mc.objective / mc.gradient (single shooting, zeros
  start) returns 1.9e-28 (T=50) and 1.7e-25 (T=100).
- The same swing-up with a control-effort running cost 0.01 u^2 (folded into the chain by
  state augmentation), T=50: c* = 0.0299503877442826. IPOPT 3.14.19 via casadi 3.8.2,
  tol 1e-10, gives 0.029950387744282575; scipy L-BFGS-B (single shooting, maxcor=30,
  gtol=1e-12) gives 0.02995038774428257, with controls within 2.3e-8 of IPOPT's. The
  L-BFGS-B cross-check is repeated in ``test_effort_cost_optimum_cross_checked``.
"""
import casadi as ca
import numpy as np
import pytest
import scipy.optimize as so

import moreauctl as mc
from moreauctl import models
from moreauctl.ipopt import IPOPT_FAILED, solve_ipopt

EFFORT_T50_OPTIMUM = 0.0299503877442826  # see the module docstring


def effort_problem(T):
    return mc.ControlProblem(models.pendulum(), horizon=T, dt=0.1, x0=[0.0, 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2,
                             stage_cost=lambda x, u: 0.01 * u[0] ** 2)


@pytest.mark.parametrize("T", [50, 100])
def test_ipopt_swingup_optimum_below_first_order_best(T):
    p = models.pendulum_swingup(horizon=T)
    res = mc.solve(p, method="ipopt", verbose=False)
    assert res.success and res.status == 0, res.message
    assert res.method == "ipopt" and res.nit > 0
    assert res.costs.shape == (2,) and res.costs[0] == pytest.approx(np.pi ** 2)
    assert res.w.shape == (T, 1) and res.states.shape == (T + 1, 2)
    # closed-form optimum 0 (see module docstring), up to IPOPT's tolerance
    assert 0 <= res.fun < 1e-12
    assert res.settings["tol"] == 1e-10 and res.settings["max_defect"] < 1e-8
    # fun is the single-shooting cost of the returned controls (same function as GD's)
    assert mc.objective(p, res.w) == pytest.approx(res.fun, abs=1e-15)
    # <= every first-order best cost: GD and Moreau GD, 50 iterations, the paper's steps
    firsts = [mc.solve(p, "gd", step=1.0 if T == 50 else 0.25, iters=50, verbose=False),
              mc.solve(p, "moreau-gd", step=2.0 ** 7, gamma=0.5, iters=50, verbose=False),
              mc.solve(p, "gd", step=0.5, iters=50, line_search="armijo", verbose=False)]
    for r in firsts:
        assert res.fun <= r.best_cost + 1e-10, (r.method, r.best_cost)


def test_ipopt_pinned_effort_optimum_T50():
    res = solve_ipopt(effort_problem(50), verbose=False)
    assert res.success, res.message
    assert res.fun == pytest.approx(EFFORT_T50_OPTIMUM, rel=1e-9)
    assert res.settings["nlp_objective"] == pytest.approx(EFFORT_T50_OPTIMUM, rel=1e-9)
    assert res.states.shape == (51, 3)  # augmented with the accumulated running cost


def test_effort_cost_optimum_cross_checked():
    # single shooting with scipy's L-BFGS-B on the compiled objective and gradient
    T = 50
    p = effort_problem(T)
    f = lambda v: mc.objective(p, v.reshape(T, 1))  # noqa: E731
    g = lambda v: mc.gradient(p, v.reshape(T, 1)).ravel()  # noqa: E731
    r = so.minimize(f, np.zeros(T), jac=g, method="L-BFGS-B",
                    options=dict(ftol=1e-20, gtol=1e-12, maxiter=5000, maxcor=30))
    ip = solve_ipopt(p, verbose=False)
    assert r.fun == pytest.approx(ip.fun, rel=1e-8)
    assert np.max(np.abs(r.x - ip.w.ravel())) < 1e-5


def test_ipopt_warm_start_and_options():
    p = models.pendulum_swingup(horizon=30)
    w0 = 0.1 * np.ones((30, 1))
    res = mc.solve(p, method="ipopt", w0=w0, ipopt_options={"ipopt.tol": 1e-8}, verbose=False)
    assert res.costs[0] == pytest.approx(mc.objective(p, w0))
    assert res.settings["tol"] == 1e-8 and res.success


def test_ipopt_failure_is_a_status_not_an_exception():
    p = models.pendulum_swingup(horizon=30)
    res = solve_ipopt(p, options={"max_iter": 1}, verbose=False)
    assert not res.success and res.status == IPOPT_FAILED
    assert "Maximum_Iterations_Exceeded" in res.message
    assert res.w.shape == (30, 1)


def test_ipopt_rejects_first_order_settings_and_bad_input():
    p = models.pendulum_swingup(horizon=10)
    with pytest.raises(ValueError, match="gamma"):
        mc.solve(p, method="ipopt", gamma=0.5)
    with pytest.raises(ValueError, match="shape"):
        solve_ipopt(p, w0=np.zeros(3), verbose=False)
    with pytest.raises(TypeError, match="mapping"):
        solve_ipopt(p, options=[("tol", 1)], verbose=False)


def test_ipopt_silent_unless_verbose(capfd):
    p = models.pendulum_swingup(horizon=10)
    solve_ipopt(p, verbose=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    solve_ipopt(p, verbose=True)
    out, _ = capfd.readouterr()
    assert "Ipopt" in out
