"""Control bounds: ``ControlProblem(control_bounds=(lower, upper))`` honored by every method.

References:
- the box-constrained weight prox of a stage affine in ``w`` (explicit Euler, additive
  torque) against scipy's L-BFGS-B solve of ``argmin_{v in box} alp lamhat^T phi(v, x) +
  |v - w|^2 / 2`` stage by stage, with the Moreau costates of the plain-numpy pass;
- with binding bounds, IPOPT (interior point on the multiple-shooting transcription) and
  L-BFGS-B (active set on single shooting) agree on the optimum to 1e-8 relative: two
  independent solvers.
"""
import casadi as ca
import numpy as np
import pytest
import scipy.optimize as so

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.oracles import MoreauOracle

LO, HI = -1.5, 1.5


def running_cost_problem(T=40, bounds=([LO], [HI]), scheme="rk4"):
    """The pendulum swing-up of issue 12 over 5 s: terminal (theta-pi)^2 + 0.1 omega^2 and a
    running cost 1e-2 u^2; bounds |u| <= 1.5 bind on this problem (unbounded |u| peaks near
    4 at T=40). dt is a run-time input (one compilation for every T of these tests)."""
    return mc.ControlProblem(models.pendulum(), horizon=T, dt=5.0 / T, x0=[0.0, 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2,
                             stage_cost=lambda x, u: 1e-2 * u[0] ** 2, scheme=scheme,
                             control_bounds=bounds, runtime_params=True)


@pytest.fixture(scope="module")
def bounded():
    return running_cost_problem()


# every method of the registry family, with a step that makes progress on this problem
FIRST_ORDER = [("gd", dict(step=0.5)), ("gd", dict(step=2.0, line_search="armijo")),
               ("momentum", dict(step=0.2)), ("nesterov", dict(step=0.2)),
               ("rmsprop", dict(step=0.1)), ("adam", dict(step=0.3)),
               ("moreau-gd", dict(step=0.2, gamma=0.999)),
               ("moreau-adam", dict(step=0.1, gamma=0.5))]


@pytest.mark.parametrize("method,kw", FIRST_ORDER, ids=[m + ("-armijo" if "line_search" in k
                                                              else "") for m, k in FIRST_ORDER])
def test_first_order_iterates_stay_in_the_box_exactly(bounded, method, kw):
    seen = []
    res = mc.solve(bounded, method, iters=30, verbose=False,
                   callback=lambda info: seen.append(np.array(info.w)), **kw)
    assert res.success, res.message
    for w in seen + [res.w]:
        assert w.min() >= LO and w.max() <= HI   # exactly, no tolerance
    assert np.any(np.abs(res.w) == HI)           # the bound is reached (it binds)
    assert res.best_cost < res.costs[0]


@pytest.mark.parametrize("method", ["ipopt", "lbfgs"])
def test_solvers_stay_in_the_box_and_agree(bounded, method):
    res = mc.solve(bounded, method, verbose=False)
    assert res.success, res.message
    assert res.w.min() >= LO and res.w.max() <= HI
    ref = mc.solve(bounded, "ipopt" if method == "lbfgs" else "lbfgs", verbose=False)
    assert res.fun == pytest.approx(ref.fun, rel=1e-8)
    assert mc.objective(bounded, res.w) == pytest.approx(res.fun, rel=1e-14)
    # the bounds bind: the unconstrained optimum is lower
    free = mc.solve(running_cost_problem(bounds=None), "lbfgs", verbose=False)
    assert free.fun < res.fun - 1e-3


def test_moreau_box_prox_matches_scipy_for_a_stage_affine_in_w():
    # explicit Euler with an additive torque: phi(v, x) = a(x) + B v, affine in v. One
    # Moreau GD step with bounds must be argmin_{v in box} alp lamhat^T phi(v, x) + |v-w|^2/2
    # at every stage (the costates lamhat do not depend on the weight line).
    T, alpha, gamma = 12, 20.0, 0.8
    p = models.pendulum_swingup(horizon=T)
    p = mc.ControlProblem(p.plant, horizon=T, dt=p.dt, x0=p.x0, terminal_cost=p.terminal_cost,
                          control_bounds=([-0.4], [0.6]))
    w0 = np.linspace(-0.3, 0.5, T).reshape(T, 1)
    res = mc.solve(p, "moreau-gd", step=alpha, gamma=gamma, iters=1, w0=w0, verbose=False)
    # costates of the plain-numpy pass over the CasADi stage views (diagnostics keeps them)
    ch = p.chain
    oracle = MoreauOracle(ch, alpha, gamma, diagnostics=True)
    w = w0.ravel()
    cost, X = Chain.forward(ch, w)
    b = Chain.backward(ch, w, X, None, oracle.spec)
    for t in range(T):
        lam = b.costates[t + 1]
        a = oracle.spec.alp[t]
        F = lambda v: a * float(lam @ ch.stages[t].forward(v, X[t])) + 0.5 * float((v - w0[t]) @ (v - w0[t]))  # noqa: E501,E731
        Gf = lambda v: a * ch.stages[t].vjp_w(v, X[t], lam) + (v - w0[t])  # noqa: E731
        ref = so.minimize(F, w0[t], jac=Gf, method="L-BFGS-B", bounds=[(-0.4, 0.6)],
                          options=dict(ftol=1e-16, gtol=1e-14))
        assert res.w[t, 0] == pytest.approx(ref.x[0], abs=1e-9)
    assert np.any(res.w == 0.6) or np.any(res.w == -0.4)


def test_default_start_is_zero_projected_onto_the_box():
    p = running_cost_problem(T=10, bounds=([0.5], [2.0]))
    for method in ("gd", "lbfgs", "ipopt"):
        res = mc.solve(p, method, iters=0 if method != "ipopt" else None, verbose=False)
        assert res.costs[0] == pytest.approx(mc.objective(p, np.full((10, 1), 0.5)), rel=1e-14)


def test_one_sided_and_fixed_bounds():
    p = running_cost_problem(T=20, bounds=([-np.inf], [0.25]))
    for method in ("gd", "lbfgs", "ipopt"):
        res = mc.solve(p, method, iters=20 if method == "gd" else None, verbose=False)
        assert res.w.max() <= 0.25 and res.success
    fixed = running_cost_problem(T=20, bounds=([0.1], [0.1]))
    res = mc.solve(fixed, "lbfgs", verbose=False)
    assert np.all(res.w == 0.1)


# ---- bad input: before any compute, naming what was expected and what arrived -----------

@pytest.mark.parametrize("bounds,err,match", [
    (([1.0], [-1.0]), ValueError, r"lower <= upper; got lower\[0\] = 1.0 > upper\[0\] = -1.0"),
    (([-1.0, -1.0], [1.0, 1.0]), ValueError, r"lower has shape \(2,\); expected \(nw,\) = \(1,\)"),
    ((-1.0, 1.0), ValueError, r"shape \(\); expected \(nw,\)"),
    (([np.nan], [1.0]), ValueError, "NaN"),
    (([-1.0], [np.nan]), ValueError, "NaN"),
    (([np.inf], [np.inf]), ValueError, "no admissible"),
    (([-1.0],), TypeError, "pair"),
    ("box", TypeError, "pair"),
    ((["a"], [1.0]), TypeError, "array of numbers"),
])
def test_bad_bounds(bounds, err, match):
    with pytest.raises(err, match=match):
        running_cost_problem(T=5, bounds=bounds)


@pytest.mark.parametrize("method", ["gd", "moreau-gd", "adam", "ipopt", "lbfgs"])
def test_w0_outside_the_box_is_an_error(method):
    p = running_cost_problem(T=5)
    w0 = np.zeros((5, 1))
    w0[3, 0] = 1.6
    kw = dict(gamma=0.5) if method.startswith("moreau") else {}
    with pytest.raises(ValueError, match=r"w0 is outside control_bounds at 1 entries; first: "
                                         r"w0\[3, 0\] = 1.6 not in \[-1.5, 1.5\]"):
        mc.solve(p, method, w0=w0, verbose=False, **kw)
    # the documented way out: project it
    res = mc.solve(p, method, w0=p.project(w0), iters=1, verbose=False, **kw)
    assert res.w.max() <= HI


def test_minimize_bounds_argument():
    p = running_cost_problem(T=8)
    ch = p.chain
    from moreauctl.oracles import GradientOracle
    from moreauctl.optimizers import sgd
    lo, hi = np.full(8, -0.1), np.full(8, 0.2)
    res = mc.minimize(ch, GradientOracle(ch), sgd(1.0), np.zeros(8), iters=5, bounds=(lo, hi),
                      verbose=False)
    assert res.w.min() >= -0.1 and res.w.max() <= 0.2
    with pytest.raises(ValueError, match="outside bounds"):
        mc.minimize(ch, GradientOracle(ch), sgd(1.0), np.ones(8), bounds=(lo, hi), verbose=False)
    with pytest.raises(ValueError, match=r"bounds lower has shape \(3,\); expected \(n,\) = \(8,\)"):
        mc.minimize(ch, GradientOracle(ch), sgd(1.0), np.zeros(8), bounds=(lo[:3], hi),
                    verbose=False)


def test_with_horizon_keeps_bounds_and_repr_shows_them():
    p = running_cost_problem(T=5)
    q = p.with_horizon(9, dt=0.1)
    assert q.bounded and q.lower.tolist() == [LO] and q.horizon == 9 and q.dt == 0.1
    assert "control_bounds=([-1.5], [1.5])" in repr(p)
    assert not running_cost_problem(T=5, bounds=None).bounded
