"""dt and plant parameters as run-time inputs of the compiled kernels (issue 12, item 5).

Evidence without timings: the second problem (another horizon and dt, or other plant
parameters) gets the very same module object, the iLQR module too, and no file is added to
the kernel cache; its numbers equal those of kernels compiled with the values in
(``runtime_params=False``) to rounding.
"""
import os

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import _config, models
from moreauctl.codegen.ilqr import ilqr_kernels


def _cache_files():
    d = _config.cache_dir()
    return {os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs}


def test_a_new_dt_compiles_nothing():
    a = models.pendulum_swingup_running(horizon=100, runtime_params=True)   # dt = 0.05
    mc.solve(a, "ddp", iters=3, verbose=False)                # compiles (or loads) once
    mc.gradient(a)
    before = _cache_files()
    b = models.pendulum_swingup_running(horizon=400, runtime_params=True)   # dt = 0.0125
    res = mc.solve(b, "ddp", iters=3, verbose=False)
    g = mc.gradient(b)
    assert b.chain.kernels is a.chain.kernels
    assert ilqr_kernels(b.chain)[0] is ilqr_kernels(a.chain)[0]
    assert _cache_files() == before                           # no new module, no new cache
    np.testing.assert_array_equal(b.chain.params, [0.0125, 1.0, 1.0, 0.01, 9.81])
    assert res.nit == 3 and np.all(np.isfinite(g))


def test_run_time_values_equal_compiled_in_values():
    kw = dict(horizon=60, m=2.0, mu=0.05)   # another dt and other plant parameters
    p = models.pendulum_swingup_running(runtime_params=True, **kw)
    q = models.pendulum_swingup_running(runtime_params=False, **kw)
    assert p.chain.kernels is not q.chain.kernels and q.chain.params.size == 0
    w = np.random.default_rng(0).normal(size=(p.horizon, 1))
    np.testing.assert_allclose(mc.rollout(p, w), mc.rollout(q, w), rtol=1e-14, atol=1e-14)
    assert mc.objective(p, w) == pytest.approx(mc.objective(q, w), rel=1e-14)
    np.testing.assert_allclose(mc.gradient(p, w), mc.gradient(q, w), rtol=1e-12, atol=1e-15)
    assert mc.check_gradient(p, w) < 1e-6
    # the Moreau pass too (a well-conditioned problem: rounding stays rounding)
    dp = mc.moreau_direction(p, w, alpha=0.5, gamma=0.9)
    dq = mc.moreau_direction(q, w, alpha=0.5, gamma=0.9)
    assert mc.relative_error(dp, dq) < 1e-12


def test_other_plant_parameters_share_the_module():
    a = models.pendulum_swingup_running(horizon=80, runtime_params=True)
    b = models.pendulum_swingup_running(horizon=80, m=1.5, l=0.8, runtime_params=True)
    assert a.chain.kernels is b.chain.kernels
    assert mc.objective(a, np.ones((80, 1))) != mc.objective(b, np.ones((80, 1)))


def test_too_many_arguments_for_run_time_parameters():
    # the scalar stage functions numba inlines take nw + 2 nx + n_params arguments (<= 30)
    x = ca.SX.sym("x", 14)
    u = ca.SX.sym("u", 2)
    k = ca.SX.sym("k")
    plant = mc.Plant(state=x, control=u, rhs=-k * x + ca.vertcat(u, ca.SX.zeros(12)),
                     name="wide", params={"k": 1.0})
    with pytest.raises(ValueError, match=r"nw \+ 2 nx \+ n_params <= 30.*2 \+ 2\*15 \+ 2 = 34"):
        mc.ControlProblem(plant, horizon=5, dt=0.1, x0=np.zeros(14), terminal_cost=lambda x: x[0],
                          stage_cost=lambda x, u: u[0] ** 2, runtime_params=True)
    ok = mc.ControlProblem(plant, horizon=5, dt=0.1, x0=np.zeros(14), terminal_cost=lambda x: x[0],
                           stage_cost=lambda x, u: u[0] ** 2)       # compiled-in values
    assert ok.chain.params.size == 0


def test_a_fixed_total_time_sweep_compiles_once():
    # the study front end passes problem_kwargs to the model factories
    from moreauctl.studies import horizon_sweep  # noqa: F401  (the documented route)
    made = [models.cartpole_swingup(horizon=T, dt=2.0 / T, runtime_params=True)
            for T in (20, 40, 80)]
    assert made[0].chain.kernels is made[1].chain.kernels is made[2].chain.kernels
    assert [p.chain.params[0] for p in made] == [0.1, 0.05, 0.025]
