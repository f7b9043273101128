"""Moreau back-propagation: closed forms, limits, scipy solves of the defining argmins."""
from types import SimpleNamespace

import casadi as ca
import numpy as np
import pytest
from scipy.optimize import minimize

import moreauctl as mc
from moreauctl import models
from moreauctl.oracles import MoreauOracle, moreau_schedule

from . import naive

RNG = np.random.default_rng(7)


def run(oracle, w):
    """One oracle call; ``direction`` replaced by Algo 2's ``g`` shaped like ``w``."""
    w = np.ascontiguousarray(w, dtype=float)
    out, _ = oracle(w.ravel(), oracle.init(w))
    return SimpleNamespace(direction=out.info["g"].reshape(w.shape), info=out.info,
                           states=out.states, oracle_direction=out.direction)


def directions(p, w, **kw):
    return run(MoreauOracle(p.chain, **kw), p.check_w(w))


def linear_problem(T=25):
    A = np.array([[1.0, 0.1], [-0.3, 0.95]])
    B = np.array([[0.05, 0.0], [0.1, -0.2]])
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    q = np.array([-1.0, 0.5])
    x = ca.SX.sym("x", 2)
    u = ca.SX.sym("u", 2)
    # Euler with dt = 1 of x' = (A - I) x + B u gives x_t = A x_{t-1} + B w_t exactly.
    plant = mc.Plant(state=x, control=u, rhs=ca.mtimes(ca.DM(A - np.eye(2)), x)
                     + ca.mtimes(ca.DM(B), u), name="linear")
    p = mc.ControlProblem(plant, horizon=T, dt=1.0, x0=[1.0, -2.0],
                          terminal_cost=lambda x: 0.5 * ca.mtimes([x.T, ca.DM(Q), x]) + ca.dot(ca.DM(q), x))
    return p, A, B, Q, q


def test_structure_is_detected_symbolically():
    p, *_ = linear_problem()
    ch = p.chain
    assert ch.affine_w and ch.affine_x and ch.quadratic_h
    pend = models.pendulum_swingup(horizon=5).chain
    assert pend.affine_w and not pend.affine_x and pend.quadratic_h
    cp = models.cartpole_swingup(horizon=5).chain  # RK4 nests u inside sin: not affine in w
    assert not cp.affine_w and not cp.affine_x


@pytest.mark.parametrize("conv", ["eq52", "text"])
def test_linear_chain_closed_form(conv):
    # Linear stages, quadratic h (closed form): lam_T = (I + g_h Q)^-1 g_h (Q x_T + q),
    # lam_{t-1} = gam_t A^T lam_t, g_t = alp_t B^T lam_t.
    T = 25
    p, A, B, Q, q = linear_problem(T)
    w = RNG.normal(size=(T, 2))
    alpha, gamma = 0.7, 0.8
    out = directions(p, w, alpha=alpha, gamma=gamma, alpha_convention=conv)
    gh, gam, alp = moreau_schedule(T, alpha, gamma, "geometric", conv)
    X = mc.rollout(p, w)
    lam = np.linalg.solve(np.eye(2) + gh * Q, gh * (Q @ X[T] + q))
    ref = np.empty_like(w)
    for t in range(T - 1, -1, -1):
        ref[t] = alp[t] * B.T @ lam
        lam = gam[t] * A.T @ lam
    assert mc.relative_error(out.direction, ref) <= 1e-10


@pytest.mark.parametrize("schedule", ["geometric", "constant"])
def test_small_steps_tend_to_gradient(schedule):
    # As alpha = gamma = s -> 0, g_t / (alpha * gamma_t-weight) -> grad_t with error O(s).
    T = 20 if schedule == "constant" else 4  # geometric: weights s^(T-t+1) underflow fast
    p = models.pendulum_swingup(horizon=T)
    w = 0.3 * RNG.normal(size=(T, 1))
    grad = mc.gradient(p, w)
    errs = []
    for s in (1e-2, 5e-3, 2.5e-3):
        d = directions(p, w, alpha=s, gamma=s, schedule=schedule, inner="newton",
                       inner_tol=1e-14, inner_iters=50).direction
        gh, gam, alp = moreau_schedule(T, s, s, schedule)
        # GBP with the same steps is the linearization: weights alp_t gam_h prod gam.
        weight = alp * gh * np.concatenate([np.cumprod(gam[::-1])[::-1][1:], [1.0]])
        errs.append(mc.relative_error(d / weight[:, None], grad))
    assert errs[0] < 0.05
    # O(s): halving the step halves the error (ratio 2 up to higher-order terms)
    assert 1.7 < errs[0] / errs[1] < 2.3 and 1.7 < errs[1] / errs[2] < 2.3


@pytest.mark.parametrize("make,T", [(models.pendulum_swingup, 8),
                                    (models.cartpole_swingup, 6)])
