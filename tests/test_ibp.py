"""The IBP rule (short paper, Sec. 1: regularized inversion) per line of Algo 2.

``IBP(f)(z, lam; c) = -argmin_y c/2 |f(z + y) - f(z) + lam|^2 + |y|^2/2`` (the paper's
``gamma = 1/c``). References: the closed form ``(c J^T J + I)^{-1} c J^T lam`` of an affine
line with ``J`` from CasADi's Jacobian; the pseudo-inverse for ``c = inf``; scipy's solve of
every line's defining subproblem (control chain and a small numpy network); the plain-numpy
pass over the chain's CasadiStage views (twin of the compiled pass); the small-step limit
(GBP).
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.optimize import minimize as scipy_minimize

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.oracles import MoreauOracle
from moreauctl.rules import IBP, RULES, Inner, parse_rules

from .test_chain_protocol import Affine, Squared, make_chain, make_data
from .test_fused import _toy_nonaffine

RNG = np.random.default_rng(3)


#: neither affine in w nor in x, nw = 2 (every IBP line needs the inner solver)
_toy = _toy_nonaffine


@pytest.fixture(scope="module")
def pendulum():
    return models.pendulum_swingup(horizon=9)


@pytest.fixture(scope="module")
def toy():
    return _toy(7)


def _argmin(F, n, x0=None):
    r = scipy_minimize(F, np.zeros(n) if x0 is None else x0, method="BFGS",
                       options={"gtol": 1e-12, "maxiter": 20000})
    return r.x


def test_ibp_is_a_rule_on_every_line():
    assert RULES["ibp"] is IBP
    assert parse_rules(("gbp", "gbp", "ibp"))[2] is IBP
    assert parse_rules({"controls": "ibp"}) == (RULES["mbp"], RULES["mbp"], IBP)


def test_ibp_on_affine_line_equals_closed_form(pendulum):
    # the pendulum is affine in w: with GBP costates, the compiled weight line is
    # (c B^T B + I)^{-1} c B^T lam_t, B = dphi/dw from CasADi
    p = pendulum
    ch = p.chain
    T = p.horizon
    w = 0.4 * RNG.normal(size=T)
    o = MoreauOracle(ch, alpha=0.7, gamma=0.9, rules=("gbp", "gbp", "ibp"), diagnostics=True)
    out, _ = o(w)
    twin = Chain.backward(ch, w, out.states, None, o.spec)  # the costates
    wt, xt = ca.SX.sym("w", 1), ca.SX.sym("x", 2)
    Bf = ca.Function("B", [wt, xt], [ca.jacobian(p.stage(wt, xt), wt)])
    X = out.states
    for t in range(T):
        B = np.asarray(Bf(w[t], X[t]), dtype=float)
        c = o.alp[t]
        lam = twin.costates[t + 1]
        ref = np.linalg.solve(c * B.T @ B + np.eye(1), c * B.T @ lam)
        np.testing.assert_allclose(out.info["g"][t], ref, rtol=1e-13)
        # c = inf: the minimum-norm inverse J^+ lam
        assert IBP.weights(ch.stages[t], w[t:t + 1], X[t], lam, np.inf, Inner()) == \
            pytest.approx(np.linalg.pinv(B) @ lam, rel=1e-13)


def test_ibp_dense_layer_closed_form_equals_cg_and_explicit_jacobian():
    # a dense layer x W^T + b on a batch: the stage's own closed form (A^T A + I/c)^{-1},
    # conjugate gradient run to convergence, and the Jacobian built from VJPs agree
    st = DenseWithClosedForm(5, 3)
    plain = Affine(5, 3)
    w = RNG.normal(size=3 * 5 + 3)
    x = RNG.normal(size=(6, 5))
    lam = RNG.normal(size=(6, 3))
    c = 0.8
    closed = IBP.weights(st, w, x, lam, c, Inner())
    explicit = IBP.weights(plain, w, x, lam, c, Inner())
    cg = IBP.weights(plain, w, x, lam, c, Inner("cg", iters=200, tol=1e-14))
    A = np.hstack([x, np.ones((6, 1))])
    V = lam.T @ A @ np.linalg.inv(A.T @ A + np.eye(6) / c)   # (out, in+1): [dW | db]
    ref = np.concatenate([V[:, :5].ravel(), V[:, 5]])
    for got in (closed, explicit, cg):
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-13)


class DenseWithClosedForm(Affine):
    """``x W^T + b`` offering ``normal_solve_w``: ``(a J^T J + b I) y = rhs`` is
    ``Y (a A^T A + b I) = RHS`` with ``A = [x, 1]`` and ``Y = [dW | db]``."""

    def normal_solve_w(self, w, x, rhs, a, b):
        n_in, n_out = self.n_in, self.n_out
        k = n_out * n_in
        R = np.hstack([rhs[:k].reshape(n_out, n_in), rhs[k:, None]])
        A = np.hstack([x, np.ones((x.shape[0], 1))])
        Y = np.linalg.solve(a * A.T @ A + b * np.eye(n_in + 1), R.T).T
        return np.concatenate([Y[:, :n_in].ravel(), Y[:, n_in]])


def _lsq(residual, n):
    """scipy's solve of ``min_y |residual(y)|^2`` (Levenberg-Marquardt, tight tolerances):
    every IBP subproblem is a least-squares problem."""
    return least_squares(residual, np.zeros(n), method="lm", xtol=1e-15, ftol=1e-15,
                         gtol=1e-15).x


def _check_lines_against_scipy(ch, w, out, spec, data=None):
    """Every line's output vs scipy's argmin of its defining subproblem
    ``c/2 |f(z + y) - f(z) + lam|^2 + |y|^2/2``, i.e. the least squares of the residual
    ``(sqrt(c) (f(z + y) - f(z) + lam), y)``."""
    lams = out.info["costates"]
    X = out.states
    g = out.info["g"]
    h = ch.h
    xT = X[-1]
    r = np.sqrt(spec.gam_h)
    hT = h.value(xT, data)
    y = _lsq(lambda y: np.concatenate([[r * (h.value(xT + y.reshape(xT.shape), data) - hT + 1.0)],
                                       y]), xT.size)
    assert mc.relative_error(lams[-1], -y.reshape(xT.shape)) <= 1e-6
    for t, st in enumerate(ch.stages):
        wt, x, lam, xn = ch.layout.segment(w, t), X[t], lams[t + 1], X[t + 1]
        r = np.sqrt(spec.gam[t])
        y = _lsq(lambda y: np.concatenate([r * np.ravel(st.forward(wt, x + y.reshape(x.shape))
                                                         - xn + lam), y]), x.size)
        assert mc.relative_error(lams[t], -y.reshape(x.shape)) <= 1e-6, t
        r = np.sqrt(spec.alp[t])
        v = _lsq(lambda v: np.concatenate([r * np.ravel(st.forward(wt + v, x) - xn + lam), v]),
                 wt.size)
        assert mc.relative_error(ch.layout.segment(g, t), -v) <= 1e-6, t


def test_ibp_inner_solves_match_scipy_on_a_control_chain(toy):
    # Python pass (it returns the costates) with Newton run to convergence; the compiled
    # pass gives the same directions
    ch = toy.chain
    w = 0.5 * RNG.normal(size=(toy.horizon * 2))
    o = MoreauOracle(ch, alpha=0.9, gamma=0.8, rules="ibp", inner="newton", inner_iters=50,
                     inner_tol=1e-13, diagnostics=True)
    cost, X = ch.forward(w)
    b = Chain.backward(ch, w, X, None, o.spec)
    assert b.failed_stage is None
    out = mc.oracles.OracleOutput(cost, b.direction, X, info={"costates": b.costates,
                                                              "g": b.direction})
    _check_lines_against_scipy(ch, w, out, o.spec)
    assert np.nanmax(b.residuals) <= 1e-9
    # the compiled pass: the same solves (Newton stops where the line search can no longer
    # decrease F in floating point, ~1e-13 absolute on these small targets)
    compiled, _ = o(w)
    np.testing.assert_allclose(compiled.info["g"], b.direction, rtol=1e-6)
    assert np.nanmax(compiled.info["residuals"]) <= 1e-9


def test_ibp_inner_solves_match_scipy_on_a_small_network():
    ch = make_chain()
    data = make_data()
    w = 0.7 * RNG.normal(size=ch.layout.size)
    o = MoreauOracle(ch, alpha=0.8, gamma=0.6, rules="ibp", inner="gd", inner_iters=3000,
                     inner_tol=1e-12, diagnostics=True)
    out, _ = o(w, o.init(w), data)
    assert out.failed_stage is None
    _check_lines_against_scipy(ch, w, out, o.spec, data)
    assert np.nanmax(out.info["residuals"]) <= 1e-8


@pytest.mark.parametrize("rules", [("ibp", "ibp", "ibp"), ("gbp", "gbp", "ibp"),
                                   ("mbp", "ibp", "mbp")])
@pytest.mark.parametrize("inner", ["paper", "newton"])
@pytest.mark.parametrize("which", ["pendulum", "toy", pytest.param("cartpole",
                                                                   marks=pytest.mark.slow)])
def test_compiled_ibp_lines_equal_python_twin(which, inner, rules, pendulum, toy):
    # (the cart-pole's penalty pass takes ~30 s to compile cold: slow tier)
    p = {"pendulum": pendulum, "toy": toy,
         "cartpole": None}[which] or models.cartpole_swingup(horizon=5)
    ch = p.chain
    w = 0.3 * RNG.normal(size=p.horizon * p.nw)
    o = MoreauOracle(ch, alpha=0.7, gamma=0.8, rules=rules, inner=inner, inner_iters=30)
    cost, X, b = ch.forward_backward(w, None, o.spec)
    twin = Chain.backward(ch, w, X, None, o.spec)
    assert b.failed_stage is None and twin.failed_stage is None
    # same algorithms on the same subproblems; Newton's last steps sit at rounding level
    np.testing.assert_allclose(b.direction, twin.direction, rtol=1e-8,
                               atol=1e-12 * np.abs(twin.direction).max())
    np.testing.assert_allclose(b.lam0, twin.lam0, rtol=1e-8, atol=1e-12 * np.abs(twin.lam0).max())


def test_ibp_tends_to_gbp_for_small_steps(toy):
    # IBP(c) = c J^T lam + O(c^2): halving c halves the direction and quarters the gap
    ch = toy.chain
    w = 0.3 * RNG.normal(size=toy.horizon * 2)
    gaps = []
    for a in (1e-2, 5e-3):
        ib = MoreauOracle(ch, alpha=a, gamma=0.9, rules=("gbp", "gbp", "ibp"), inner="newton")
        gb = MoreauOracle(ch, alpha=a, gamma=0.9, rules="gbp")
        d1, d2 = ib(w)[0].direction, gb(w)[0].direction   # both in gradient units (g / a)
        gaps.append(np.abs(d1 - d2).max())
    assert gaps[1] == pytest.approx(gaps[0] / 2, rel=0.05)


def test_ibp_with_l2_regularizer_matches_scipy():
    # D.6 in an IBP weight line: c (|phi - phi(w) + lam|^2/2 + s r) + |y|^2/2, r = mu/2 |w|^2
    st = Affine(4, 3)
    w = RNG.normal(size=15)
    x = RNG.normal(size=(5, 4))
    lam = RNG.normal(size=(5, 3))
    reg = mc.chain.L2(0.3).at(0, 0.5)
    c = 0.9
    got = IBP.weights(st, w, x, lam, c, Inner(), reg=reg)
    ph = st.forward(w, x)
    v = _argmin(lambda v: c * (0.5 * np.sum((st.forward(w + v, x) - ph + lam) ** 2)
                               + reg.value(w + v)) + 0.5 * v @ v, w.size)
    assert mc.relative_error(got, -v) <= 1e-6
