"""iLQR / DDP (moreauctl.ilqr, kernels of moreauctl.codegen.ilqr).

References:
- linear-quadratic problem (linear plant, Euler, quadratic running and terminal costs): the
  optimum of the equality-constrained QP in (u_0..u_{T-1}, x_1..x_T) by a direct dense KKT
  solve (numpy), built here from the continuous-time matrices without moreauctl;
- the running-cost pendulum swing-up of issue 12 (RK4, 5 s, (theta-pi)^2 + 0.1 omega^2 +
  1e-2 int u^2): IPOPT's optimum on the multiple-shooting transcription, with and without
  binding bounds |u| <= 1.5;
- the Riccati pass against its plain-numpy twin (tests/naive.py: CasADi's own jacobian and
  hessian per stage, scipy's exact BVLS for the box QPs);
- the box QP kernel against scipy's BVLS.
"""
import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models
from moreauctl.codegen.ilqr import ilqr_kernels

from . import naive

# ---- a linear-quadratic problem and its KKT solution ---------------------------------------

A_C = np.array([[0.0, 1.0, 0.0], [-1.0, -0.1, 0.5], [0.0, 0.0, -0.3]])
B_C = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]])
Q = np.diag([1.0, 0.1, 0.5])
R = np.array([[0.2, 0.05], [0.05, 0.3]])
P = np.diag([10.0, 1.0, 2.0])
QLIN = np.array([0.3, -0.2, 0.1])
X0 = np.array([1.0, -0.5, 0.3])
DT = 0.1


def lq_problem(T=30, bounds=None, x0=X0):
    x = ca.SX.sym("x", 3)
    u = ca.SX.sym("u", 2)
    plant = mc.Plant(state=x, control=u, rhs=ca.mtimes(ca.DM(A_C), x) + ca.mtimes(ca.DM(B_C), u),
                     name="lq3")
    return mc.ControlProblem(
        plant, horizon=T, dt=DT, x0=x0,
        terminal_cost=lambda x: ca.bilin(ca.DM(P), x, x) + ca.dot(ca.DM(QLIN), x),
        stage_cost=lambda x, u: ca.bilin(ca.DM(Q), x, x) + ca.bilin(ca.DM(R), u, u),
        scheme="euler", control_bounds=bounds)


def lq_kkt(T, x0=X0):
    """min dt sum_t (x_t'Q x_t + u_t'R u_t) + x_T'P x_T + q'x_T s.t. x_{t+1} = Ad x_t + Bd u_t,
    by one dense KKT solve. Returns u (T, 2) and the cost."""
    nx, nu = 3, 2
    Ad, Bd = np.eye(nx) + DT * A_C, DT * B_C
    n = T * nu + T * nx                      # z = (u_0..u_{T-1}, x_1..x_T)
    H = np.zeros((n, n))
    f = np.zeros(n)
    for t in range(T):
        H[t * nu:(t + 1) * nu, t * nu:(t + 1) * nu] = 2 * DT * R
    for t in range(1, T + 1):
        i = T * nu + (t - 1) * nx
        H[i:i + nx, i:i + nx] = 2 * DT * Q if t < T else 2 * P
    f[T * nu + (T - 1) * nx:] = QLIN
    E = np.zeros((T * nx, n))
    e = np.zeros(T * nx)
    for t in range(T):
        r = t * nx
        E[r:r + nx, T * nu + t * nx:T * nu + (t + 1) * nx] = np.eye(nx)   # x_{t+1}
        E[r:r + nx, t * nu:(t + 1) * nu] = -Bd
        if t == 0:
            e[r:r + nx] = Ad @ x0
        else:
            E[r:r + nx, T * nu + (t - 1) * nx:T * nu + t * nx] = -Ad
    kkt = np.block([[H, E.T], [E, np.zeros((T * nx, T * nx))]])
    z = np.linalg.solve(kkt, np.concatenate([-f, e]))[:n]
    cost = 0.5 * z @ H @ z + f @ z + DT * x0 @ Q @ x0
    return z[:T * nu].reshape(T, nu), cost


@pytest.mark.parametrize("method", ["ilqr", "ddp"])
def test_lq_converges_in_one_iteration_to_the_kkt_solution(method):
    T = 30
    p = lq_problem(T)
    res = mc.solve(p, method, verbose=False)
    u_ref, c_ref = lq_kkt(T)
    assert res.nit == 1 and res.status == 4 and res.success, res.message
    assert np.max(np.abs(res.w - u_ref)) <= 1e-10 * max(1.0, np.max(np.abs(u_ref)))
    assert res.fun == pytest.approx(c_ref, rel=1e-12)
    assert res.history.steps.tolist() == [1.0]


