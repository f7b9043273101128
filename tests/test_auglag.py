"""The augmented-Lagrangian pass (Algo 7-9, D.4, D.6), Prop. 2.2's steps, gamma per unit of time.

References: D.4's equivalences (kappa = 0 with beta_t = 1/gamma_t is Moreau GD, beta_t = 0 is
regularized target propagation), each line of Fact D.3 in the paper's own (unscaled) form
solved by scipy from the targets and multipliers the pass produced, and the closed form
``gamma ** (dt / gamma_time)``.
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.oracles import (AugLagOracle, GradientOracle, MoreauOracle, ProxTargetPropOracle,
                               lagrangian_steps)

from .test_chain_protocol import make_chain, make_data
from .test_ibp import _toy

RNG = np.random.default_rng(21)


@pytest.fixture(scope="module")
def problems():
    return {"pendulum": models.pendulum_swingup(horizon=40),
            "cartpole": models.cartpole_swingup(horizon=30)}


@pytest.mark.parametrize("which", ["pendulum", "cartpole"])
def test_auglag_kappa0_is_moreau_gd(which, problems):
    # D.4: kappa = 0 and beta_t = 1/gamma_t (given as an array, through the general step
    # conversion) is Algo 1-2: directions and 5 iterations of costs
    p = problems[which]
    T = p.horizon
    gam = 0.5 ** np.arange(T, 0, -1, dtype=float)      # gamma_1..gamma_T of the schedule
    w = 0.2 * RNG.normal(size=(T, p.nw))
    m, _ = MoreauOracle(p.chain, 4.0, 0.5)(w.ravel())
    a, _ = AugLagOracle(p.chain, 4.0, 0.5, kappa=0.0, betas=1.0 / gam)(w.ravel())
    np.testing.assert_allclose(a.direction, m.direction, rtol=1e-10,
                               atol=1e-10 * np.abs(m.direction).max())
    r1 = mc.solve(p, "moreau-gd", step=4.0, gamma=0.5, iters=5, w0=w, verbose=False)
    r2 = mc.solve(p, "auglag", step=4.0, gamma=0.5, iters=5, w0=w, verbose=False,
                  oracle_options={"kappa": 0.0, "betas": list(1.0 / gam)})
    np.testing.assert_allclose(r2.costs, r1.costs, rtol=1e-10)
    np.testing.assert_allclose(r2.w, r1.w, rtol=1e-10, atol=1e-12)


def test_auglag_kappa0_is_moreau_on_a_network():
    ch, data = make_chain(), make_data()
    w = 0.6 * RNG.normal(size=ch.layout.size)
    m, _ = MoreauOracle(ch, 0.8, 0.6)(w, (), data)
    a, _ = AugLagOracle(ch, 0.8, 0.6, kappa=0.0)(w, (), data)
    np.testing.assert_allclose(a.direction, m.direction, rtol=1e-12)


@pytest.mark.parametrize("which", ["pendulum", "network", pytest.param(
    "cartpole", marks=pytest.mark.slow)])   # the cart-pole's penalty pass: ~25 s to compile
@pytest.mark.parametrize("schedule", ["geometric", "constant"])
def test_auglag_beta0_is_prox_target_prop(which, schedule, problems):
    # D.4: beta_t = 0 gives Algo 12-13, whose steps prox-target-prop takes from the paper
    kw = dict(kappa=0.7, schedule=schedule)
    if which == "network":
        ch, data = make_chain(), make_data()
        w = 0.6 * RNG.normal(size=ch.layout.size)
    else:
        ch, data = problems[which].chain, None
        w = 0.2 * RNG.normal(size=ch.layout.size)
    a, _ = AugLagOracle(ch, 3.0, 0.6, beta=0.0, **kw)(w, (), data)
    t, _ = ProxTargetPropOracle(ch, 3.0, 0.6, **kw)(w, (), data)
    assert a.failed_stage is None
    np.testing.assert_allclose(a.direction, t.direction, rtol=1e-10,
                               atol=1e-10 * np.abs(t.direction).max())
    if which != "network":
        p = problems[which]
        r1 = mc.solve(p, "auglag", step=3.0, gamma=0.6, iters=5, verbose=False,
                      oracle_options={**kw, "beta": 0.0})
        r2 = mc.solve(p, "prox-target-prop", step=3.0, gamma=0.6, iters=5, verbose=False,
                      oracle_options=kw)
        np.testing.assert_allclose(r1.costs, r2.costs, rtol=1e-10)


def subproblem_case(which, rng):
    """``(chain, data, w, inner options)`` for checking every line of a pass against scipy:
    a control chain neither affine in w nor x (Newton to convergence), or the hand-built
    network (gradient steps to convergence)."""
    if which == "control":
        ch, data = _toy(5).chain, None
        w = 0.5 * rng.normal(size=ch.layout.size)
        return ch, data, w, dict(inner="newton", inner_iters=60, inner_tol=1e-14)
    ch, data = make_chain(), make_data()
    w = 0.6 * rng.normal(size=ch.layout.size)
    return ch, data, w, dict(inner="gd", inner_iters=4000, inner_tol=1e-13)


def regularized_chain(mu):
    """The hand-built network with weight decay ``r_t = mu/2 |w_t|^2`` (D.6)."""
    reg = mc.chain.L2(mu)
    base = make_chain()
    return Chain(base.stages, base.h, base._x0, regularizer=reg), reg


def _argmin(F, n, jac=None):
    """scipy's BFGS on a subproblem (with its gradient, which carries no large constant, so
    the stopping test is accurate where F's values lose digits to rounding)."""
    r = scipy_minimize(F, np.zeros(n), jac=jac, method="BFGS",
                       options={"gtol": 1e-13, "maxiter": 20000})
    return r.x


