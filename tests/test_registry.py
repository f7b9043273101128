"""solve's front end: the method registry, oracle/optimizer options, schedules, projection."""
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models, registry
from moreauctl.oracles import GradientOracle, Oracle, OracleOutput
from moreauctl.optimizers import (adam, exponential_decay, momentum, piecewise_constant,
                                  projected, sgd)


def test_methods_is_a_read_only_view_of_the_registry():
    assert {"gd", "moreau-gd", "moreau-adam", "ipopt"} <= set(mc.METHODS)
    with pytest.raises(TypeError):
        mc.METHODS["x"] = None
    with pytest.raises(ValueError, match=r"unknown method 'graddesc'; choose one of \["):
        mc.solve(models.pendulum_swingup(horizon=5), "graddesc", iters=1)


def test_explicit_arrays_use_step_as_learning_rate():
    # With Algo 2's arrays there is no scalar alpha: moreau-gd takes w - step * g, and
    # step = 1 is Algo 6 exactly (reference: the directions g of mc.moreau_direction).
    T = 12
    p = models.pendulum_swingup(horizon=T)
    gammas = 0.7 ** np.arange(T + 1, 0, -1)
    alphas = 2.0 * gammas[1:]
    g = mc.moreau_direction(p, None, gammas=gammas, alphas=alphas)
    for step in (1.0, 0.25):
        r = mc.solve(p, "moreau-gd", step=step, iters=1, verbose=False,
                     oracle_options={"gammas": gammas, "alphas": alphas})
        np.testing.assert_allclose(r.w, -step * g, rtol=1e-15, atol=0)


def test_oracle_options_alias_and_unknown_keys():
    p = models.pendulum_swingup(horizon=8)
    a = mc.solve(p, "moreau-gd", step=4.0, gamma=0.5, iters=2, verbose=False,
                 moreau_options={"inner": "gd"})
    b = mc.solve(p, "moreau-gd", step=4.0, gamma=0.5, iters=2, verbose=False,
                 oracle_options={"inner": "gd"})
    np.testing.assert_array_equal(a.costs, b.costs)
    with pytest.raises(ValueError, match="not both"):
        mc.solve(p, "moreau-gd", gamma=0.5, oracle_options={}, moreau_options={})
    with pytest.raises(TypeError, match="gama"):
        mc.solve(p, "moreau-gd", gamma=0.5, oracle_options={"gama": 0.5})
    with pytest.raises(TypeError, match="betta"):
        mc.solve(p, "momentum", optimizer_options={"betta": 0.5})
    with pytest.raises(ValueError, match="step is alpha"):
        mc.solve(p, "moreau-gd", gamma=0.5, oracle_options={"alpha": 2.0})
    with pytest.raises(ValueError, match="does not apply to method 'ipopt'"):
        mc.solve(p, "ipopt", gamma=0.5)
    with pytest.raises(ValueError, match="epochs applies to problems with data"):
        mc.solve(p, "gd", epochs=3)


class _HalfGradient(Oracle):
    """A test oracle with state: half the gradient, counting its calls."""

    def init(self, w):
        return 0

    def __call__(self, w, state=0, data=None):
        cost, X, G, lam0 = self.chain.value_and_gradient(w, data)
        return OracleOutput(cost=cost, direction=0.5 * G, states=X, gradient=G), state + 1


def test_a_new_oracle_registers_itself_and_its_methods():
    names = ["half-" + o for o in registry.OPTIMIZERS]
    try:
        registry.register_oracle("half", _HalfGradient)
        registry.register_oracle_methods("half", "half")
        assert set(names) <= set(mc.METHODS)
        p = models.pendulum_swingup(horizon=10)
        r = mc.solve(p, "half-gd", step=0.2, iters=5, verbose=False)
        r2 = mc.solve(p, "gd", step=0.1, iters=5, verbose=False)
        np.testing.assert_allclose(r.costs, r2.costs, rtol=1e-14)
        with pytest.raises(ValueError, match="already registered"):
            registry.register_oracle("half", _HalfGradient)
    finally:
        registry.ORACLES.pop("half", None)
        for n in names:
            registry._METHODS.pop(n, None)
    assert "half-gd" not in mc.METHODS


def test_optimizers_take_params_and_schedules():
    d = np.array([1.0, -2.0, 0.5])
    w = np.zeros(3)
    # momentum with beta = 0 is sgd (Fischer's formulas), with or without params
    for opt in (sgd(0.1), momentum(0.1, beta=0.0)):
        s = opt.init(w)
        delta, s = opt.update(d, s, w)
        np.testing.assert_allclose(delta, 0.1 * d, rtol=1e-15)
        assert s.count == 1
    sched = piecewise_constant([2, 4], [1.0, 0.1, 0.01])
    assert [sched(k) for k in range(6)] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    opt = sgd(sched)
    s = opt.init(w)
    lrs = []
    for _ in range(5):
        delta, s = opt.update(d, s)
        lrs.append(delta[0])
    assert lrs == [1.0, 1.0, 0.1, 0.1, 0.01]
    assert exponential_decay(1.0, 0.5, 2)(4) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="len\\(values\\) == len\\(boundaries\\) \\+ 1"):
        piecewise_constant([1], [1.0])
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        sgd(-1.0)


def test_projected_optimizer_stays_in_the_box():
    lo, hi = -np.ones(4), np.array([1.0, 1.0, 0.2, np.inf])
    opt = projected(adam(0.5), lo, hi)
    w = np.array([0.9, -0.9, 0.0, 0.0])
    s = opt.init(w)
    for d in (np.array([-1.0, 1.0, -1.0, -1.0]),) * 5:
        delta, s = opt.update(d, s, w)
        w = w - delta
    assert np.all(w >= lo) and np.all(w <= hi)
    assert w[0] == 1.0 and w[1] == -1.0 and w[2] == 0.2 and w[3] > 2.0  # free entry moves on
    with pytest.raises(ValueError, match="needs params"):
        opt.update(np.ones(4), s)


def test_minimize_with_the_oracle_objects_equals_solve():
    p = models.pendulum_swingup(horizon=30)
    ch = mc.compile_chain(p)
    assert ch is p.chain  # the alias
    r1 = mc.minimize(ch, GradientOracle(ch), sgd(0.5), ch.layout.zeros(), iters=10,
                     verbose=False)
    r2 = mc.solve(p, "gd", step=0.5, iters=10, verbose=False)
    np.testing.assert_array_equal(r1.costs, r2.costs)
    np.testing.assert_array_equal(r1.w, r2.w)