def test_lq_with_bounds_matches_a_bounded_qp_solve():
    # bounds that bind: the box QP of the whole problem (condensed: J(w) = w'Hw/2 + g'w +
    # c, H and g from the unconstrained structure) solved by scipy's exact BVLS
    T = 30
    lo, hi = np.array([-0.4, -0.3]), np.array([0.5, 0.2])
    p = lq_problem(T, bounds=(lo, hi))
    res = mc.solve(p, "ilqr", verbose=False)
    assert res.success, res.message
    assert np.all(res.w >= lo) and np.all(res.w <= hi)
    free = lq_problem(T)
    n = 2 * T
    g0 = mc.gradient(free, np.zeros((T, 2))).ravel()
    Hc = np.column_stack([mc.gradient(free, np.eye(n)[i].reshape(T, 2)).ravel() - g0
                          for i in range(n)])
    Hc = 0.5 * (Hc + Hc.T)
    w_ref = naive.box_qp(Hc, g0, np.tile(lo, T), np.tile(hi, T))
    assert np.max(np.abs(res.w.ravel() - w_ref)) < 1e-9
    assert np.sum(np.isclose(w_ref, np.tile(hi, T)) | np.isclose(w_ref, np.tile(lo, T))) > 5


# ---- the running-cost swing-up against IPOPT ----------------------------------------------