_SLOW = pytest.mark.slow   # Python gradient steps to convergence on every network line


@pytest.mark.parametrize("which,kappa,beta", [
    ("control", 0.7, 1.0), ("control", 0.0, 0.4), ("control", 0.5, 0.0), ("control", 2.0, 3.0),
    ("network", 0.7, 1.0), pytest.param("network", 0.0, 0.4, marks=_SLOW),
    pytest.param("network", 0.5, 0.0, marks=_SLOW), pytest.param("network", 2.0, 3.0, marks=_SLOW)])
def test_every_line_solves_fact_d3_in_the_papers_form(which, kappa, beta):
    # Algo 2's arrays gamma_0..gamma_T, alpha_1..alpha_T and beta_1..beta_T; the pass's
    # targets x_t^+ = x_t - d_t (its costates) and multipliers beta_t (x_t - x_t^+): every
    # line against scipy's argmin of Fact D.3's subproblem, unscaled
    ch, data, w, inner = subproblem_case(which, RNG)
    T = ch.horizon
    gs = 0.9 * 0.8 ** np.arange(T, -1, -1, dtype=float)
    als = 0.7 * gs[1:]
    bs = beta / gs[1:]
    o = AugLagOracle(ch, gammas=gs, alphas=als, kappa=kappa, betas=bs, diagnostics=True,
                     **inner)
    _, X = ch.forward(w, data)
    b = Chain.backward(ch, w, X, data, o.spec)
    assert b.failed_stage is None
    d = b.costates                       # d_t = x_t - x_t^+
    h = ch.h
    xT = X[-1]
    y = _argmin(lambda y: h.value(xT + y.reshape(xT.shape), data)
                + (1 / gs[T] + kappa) / 2 * y @ y, xT.size,
                lambda y: np.ravel(h.grad(xT + y.reshape(xT.shape), data))
                + (1 / gs[T] + kappa) * y)   # x_T^+ = x_T + y
    assert mc.relative_error(d[T], -y.reshape(xT.shape)) <= 1e-6
    for t in range(T):          # stage t+1 of the paper
        st, wt, x, xn = ch.stages[t], ch.layout.segment(w, t), X[t], X[t + 1]
        xplus = xn - d[t + 1]
        mu = bs[t] * (xn - xplus)

        def Fw(v):
            ph = st.forward(wt + v, x)
            return (float(np.vdot(mu, ph)) + kappa / 2 * float(np.sum((ph - xplus) ** 2))
                    + v @ v / (2 * als[t]))

        def Gw(v):
            u = mu + kappa * (st.forward(wt + v, x) - xplus)
            return np.ravel(st.vjp_w(wt + v, x, u)) + v / als[t]
        v = _argmin(Fw, wt.size, Gw)
        assert mc.relative_error(ch.layout.segment(b.direction, t), -v) <= 1e-6, t

        def Fx(y):
            ph = st.forward(wt, x + y.reshape(x.shape))
            return (float(np.vdot(mu, ph)) + kappa / 2 * float(np.sum((ph - xplus) ** 2))
                    + (1 / gs[t] + kappa) / 2 * y @ y)

        def Gx(y):
            z = x + y.reshape(x.shape)
            u = mu + kappa * (st.forward(wt, z) - xplus)
            return np.ravel(st.vjp_x(wt, z, u)) + (1 / gs[t] + kappa) * y
        y = _argmin(Fx, x.size, Gx)
        assert mc.relative_error(d[t], -y.reshape(x.shape)) <= 1e-6, t
    # the compiled pass computes the same (control chains)
    if which == "control":
        out, _ = o(w)
        np.testing.assert_allclose(out.info["g"], b.direction, rtol=1e-6)


