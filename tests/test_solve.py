"""The solve loop: GD, line search, divergence, callbacks, optimizers."""
import json
import subprocess
import sys

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models
from moreauctl import optimizers as opt


def test_gd_swingup_T50_acceptance():
    # Issue acceptance: GD, step 0.5, 50 iterations lowers pi^2 ~ 9.87 below 0.2.
    p = models.pendulum_swingup(horizon=50)
    res = mc.solve(p, "gd", step=0.5, iters=50, verbose=False)
    assert res.success and res.status == 0 and res.nit == 50
    assert res.costs.shape == (51,)
    assert res.costs[0] == pytest.approx(np.pi**2)
    assert res.costs[-1] < 0.2
    assert res.fun == res.costs[-1]
    assert res.w.shape == (50, 1) and res.states.shape == (51, 2)
    assert mc.objective(p, res.w) == pytest.approx(res.fun, rel=1e-12)


def test_gd_T100_fixed_step_diverges_cleanly_and_armijo_converges():
    p = models.pendulum_swingup(horizon=100)
    res = mc.solve(p, "gd", step=0.5, iters=50, verbose=False)
    assert not res.success and res.status in (-1, -2)
    assert "diverged" in res.message
    assert np.all(np.isfinite(res.costs[:-1]))  # history kept up to the divergence
    assert np.isfinite(res.fun) and res.w.shape == (100, 1)
    ls = mc.solve(p, "gd", step=0.5, iters=50, line_search="armijo", verbose=False)
    assert ls.success
    assert np.all(np.diff(ls.costs) <= 0)  # Armijo never increases the cost
    assert ls.costs[-1] < 0.5 * ls.costs[0]


def test_callback_can_stop():
    p = models.pendulum_swingup(horizon=20)
    seen = []

    def cb(info):
        seen.append(info.cost)
        if info.nit == 3:
            raise StopIteration

    res = mc.solve(p, "gd", step=0.1, iters=50, callback=cb, verbose=False)
    assert res.status == 1 and res.nit == 3 and res.success
    assert res.costs.shape == (4,) and seen == list(res.costs[1:])


def test_result_is_frozen():
    p = models.pendulum_swingup(horizon=10)
    res = mc.solve(p, "gd", step=0.1, iters=2, verbose=False)
    with pytest.raises(Exception):
        res.fun = 0.0
    with pytest.raises(ValueError):
        res.w[0, 0] = 1.0


@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_momentum_beta0_is_sgd(name):
    d = np.random.default_rng(0).normal(size=(5, 1))
    o = opt.OPTIMIZERS[name](0.3, beta=0.0)
    s = o.init(d)
    step, s = o.update(d, s)
    np.testing.assert_allclose(step, 0.3 * d, rtol=1e-15)


def test_adam_first_step_is_lr_sign():
    # Bias-corrected Adam's first step is lr * d / (|d| + eps) (closed form).
    d = np.array([[2.0], [-0.5]])
    o = opt.adam(0.1)
    step, _ = o.update(d, o.init(d))
    np.testing.assert_allclose(step, 0.1 * d / (np.abs(d) + 1e-8), rtol=1e-12)


def test_rmsprop_matches_formula():
    d = np.array([[1.0], [3.0]])
    o = opt.rmsprop(0.01, rho=0.9, eps=1e-8)
    s = o.init(d)
    _, s = o.update(d, s)
    step, s = o.update(d, s)
    r = 0.9 * 0.1 * d**2 + 0.1 * d**2
    np.testing.assert_allclose(step, 0.01 * d / (np.sqrt(r) + 1e-8), rtol=1e-14)


def test_adam_method_runs_and_decreases():
    p = models.pendulum_swingup(horizon=30)
    res = mc.solve(p, "adam", step=0.1, iters=30, verbose=False)
    assert res.success and res.best_cost < res.costs[0]


def test_cli_swingup_json(tmp_path):
    out = subprocess.run([sys.executable, "-m", "moreauctl.cli", "swingup", "--horizon", "50",
                          "--method", "gd", "--step", "0.5", "--iters", "50", "--json", "-",
                          "--plot", str(tmp_path / "s.png"), "--quiet"],
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    assert d["nit"] == 50 and d["success"] is True
    assert len(d["costs"]) == 51 and d["costs"][-1] < 0.2
    assert d["settings"]["method"] == "gd" and d["settings"]["step"] == 0.5
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_cli_bad_input_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "moreauctl.cli", "swingup", "--method",
                          "moreau-gd", "--step", "1", "--quiet"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "needs gamma" in out.stderr and "Traceback" not in out.stderr
