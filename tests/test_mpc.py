"""Warm start, shift and receding-horizon control (moreauctl.mpc).

Reference: on the linear-quadratic problem of tests/test_ilqr.py the MPC law is the first
control of the finite-horizon QP from the measured state; the closed loop is recomputed here
with the dense KKT solve of each subproblem (numpy) and the plain linear recursion
``x_{k+1} = Ad x_k + Bd u_k``.
"""
import importlib.util
import os

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models

from .test_ilqr import DT, A_C, B_C, P, Q, QLIN, R, X0, lq_kkt, lq_problem

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_shift():
    w = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(mc.shift(w), [[2, 3], [4, 5], [6, 7], [6, 7]])
    np.testing.assert_array_equal(mc.shift(w, 2, fill="zero"), [[4, 5], [6, 7], [0, 0], [0, 0]])
    np.testing.assert_array_equal(mc.shift(w, 0), w)
    np.testing.assert_array_equal(mc.shift(w, 4), [[6, 7]] * 4)
    with pytest.raises(ValueError, match=r"n must be <= T = 4"):
        mc.shift(w, 5)
    with pytest.raises(ValueError, match="unknown fill"):
        mc.shift(w, 1, fill="mean")
    with pytest.raises(ValueError, match=r"expected \(T, nw\)"):
        mc.shift(np.zeros(3))


def test_lq_closed_loop_matches_the_kkt_law():
    H, N = 8, 12
    res = mc.mpc(lq_problem(H), N, method="ilqr", verbose=False)
    assert res.success and res.states.shape == (N + 1, 3) and res.controls.shape == (N, 2)
    Ad, Bd = np.eye(3) + DT * A_C, DT * B_C
    x = X0.copy()
    running = 0.0
    for k in range(N):
        u = lq_kkt(H, x)[0][0]
        np.testing.assert_allclose(res.controls[k], u, rtol=0, atol=1e-10)
        np.testing.assert_allclose(res.states[k], x, rtol=0, atol=1e-10)
        running += DT * (x @ Q @ x + u @ R @ u)
        x = Ad @ x + Bd @ u
    np.testing.assert_allclose(res.states[N], x, atol=1e-10)
    assert res.running_cost == pytest.approx(running, rel=1e-10)
    assert res.terminal_cost == pytest.approx(x @ P @ x + QLIN @ x, rel=1e-10)
    assert np.all(res.iterations == 1)        # LQ: one iteration per solve
    np.testing.assert_allclose(res.times, DT * np.arange(N + 1))


def test_pendulum_swings_up_and_warm_starts_pay():
    prob = models.pendulum_swingup_running(horizon=30, dt=0.1, control_bounds=([-3.0], [3.0]),
                                           runtime_params=True)
    warm = mc.mpc(prob, 50, method="ddp", keep_plans=True, verbose=False)
    assert warm.success, warm.message
    assert abs(warm.states[-1, 0] - np.pi) < 1e-2 and abs(warm.states[-1, 1]) < 5e-2
    assert warm.controls.min() >= -3.0 and warm.controls.max() <= 3.0
    assert warm.plans.shape == (50, 31, 3)
    cold = mc.mpc(prob, 50, method="ddp", warm_start=False, verbose=False)
    assert warm.iterations.sum() < 0.5 * cold.iterations.sum()
    d = warm.to_dict()
    assert d["cost"] == pytest.approx(warm.cost) and len(d["controls"]) == 50


def test_simulate_is_the_plant():
    prob = models.pendulum_swingup_running(horizon=10, dt=0.1, runtime_params=True)
    seen = []

    def plant(x, u):  # the model's step plus a constant push on omega
        seen.append(x.copy())
        return np.asarray(prob.stage(u, np.concatenate([x, [0.0]]))).ravel()[:2] + [0.0, 0.01]

    res = mc.mpc(prob, 12, method="ilqr", simulate=plant, verbose=False)
    np.testing.assert_array_equal(np.array(seen), res.states[:-1])
    assert res.settings["simulate"] == "plant"


def test_bad_input():
    prob = models.pendulum_swingup_running(horizon=20, dt=0.1, runtime_params=True)
    with pytest.raises(ValueError, match=r"MPC horizon \(problem.horizon = 20 stages\) is longer "
                                         r"than the simulation \(steps = 10\)"):
        mc.mpc(prob, 10, verbose=False)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        mc.mpc(prob, 0, verbose=False)
    with pytest.raises(TypeError, match="simulate must be a callable"):
        mc.mpc(prob, 20, simulate=3, verbose=False)
    with pytest.raises(ValueError, match="simulate returned"):
        mc.mpc(prob, 20, simulate=lambda x, u: [1.0], verbose=False)
    with pytest.raises(TypeError, match="mpc needs a ControlProblem"):
        mc.mpc(object(), 20, verbose=False)
    with pytest.raises(ValueError, match="gamma"):
        mc.mpc(prob, 20, method="ddp", gamma=0.5, verbose=False)


def test_demo_small(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        "mpc_pendulum", os.path.join(REPO, "demos", "mpc_pendulum.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    out = str(tmp_path / "mpc")
    assert demo.main(["--out", out, "--horizon", "20", "--dt", "0.1", "--steps", "30",
                      "--quiet"]) == 0
    assert "every solve succeeded" in capsys.readouterr().out
    for name in ("mpc.png", "mpc.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