def test_tolerance_inner_solver_matches_scipy(make, T):
    # Every per-stage subproblem solved by scipy BFGS (gtol 1e-13) vs our Newton with tol.
    p = make(horizon=T)
    w = 0.5 * RNG.normal(size=(T, p.nw))
    gh, gam, alp = 0.5, np.full(T, 0.5), np.full(T, 0.9)
    ref = naive.moreau_directions(p, w, gh, gam, alp)
    for inner in ("newton", "gd"):
        o = MoreauOracle(p.chain, alpha=0.9, gamma=0.5, inner=inner, inner_tol=1e-12,
                         inner_iters=2000, diagnostics=True)
        assert np.allclose(o.gam, gam) and np.allclose(o.alp, alp) and o.gam_h == gh
        out = run(o, w)
        assert np.max(np.abs(out.direction - ref)) <= 1e-6 * max(1.0, np.max(np.abs(ref)))
        res = out.info["residuals"]
        assert np.nanmax(res) <= 1e-9, inner  # reported subproblem gradient norms


def test_paper_inner_reports_residuals():
    p = models.pendulum_swingup(horizon=30)
    out = directions(p, 0.2 * RNG.normal(size=(30, 1)), alpha=2.0**7, gamma=0.5, diagnostics=True)
    r = out.info["residuals"]
    assert r.shape == (31, 2)
    assert np.all(np.isfinite(r[:, 0]))  # state subproblems (and the objective's) solved
    assert np.all(np.isnan(r[:30, 1]))    # control prox is closed form (affine in w)


def test_single_composition_prop21():
    # One composition alpha h o phi, h convex, small alpha (Prop. 2.1): the Moreau gradient
    # computed by the chain (T = 1; Algo 2 with gamma_1 = alpha_1 = alpha) vs a direct scipy
    # solve of the defining argmin_v alpha h(phi(w + v, x0)) + v^2/2. The approximation is
    # O(alpha) in relative terms, so alpha is small; the argmin is 1-D and strongly convex, so
    # scipy's brentq on its optimality condition solves it to machine precision (a line search
    # on F itself would drown in cancellation at this scale).
    from scipy.optimize import brentq
    p = models.pendulum_swingup(horizon=1)
    w = np.array([[4.0]])
    alpha = 1e-6
    out = run(MoreauOracle(p.chain, gammas=[alpha, alpha], alphas=[alpha], inner="newton",
                           inner_tol=1e-14, inner_iters=50), w)
    v_sym = ca.SX.sym("v")
    F = alpha * p.objective(p.stage(w[0] + v_sym, p.x0_chain)) + 0.5 * v_sym**2
    dF = ca.Function("dF", [v_sym], [ca.gradient(F, v_sym)])
    g0 = abs(float(dF(0.0)))
    v = brentq(lambda v: float(dF(v)), -2 * g0, 2 * g0, xtol=1e-30, rtol=1e-15)
    assert mc.relative_error(out.direction[0], -v) <= 1e-5
    # and the default "paper" inner algorithm gives the same (exact here: affine in w)
    out_paper = run(MoreauOracle(p.chain, gammas=[alpha, alpha], alphas=[alpha]), w)
    assert mc.relative_error(out_paper.direction[0], -v) <= 1e-5


def test_gbp_everywhere_is_weighted_gradient():
    # rules="gbp" on all lines = GD with per-stage weights alpha gamma^(T-t+1) (Algo 2, eq52).
    T = 30
    p = models.pendulum_swingup(horizon=T)
    w = 0.3 * RNG.normal(size=(T, 1))
    out = directions(p, w, alpha=3.0, gamma=0.7, rules="gbp")
    weights = 3.0 * 0.7 ** np.arange(T, 0, -1)
    np.testing.assert_allclose(out.direction, weights[:, None] * mc.gradient(p, w), rtol=1e-12)
    res = mc.solve(p, "gd", step=3.0, gamma=0.7, stage_weights="geometric", iters=1, verbose=False)
    res2 = mc.solve(p, "moreau-gd", step=3.0, gamma=0.7, iters=1, verbose=False,
                    moreau_options={"rules": "gbp"})
    np.testing.assert_allclose(res.costs, res2.costs, rtol=1e-13)


def test_text_convention_is_eq52_times_one_over_gamma():
    T = 10
    p = models.pendulum_swingup(horizon=T)
    w = 0.3 * RNG.normal(size=(T, 1))
    a = directions(p, w, alpha=4.0, gamma=0.5, alpha_convention="text").direction
    b = directions(p, w, alpha=8.0, gamma=0.5, alpha_convention="eq52").direction
    np.testing.assert_allclose(a, b, rtol=1e-14)


