"""The compiled passes (moreauctl.codegen.fused) against their twins.

References: CasADi's own evaluation of the stage (the plain-numpy passes of
``moreauctl.chain.Chain`` over the chain's CasadiStage views, and ``tests/naive.py``), and,
bitwise, the other compiled pass that must compute the same operations in the same order
(forward passes with and without storing values; the two Moreau passes, which one generator
emits).
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.codegen.fused import fused_source
from moreauctl.oracles import MoreauOracle

from . import naive

RNG = np.random.default_rng(11)


def _toy_nonaffine(horizon):
    """A stage that is neither affine in w nor in x, with nw = 2: exercises both prox
    kinds of the fused Moreau kernel."""
    x = ca.SX.sym("x", 2)
    u = ca.SX.sym("u", 2)
    rhs = ca.vertcat(x[1], -ca.sin(x[0]) + ca.tanh(u[0]) + 0.1 * u[1] ** 2)
    plant = mc.Plant(state=x, control=u, rhs=rhs, name="toy")
    return mc.ControlProblem(plant, horizon=horizon, dt=0.1, x0=[0.3, 0.0],
                             terminal_cost=lambda x: ca.cos(x[0]) + x[1] ** 2)


PROBLEMS = [(models.pendulum_swingup, 37), (models.cartpole_swingup, 23), (_toy_nonaffine, 19)]


@pytest.mark.parametrize("make,T", PROBLEMS)
def test_compiled_gradient_passes_equal_casadi(make, T):
    p = make(horizon=T)
    ch, k = p.chain, p.chain.kernels
    P = ch.params  # dt and the plant's parameters: run-time inputs of every kernel
    w = 0.5 * RNG.normal(size=(T, p.nw))
    X1, X2 = np.empty((T + 1, p.nx)), np.empty((T + 1, p.nx))
    J1 = np.empty((T, ch.njv))
    h = k.f_forward(w, ch.x0, X1, P)
    # storing values changes no state bit; nothing-stored objective is the same number
    assert k.f_forward_jac(w, ch.x0, X2, J1, P) == h == k.f_objective(w, ch.x0, P)
    np.testing.assert_array_equal(X1, X2)
    ref_h, ref_X = naive.forward(p, w)  # CasADi's VM, stage by stage
    assert h == pytest.approx(ref_h, rel=1e-13)
    np.testing.assert_allclose(X1, ref_X, rtol=1e-13, atol=1e-15)
    G1, G2, l1, l2 = np.empty_like(w), np.empty_like(w), np.empty(p.nx), np.empty(p.nx)
    k.f_backward_gradient(w, X1, G1, l1, P)
    k.f_backward_gradient_jac(w, J1, X1, G2, l2, P)
    ref_G = naive.casadi_gradient(p, w)  # CasADi reverse mode on the symbolic rollout
    for G in (G1, G2):
        np.testing.assert_allclose(G, ref_G, rtol=1e-10, atol=1e-12 * np.abs(ref_G).max())
    # the plain-numpy pass over CasadiStage views
    Gp, lp = Chain.gradient(ch, w.ravel(), list(X1), None)
    np.testing.assert_allclose(Gp.reshape(w.shape), G1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lp, l1, rtol=1e-12, atol=1e-14)
    # the Chain method routes through the fused kernels
    cost, X, G, lam0 = ch.value_and_gradient(w)
    np.testing.assert_array_equal(X, X1)
    assert cost == h
    np.testing.assert_array_equal(G.reshape(w.shape), G2 if ch.store_jacobians else G1)


def _both_moreau_passes(ch, w, X, o, JV, use_jv):
    k = ch.kernels
    G1, G2 = np.empty_like(w), np.empty_like(w)
    l1, l2 = np.empty(ch.nx), np.empty(ch.nx)
    resid = np.empty((w.shape[0] + 1, 2))
    s = o.spec
    b1 = k.f_backward_moreau_paper(w, X, JV, use_jv, s.gam_h, s.gam, s.alp, s.codes, G1, l1,
                                   ch.params)
    b2 = k.f_backward_moreau(w, X, JV, use_jv, s.gam_h, s.gam, s.alp, s.codes, 0, 20, 1e-10,
                             True, G2, l2, resid, ch.params)
    assert b1 == b2 == -1
    np.testing.assert_array_equal(G1, G2)
    np.testing.assert_array_equal(l1, l2)
    return G1, l1


@pytest.mark.parametrize("make,T", PROBLEMS)
@pytest.mark.parametrize("rules", ["mbp", "gbp", ("gbp", "mbp", "gbp"), ("mbp", "gbp", "mbp")])
def test_both_moreau_passes_equal_bitwise(make, T, rules):
    p = make(horizon=T)
    ch = p.chain
    w = 0.3 * RNG.normal(size=(T, p.nw))
    o = MoreauOracle(ch, alpha=1.5, gamma=0.8, rules=rules)
    _, X = ch.forward(w)
    G, lam0 = _both_moreau_passes(ch, w, X, o, np.empty((0, ch.njv)), False)
    if ch.store_jacobians:  # fed with stored values: both passes still agree bitwise
        JV = np.empty((T, ch.njv))
        ch.kernels.f_forward_jac(w, ch.x0, np.empty_like(X), JV, ch.params)
        Gj, _ = _both_moreau_passes(ch, w, X, o, JV, True)
        np.testing.assert_allclose(Gj, G, rtol=1e-12, atol=1e-15)
    twin = Chain.backward(ch, w.ravel(), X, None, o.spec)
    np.testing.assert_allclose(twin.direction.reshape(w.shape), G, rtol=1e-11, atol=1e-14)


def test_moreau_goldstein_search_beyond_the_unit_step():
    # Large steps make the unit trial fail on some stages, so the peeled first trial and
    # the search loop (shrinking and growing) both run; the two passes still agree bitwise,
    # and with the numpy twin of the inner algorithm.
    p = _toy_nonaffine(horizon=15)
    ch = p.chain
    w = RNG.normal(size=(15, 2))
    _, X = ch.forward(w)
    for alpha, gamma in [(40.0, 3.0), (0.05, 0.02), (300.0, 30.0)]:
        o = MoreauOracle(ch, alpha=alpha, gamma=gamma, schedule="constant")
        G, _ = _both_moreau_passes(ch, w, X, o, np.empty((0, ch.njv)), False)
        twin = Chain.backward(ch, w.ravel(), X, None, o.spec)
        assert mc.relative_error(twin.direction, G) <= 1e-10


def test_fused_source_unrolls_to_the_sizes():
    src = fused_source({"NX": 3, "NW": 2, "NJV": 4, "STORE_JAC": True, "AFFINE_W": False,
                        "AFFINE_X": False, "QUAD_H": True})
    compile(src, "<fused>", "exec")  # valid Python
    assert "x_0, x_1, x_2, j_0, j_1, j_2, j_3 = _phi_jac_s(w[t, 0], w[t, 1], x_0, x_1, x_2)" in src
    assert "_phi_vjp_w_s" in src and "_phi_vjp_x_s" in src
    affine = fused_source({"NX": 2, "NW": 1, "NJV": 1, "STORE_JAC": True, "AFFINE_W": True,
                           "AFFINE_X": False, "QUAD_H": True})
    assert "_phi_vjp_w_s" not in affine  # the closed form needs no control prox