def swingup(T, bounds=None):
    # dt a run-time input: every T of these tests shares one compiled module
    return mc.ControlProblem(models.pendulum(), horizon=T, dt=5.0 / T, x0=[0.0, 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2,
                             stage_cost=lambda x, u: 1e-2 * u[0] ** 2, scheme="rk4",
                             control_bounds=bounds, runtime_params=True)


@pytest.fixture(scope="module")
def ipopt_T1000():
    out = {}
    for key, b in (("free", None), ("bounded", ([-1.5], [1.5]))):
        p = swingup(1000, b)
        out[key] = (p, mc.solve(p, "ipopt", verbose=False))
    return out


@pytest.mark.parametrize("method", ["ilqr", "ddp"])
@pytest.mark.parametrize("key", ["free", "bounded"])
def test_swingup_T1000_reaches_ipopt(ipopt_T1000, method, key):
    p, ip = ipopt_T1000[key]
    assert ip.success
    res = mc.solve(p, method, iters=200, verbose=False)
    assert res.success and res.status == 4, res.message
    assert abs(res.fun - ip.fun) <= 1e-6 * ip.fun
    assert mc.objective(p, res.w) == pytest.approx(res.fun, rel=1e-13)
    assert np.all(np.diff(res.costs) < 0)
    if key == "bounded":
        assert res.w.min() >= -1.5 and res.w.max() <= 1.5
        assert np.sum(np.abs(res.w) == 1.5) > 10          # the bounds bind
        assert ip.fun - res.fun > -1e-12 * ip.fun         # IPOPT's interior point is not lower
    else:
        assert np.max(np.abs(res.w - ip.w)) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ilqr", "ddp"])
def test_swingup_T10000_reaches_ipopt(method):
    p = swingup(10_000)
    ip = mc.solve(p, "ipopt", verbose=False)
    res = mc.solve(p, method, iters=300, verbose=False)
    assert res.success and abs(res.fun - ip.fun) <= 1e-6 * ip.fun


# ---- kernels against their twins -------------------------------------------------------

def test_backward_pass_matches_the_numpy_twin():
    p = lq_problem(12)
    rng = np.random.default_rng(0)
    # a nonlinear plant too: the pendulum (RK4, running cost) at a random trajectory
    for prob, lo, hi in ((p, None, None), (p, np.array([-0.2, -0.1]), np.array([0.3, 0.1])),
                         (swingup(15), None, None), (swingup(15), np.array([-0.5]), np.array([0.5]))):
        ch = prob.chain
        mod, _ = ilqr_kernels(ch)
        T, nx, nw = prob.horizon, prob.nx, prob.nw
        w = rng.uniform(-0.1, 0.1, (T, nw)) if lo is None else rng.uniform(lo, hi, (T, nw))
        _, X = ch.forward(w)
        for mask, reg in ((np.eye(nx)[-1], 0.0), (np.ones(nx), 0.3)):
            K, k, out = np.zeros((T, nw, nx)), np.zeros((T, nw)), np.zeros(3)
            bounded = lo is not None
            lo_, hi_ = (lo, hi) if bounded else (np.full(nw, -np.inf), np.full(nw, np.inf))
            bad = mod.f_ilqr_backward(w, X, lo_, hi_, bounded, mask, reg, K, k, out, ch.params)
            if bad >= 0:   # an indefinite model (DDP far from a minimum): reported, not solved
                assert mask.sum() > 1 and reg == 0.0
                continue
            Kr, kr, dV = naive.ilqr_backward(prob, w, X, mask, reg, lo, hi)
            np.testing.assert_allclose(k, kr, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(K, Kr, rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(out[:2], dV, rtol=1e-9, atol=1e-15)


def test_stage_derivatives_match_casadi():
    p = swingup(10)
    mod, fns = ilqr_kernels(p.chain)
    rng = np.random.default_rng(1)
    w, x, mu = rng.normal(size=1), rng.normal(size=3), rng.normal(size=3)
    got = np.array(mod._il_lq_s(*w, *x, *mu, *p.chain.params))
    ws, xs, ms = ca.SX.sym("w", 1), ca.SX.sym("x", 3), ca.SX.sym("m", 3)
    f = p.stage(ws, xs)
    lag = ca.dot(ms, f)
    ref = ca.Function("r", [ws, xs, ms], [ca.jacobian(f, xs), ca.jacobian(f, ws),
                                          ca.hessian(lag, xs)[0],
                                          ca.jacobian(ca.gradient(lag, ws), xs),
                                          ca.hessian(lag, ws)[0]])(w, x, mu)
    want = np.concatenate([np.asarray(r, dtype=float).ravel() for r in ref])  # row-major
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_forward_pass_is_the_rollout_with_feedback():
    p = swingup(20, ([-0.4], [0.4]))
    mod, _ = ilqr_kernels(p.chain)
    rng = np.random.default_rng(2)
    w = rng.uniform(-0.3, 0.3, (20, 1))
    _, X = naive.forward(p, w)
    K, k = rng.normal(size=(20, 1, 3)), rng.normal(size=(20, 1))
    wn, Xn = np.empty_like(w), np.empty_like(X)
    cost = mod.f_ilqr_forward(w, X, K, k, 0.5, p.lower.copy(), p.upper.copy(), wn, Xn,
                              p.chain.params)
    # the same controls computed stage by stage in numpy, rolled out by CasADi
    x = X[0].copy()
    for t in range(20):
        u = np.clip(w[t] + 0.5 * k[t] + K[t] @ (x - X[t]), -0.4, 0.4)
        assert wn[t, 0] == pytest.approx(u[0], abs=1e-14)
        x = np.asarray(p.stage(u, x)).ravel()
    ref_cost, ref_X = naive.forward(p, wn)
    np.testing.assert_allclose(Xn, ref_X, rtol=1e-13, atol=1e-14)
    assert cost == pytest.approx(ref_cost, rel=1e-13)


def test_box_qp_kernel_matches_scipy_bvls():
    mod, _ = ilqr_kernels(lq_problem(5).chain)
    rng = np.random.default_rng(3)
    n = 2
    for trial in range(30):
        M = rng.normal(size=(n, n))
        H = M @ M.T + 0.1 * np.eye(n)
        g = rng.normal(size=n) * 3
        lo = -rng.uniform(0.05, 1, n)
        hi = rng.uniform(0.05, 1, n)
        x = rng.uniform(lo, hi)
        free, idx, L = np.empty(n), np.empty(n, dtype=np.int64), np.empty((n, n))
        nf = mod._box_qp(H, g, lo, hi, x, n, free, idx, L, *(np.empty(n) for _ in range(4)))
        ref = naive.box_qp(H, g, lo, hi)
        np.testing.assert_allclose(x, ref, atol=1e-10)
        grad = g + H @ x
        clamped = ((x == lo) & (grad > 0)) | ((x == hi) & (grad < 0))
        assert nf == n - clamped.sum() and np.array_equal(free == 0.0, clamped)


# ---- statuses and bad input -----------------------------------------------------------------

def test_a_stall_is_a_status_not_an_exception():
    # sqrt(|omega|) has an infinite derivative at omega = 0, where w = 0 leaves the
    # pendulum: no regularization makes that model finite; the run stops with status -5
    p = mc.ControlProblem(models.pendulum(), horizon=20, dt=0.1, x0=[0.0, 0.0],
                          terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + ca.sqrt(ca.fabs(x[1])),
                          stage_cost=lambda x, u: u[0] ** 2)
    res = mc.solve(p, "ddp", verbose=False)
    assert not res.success and res.status == -5, res.message
    assert "stalled" in res.message and res.costs.size >= 1 and np.isfinite(res.fun)


def test_options_and_bad_input():
    p = swingup(10)
    with pytest.raises(ValueError, match="unknown iLQR option 'tolerance'"):
        mc.solve(p, "ilqr", solver_options={"tolerance": 1e-3}, verbose=False)
    with pytest.raises(ValueError, match="reg_factor must be > 1"):
        mc.solve(p, "ilqr", solver_options={"reg_factor": 1.0}, verbose=False)
    with pytest.raises(ValueError, match="iters must be an integer >= 0"):
        mc.solve(p, "ilqr", iters=-1, verbose=False)
    with pytest.raises(ValueError, match="w0 is outside control_bounds"):
        mc.solve(swingup(10, ([-1.0], [1.0])), "ilqr", w0=np.full((10, 1), 2.0), verbose=False)
    res = mc.solve(p, "ilqr", iters=2, verbose=False)
    assert res.nit == 2 and res.status == 0 and len(res.costs) == 3
    assert res.settings["hessian"] == "gauss-newton" and len(res.settings["reg"]) == 2