def test_bad_settings():
    p = models.pendulum_swingup(horizon=5)
    ch = p.chain
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        MoreauOracle(ch, alpha=1.0, gamma=0.0)
    with pytest.raises(ValueError, match=r"alpha \(the step\) must be a finite number > 0"):
        MoreauOracle(ch, alpha=-1.0, gamma=0.5)
    with pytest.raises(ValueError, match="unknown inner algorithm 'bfgs'"):
        MoreauOracle(ch, alpha=1.0, gamma=0.5, inner="bfgs")
    with pytest.raises(ValueError, match=r"gammas has shape \(5,\); expected \(6,\)"):
        MoreauOracle(ch, gammas=np.ones(5), alphas=np.ones(5))
    with pytest.raises(ValueError, match="alphas must have finite entries > 0"):
        MoreauOracle(ch, gammas=np.ones(6), alphas=-np.ones(5))
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        MoreauOracle(ch, alpha=1.0, gamma=0.5, schedule="cosine")
    with pytest.raises(ValueError, match="unknown rule 'xbp' for the states line"):
        MoreauOracle(ch, alpha=1.0, gamma=0.5, rules=("mbp", "xbp", "mbp"))
    with pytest.raises(ValueError, match="needs gamma"):
        mc.solve(p, "moreau-gd", step=1.0, iters=1)


def test_nan_in_backward_ends_run_naming_the_stage():
    # phi(w, x) = x + 0.1 sqrt(x) + w at x = 0: finite forward, infinite derivative, so the
    # first state subproblem met by the backward pass (stage T) is not finite.
    x = ca.SX.sym("x", 1)
    u = ca.SX.sym("u", 1)
    plant = mc.Plant(state=x, control=u, rhs=ca.sqrt(x) + u, name="sqrt")
    p = mc.ControlProblem(plant, horizon=6, dt=0.1, x0=[0.0], terminal_cost=lambda x: (x[0] - 1) ** 2)
    res = mc.solve(p, "moreau-gd", step=1.0, gamma=0.5, iters=5, verbose=False)
    assert not res.success and res.status == -3
    assert "stage 6" in res.message
    assert res.costs.shape == (1,) and res.costs[0] == 1.0


@pytest.mark.parametrize("make,T", [(models.pendulum_swingup, 40), (models.cartpole_swingup, 30)])
@pytest.mark.parametrize("rules", ["mbp", "gbp", ("mbp", "gbp", "mbp"), ("gbp", "mbp", "gbp")])
def test_compiled_passes_equal_python_pass(make, T, rules):
    # One generator emits both compiled Moreau passes: the "paper" fast path and the
    # run-time-inner variant (diagnostics on). Reference: the Python pass of
    # moreauctl.chain.Chain.backward over the chain's CasadiStage views (CasADi's VM, the
    # numpy inner algorithm of moreauctl.rules), itself checked against scipy solves above.
    # The fast path fed with stored values rounds its first VJP per stage differently.
    from moreauctl.chain import Chain
    p = make(horizon=T)
    ch = p.chain
    w = 0.5 * RNG.normal(size=(T, p.nw))
    slow = run(MoreauOracle(ch, alpha=2.0, gamma=0.7, rules=rules, diagnostics=True), w)
    o = MoreauOracle(ch, alpha=2.0, gamma=0.7, rules=rules)
    fast = run(o, w)
    np.testing.assert_allclose(fast.direction, slow.direction, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fast.info["lam0"], slow.info["lam0"], rtol=1e-12, atol=1e-14)
    twin = Chain.backward(ch, w.ravel(), slow.states, None, o.spec)
    assert twin.failed_stage is None
    np.testing.assert_allclose(twin.direction.reshape(w.shape), slow.direction, rtol=1e-11,
                               atol=1e-14)
    np.testing.assert_allclose(twin.lam0, slow.info["lam0"], rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("inner,make", [("gd", models.pendulum_swingup),
                                        ("newton", models.cartpole_swingup)])
def test_compiled_inner_solvers_equal_python_twin(inner, make):
    # inner "gd"/"newton" run through the array solver _prox; the numpy twin in
    # moreauctl.rules performs the same iteration (same constants), on CasADi's VM. (Gradient
    # steps on the cart-pole's ill-conditioned subproblems do not converge in 500 steps, and
    # unconverged iterates amplify rounding differences: the pendulum's converge.)
    from moreauctl.chain import Chain
    p = make(horizon=12)
    w = 0.5 * np.random.default_rng(3).normal(size=(12, 1))
    o = MoreauOracle(p.chain, alpha=0.9, gamma=0.6, inner=inner, inner_iters=500,
                     inner_tol=1e-13, diagnostics=True)
    out = run(o, w)
    twin = Chain.backward(p.chain, w.ravel(), out.states, None, o.spec)
    # the same iterations, converged; what differs is rounding (sums in another order)
    assert mc.relative_error(twin.direction, out.direction) <= 1e-11
    # the residuals |grad F(y)| agree (including where 500 gradient steps stop short)
    np.testing.assert_allclose(twin.residuals, out.info["residuals"], rtol=1e-2, atol=1e-12)