def test_auglag_with_l2_regularizer_matches_scipy():
    # D.6: the weight line gains r_t(v) (Eq. (44)); the toy plant's stages in a Python chain
    # with weight decay (their CasADi Hessians let Newton converge in a few steps)
    reg = mc.chain.L2(0.3)
    toy = _toy(5).chain
    ch = Chain(toy.stages, toy.h, toy.x0, regularizer=reg)
    data = None
    w = 0.5 * RNG.normal(size=ch.layout.size)
    T = ch.horizon
    gs = 0.8 ** np.arange(T, -1, -1, dtype=float)
    als = 0.5 * gs[1:]
    kappa = 0.6
    o = AugLagOracle(ch, gammas=gs, alphas=als, kappa=kappa, inner="newton", inner_iters=60,
                     inner_tol=1e-14, diagnostics=True)
    _, X = ch.forward(w, data)
    b = Chain.backward(ch, w, X, data, o.spec)
    for t in range(T):
        st, wt, x, xn = ch.stages[t], ch.layout.segment(w, t), X[t], X[t + 1]
        xplus = xn - b.costates[t + 1]
        mu = (xn - xplus) / gs[t + 1]

        def Fw(v):
            ph = st.forward(wt + v, x)
            return (float(np.vdot(mu, ph)) + kappa / 2 * float(np.sum((ph - xplus) ** 2))
                    + reg.value(wt + v, t) + v @ v / (2 * als[t]))

        def Gw(v):
            u = mu + kappa * (st.forward(wt + v, x) - xplus)
            return np.ravel(st.vjp_w(wt + v, x, u)) + reg.grad(wt + v, t) + v / als[t]
        v = _argmin(Fw, wt.size, Gw)
        assert mc.relative_error(ch.layout.segment(b.direction, t), -v) <= 1e-6, t


