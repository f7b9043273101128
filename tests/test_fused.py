"""The fused loop kernels (moreauctl.codegen.fused) against the generic loop kernels.

Reference: the generic kernels of ``moreauctl/_kernels/chain_kernels.py``, which the other
test files check against finite differences, CasADi and scipy. The fused kernels perform the
same floating-point operations in the same order, so the comparison is bitwise.
"""
from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models
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
def test_fused_gradient_kernels_equal_generic_bitwise(make, T):
    p = make(horizon=T)
    ch, k = p.chain, p.chain.kernels
    assert ch.fused
    w = 0.5 * RNG.normal(size=(T, p.nw))
    X1, X2 = np.empty((T + 1, p.nx)), np.empty((T + 1, p.nx))
    J1, J2 = np.empty((T, ch.njv)), np.empty((T, ch.njv))
    assert k.f_forward(w, ch.x0, X1) == k.forward(w, ch.x0, X2)
    np.testing.assert_array_equal(X1, X2)
    assert k.f_objective(w, ch.x0) == k.objective(w, ch.x0)
    assert k.f_forward_jac(w, ch.x0, X1, J1) == k.forward_jac(w, ch.x0, X2, J2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(J1, J2)
    G1, G2, l1, l2 = np.empty_like(w), np.empty_like(w), np.empty(p.nx), np.empty(p.nx)
    k.f_backward_gradient(w, X1, G1, l1)
    k.backward_gradient(w, X1, G2, l2)
    np.testing.assert_array_equal(G1, G2)
    np.testing.assert_array_equal(l1, l2)
    k.f_backward_gradient_jac(w, J1, X1, G1, l1)
    k.backward_gradient_jac(w, J1, X1, G2, l2)
    np.testing.assert_array_equal(G1, G2)
    np.testing.assert_array_equal(l1, l2)
    # the Chain method routes through the fused kernels and agrees with CasADi's reverse
    # mode on the symbolic rollout
    cost, X, G, lam0 = ch.value_and_gradient(w)
    np.testing.assert_array_equal(X, X2)
    ref_G = naive.casadi_gradient(p, w)
    assert cost == pytest.approx(naive.forward(p, w)[0], rel=1e-12)
    np.testing.assert_allclose(G, ref_G, rtol=1e-10, atol=1e-12 * np.abs(ref_G).max())


@pytest.mark.parametrize("make,T", PROBLEMS)
@pytest.mark.parametrize("rules", ["mbp", "gbp", ("gbp", "mbp", "gbp"), ("mbp", "gbp", "mbp")])
def test_fused_moreau_equals_generic_bitwise(make, T, rules):
    p = make(horizon=T)
    ch, k = p.chain, p.chain.kernels
    w = 0.3 * RNG.normal(size=(T, p.nw))
    ref = MoreauOracle(ch, alpha=1.5, gamma=0.8, rules=rules, diagnostics=True)(w)
    o = MoreauOracle(ch, alpha=1.5, gamma=0.8, rules=rules)
    G, lam0 = np.empty_like(w), np.empty(p.nx)
    bad = k.f_backward_moreau_paper(w, ref.states, np.empty((0, ch.njv)), False, o.gam_h,
                                    o.gam, o.alp, o.rules, G, lam0)
    assert bad == -1
    np.testing.assert_array_equal(G, ref.direction)
    np.testing.assert_array_equal(lam0, ref.info["lam0"])


def test_fused_moreau_goldstein_search_beyond_the_unit_step():
    # Large steps make the unit trial fail on some stages, so the peeled first trial and
    # the search loop (shrinking and growing) both run; still bitwise equal.
    p = _toy_nonaffine(horizon=15)
    ch, k = p.chain, p.chain.kernels
    w = RNG.normal(size=(15, 2))
    for alpha, gamma in [(40.0, 3.0), (0.05, 0.02), (300.0, 30.0)]:
        ref = MoreauOracle(ch, alpha=alpha, gamma=gamma, schedule="constant",
                           diagnostics=True)(w)
        o = MoreauOracle(ch, alpha=alpha, gamma=gamma, schedule="constant")
        G, lam0 = np.empty_like(w), np.empty(p.nx)
        k.f_backward_moreau_paper(w, ref.states, np.empty((0, ch.njv)), False, o.gam_h,
                                  o.gam, o.alp, o.rules, G, lam0)
        np.testing.assert_array_equal(G, ref.direction)
        np.testing.assert_array_equal(lam0, ref.info["lam0"])


def test_fused_source_unrolls_to_the_sizes():
    src = fused_source({"NX": 3, "NW": 2, "NJV": 4, "STORE_JAC": True, "AFFINE_W": False,
                        "AFFINE_X": False, "QUAD_H": True})
    compile(src, "<fused>", "exec")  # valid Python
    assert "x_0, x_1, x_2, j_0, j_1, j_2, j_3 = _phi_jac_s(w[t, 0], w[t, 1], x_0, x_1, x_2)" in src
    assert "_phi_vjp_w_s" in src and "_phi_vjp_x_s" in src
    affine = fused_source({"NX": 2, "NW": 1, "NJV": 1, "STORE_JAC": True, "AFFINE_W": True,
                           "AFFINE_X": False, "QUAD_H": True})
    assert "_phi_vjp_w_s" not in affine  # the closed form needs no control prox