def test_prop22_steps_in_the_moreau_oracle(problems):
    # beta_t = b / gamma_t in the Moreau oracle is the kappa = 0 augmented-Lagrangian pass,
    # and it rescales the rescaled recursion's steps by b: gam_t = b gamma, alp_t = b alpha
    p = problems["pendulum"]
    w = 0.2 * RNG.normal(size=p.horizon)
    m = MoreauOracle(p.chain, 2.0, 0.5, beta=0.3)
    assert np.allclose(m.gam, 0.15) and np.allclose(m.alp, 0.6) and m.gam_h == 0.5
    a = AugLagOracle(p.chain, 2.0, 0.5, kappa=0.0, beta=0.3)
    np.testing.assert_array_equal(m(w)[0].direction, a(w)[0].direction)
    st = lagrangian_steps(4, 2.0, 0.5, kappa=0.0, betas=[1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(st.lin_x, 0.5 * np.array([1, 2, 4, 8]) * 0.5 ** np.arange(4, 0, -1))


def test_gamma_per_unit_of_time(problems):
    # gamma_time = s: the per-stage factor is gamma ** (dt / s), whatever dt
    p = problems["pendulum"]              # dt = 0.1
    w = 0.2 * RNG.normal(size=p.horizon)
    o = MoreauOracle(p.chain, 2.0, 0.5, gamma_time=0.4)
    assert o.gamma == 0.5 ** 0.25
    ref = MoreauOracle(p.chain, 2.0, 0.5 ** 0.25)
    np.testing.assert_array_equal(o(w)[0].direction, ref(w)[0].direction)
    fine = models.pendulum_swingup(horizon=80, dt=0.05)
    assert MoreauOracle(fine.chain, 2.0, 0.5, gamma_time=0.4).gamma == 0.5 ** 0.125
    # the same weight per second at both discretizations
    assert AugLagOracle(fine.chain, 2.0, 0.5, gamma_time=0.4, kappa=0.1).gamma ** 8 == \
        pytest.approx(0.5)
    g = GradientOracle.from_options(p.chain, stage_weights="geometric", gamma=0.5,
                                    gamma_time=0.2)
    np.testing.assert_allclose(g.weights, 0.5 ** (0.5 * np.arange(40, 0, -1)))
    r1 = mc.solve(p, "moreau-gd", step=2.0, gamma=0.5, iters=3, verbose=False,
                  oracle_options={"gamma_time": 0.4})
    r2 = mc.solve(p, "moreau-gd", step=2.0, gamma=0.5 ** 0.25, iters=3, verbose=False)
    np.testing.assert_array_equal(r1.costs, r2.costs)
    with pytest.raises(ValueError, match="needs the time step"):
        MoreauOracle(make_chain(), 1.0, 0.5, gamma_time=0.1)
    with pytest.raises(ValueError, match="gamma_time rescales a named schedule"):
        MoreauOracle(p.chain, gammas=np.ones(41), alphas=np.ones(40), gamma_time=0.1)
    with pytest.raises(ValueError, match="gamma_time is only used with stage_weights"):
        mc.solve(p, "gd", step=0.1, iters=1, oracle_options={"gamma_time": 0.1})


def test_studies_gamma_ref_dt_is_the_oracle_option(tmp_path):
    from moreauctl.studies import horizon_sweep
    res = horizon_sweep("pendulum", [20], {"m": {"method": "moreau-gd", "gamma": 0.5,
                                                 "gamma_ref_dt": 0.4, "steps": [2.0]}},
                        iters=3, reference=None, executor="serial", progress=False,
                        report=False)
    g = res.grids[(20, "m")]
    assert g.settings["oracle_options"] == {"gamma_time": 0.4}
    direct = mc.solve(models.pendulum_swingup(horizon=20), "moreau-gd", step=2.0,
                      gamma=0.5 ** 0.25, iters=3, verbose=False)
    np.testing.assert_allclose(g.records[0].costs, direct.costs, rtol=1e-14)


def test_bad_settings(problems):
    ch = problems["pendulum"].chain
    with pytest.raises(ValueError, match="kappa must be a finite number >= 0"):
        AugLagOracle(ch, 1.0, 0.5, kappa=-1.0)
    with pytest.raises(ValueError, match="give beta .* or betas"):
        AugLagOracle(ch, 1.0, 0.5, beta=1.0, betas=np.ones(40))
    with pytest.raises(ValueError, match="betas must be >= 0"):
        AugLagOracle(ch, 1.0, 0.5, betas=-np.ones(40))
    with pytest.raises(ValueError, match="augmented-Lagrangian oracle needs gamma"):
        mc.solve(problems["pendulum"], "auglag", step=1.0, iters=1)
    with pytest.raises(TypeError, match="rules"):
        AugLagOracle(ch, 1.0, 0.5, rules="mbp")


def test_auglag_divergence_is_a_status(problems):
    res = mc.solve(models.pendulum_swingup(horizon=100), "auglag", step=2.0 ** 12, gamma=0.9,
                   iters=30, verbose=False, oracle_options={"kappa": 1e-3})
    assert not res.success and res.status < 0 and np.isfinite(res.fun)
