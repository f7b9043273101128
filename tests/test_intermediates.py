"""Tests of moreauctl.codegen.intermediates: stored transcendentals for the stage VJP.

Reference for every VJP: CasADi's own reverse mode, ``ca.gradient(ca.dot(lam, phi), w/x)``
evaluated by CasADi's VM. Metric: ``max|a - b| / max(1, max|b|)``.
"""
from __future__ import annotations

from collections import Counter

import casadi as ca
import numpy as np
import pytest

from moreauctl import models
from moreauctl.codegen.intermediates import STORED_OPS, split_transcendentals
from moreauctl.codegen.translate import op_name

RTOL = 1e-12
N_SAMPLES = 5
# The ops the brief requires never to be recomputed by vjp_s.
REQUIRED_STORED = {ca.OP_SIN, ca.OP_COS, ca.OP_EXP, ca.OP_TANH}


# ---------------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------------


def _toy_stage() -> ca.Function:
    """exp, tanh (both twice, on shared arguments) and the other stored ops."""
    w = ca.SX.sym("w", 2)
    x = ca.SX.sym("x", 3)
    phi = ca.vertcat(
        ca.exp(x[0] * w[0]) + ca.tanh(x[1]),
        ca.tanh(x[1]) * ca.exp(x[2]) + ca.log(1 + x[0] ** 2),
        ca.sinh(x[2]) * ca.cosh(x[2]) + ca.erf(w[1]) + ca.atan(x[0]) + ca.tan(0.3 * w[0]),
    )
    return ca.Function("toy", [w, x], [phi])


def _polynomial_stage() -> ca.Function:
    """No transcendental at all (divisions and powers only)."""
    w = ca.SX.sym("w", 1)
    x = ca.SX.sym("x", 2)
    phi = ca.vertcat(x[0] + 0.1 * x[1], x[1] + 0.1 * (w[0] - x[0] ** 3) / (1 + x[1] ** 2))
    return ca.Function("poly", [w, x], [phi])


STAGES = {
    "pendulum-euler": lambda: models.pendulum_swingup(horizon=3).stage,
    "cartpole-rk4": lambda: models.cartpole_swingup(horizon=3).stage,
    "toy-exp-tanh": _toy_stage,
    "polynomial": _polynomial_stage,
}


@pytest.fixture(scope="module", params=sorted(STAGES))
def split(request):
    """``(name, stage, phi_s, vjp_s, ns)``, built once per stage."""
    stage = STAGES[request.param]()
    return (request.param, stage, *split_transcendentals(stage))


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def _plain_vjp(stage: ca.Function) -> ca.Function:
    """CasADi's reverse mode ``(w, x, lam) -> (dphi/dw^T lam, dphi/dx^T lam)``."""
    w = ca.SX.sym("w", stage.size1_in(0))
    x = ca.SX.sym("x", stage.size1_in(1))
    lam = ca.SX.sym("lam", stage.size1_out(0))
    y = ca.dot(lam, stage(w, x))
    return ca.Function("vjp", [w, x, lam], [ca.gradient(y, w), ca.gradient(y, x)])


def _op_counts(fn: ca.Function) -> Counter:
    """``Counter`` of op names over ``fn``'s instruction list."""
    return Counter(op_name(fn.instruction_id(k)) for k in range(fn.n_instructions()))


def _samples(stage: ca.Function, seed: int = 0):
    """Random ``(w, x, lam)``; angles spread over several periods."""
    rng = np.random.default_rng(seed)
    for _ in range(N_SAMPLES):
        yield (rng.uniform(-3, 3, stage.size1_in(0)), rng.uniform(-4, 4, stage.size1_in(1)),
               rng.normal(size=stage.size1_out(0)))


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b)))) if b.size else 0.0


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


def test_signatures(split):
    _, stage, phi_s, vjp_s, ns = split
    nw, nx = stage.size1_in(0), stage.size1_in(1)
    assert phi_s.is_a("SXFunction") and vjp_s.is_a("SXFunction")
    assert [phi_s.sparsity_in(i).shape for i in range(2)] == [(nw, 1), (nx, 1)]
    assert [phi_s.sparsity_out(i).shape for i in range(2)] == [(nx, 1), (ns, 1)]
    assert [vjp_s.sparsity_in(i).shape for i in range(4)] == [(nw, 1), (nx, 1), (ns, 1), (nx, 1)]
    assert [vjp_s.sparsity_out(i).shape for i in range(2)] == [(nw, 1), (nx, 1)]
    assert all(vjp_s.sparsity_in(i).is_dense() for i in range(4))


def test_phi_is_bitwise_the_stage(split):
    _, stage, phi_s, _, _ = split
    for w, x, _ in _samples(stage):
        phi, _s = phi_s(w, x)
        assert np.array_equal(np.asarray(phi), np.asarray(stage(w, x)))


def test_vjp_matches_casadi_reverse_mode(split):
    _, stage, phi_s, vjp_s, _ = split
    plain = _plain_vjp(stage)
    for w, x, lam in _samples(stage, seed=1):
        s = phi_s(w, x)[1]
        for got, want in zip(vjp_s(w, x, s, lam), plain(w, x, lam)):
            assert _rel_err(got, want) <= RTOL


def test_vjp_recomputes_no_stored_op(split):
    _, stage, _, vjp_s, _ = split
    assert REQUIRED_STORED <= STORED_OPS
    ops = {vjp_s.instruction_id(k) for k in range(vjp_s.n_instructions())}
    assert not ops & STORED_OPS, sorted(op_name(op) for op in ops & STORED_OPS)


def test_vjp_is_not_longer_than_casadi(split):
    # Pinning A := a must fold the (a - A) expansions away, not add work.
    _, stage, _, vjp_s, _ = split
    assert vjp_s.n_instructions() <= _plain_vjp(stage).n_instructions()


def test_ns_per_model(split):
    name, stage, phi_s, _, ns = split
    # Euler pendulum: sin(theta) enters phi linearly, the VJP needs only cos(theta).
    # RK4 cart-pole: (sin, cos) of the angle at each of the 4 sub-stages, shared.
    # toy: exp(x0 w0), tanh(x1), exp(x2), log, (sinh, cosh)(x2), atan, tan, erf (+ erf').
    expected = {"pendulum-euler": 1, "cartpole-rk4": 8, "polynomial": 0}
    if name in expected:
        assert ns == expected[name]
    if name == "cartpole-rk4":
        # Storing reuses phi's own sin/cos nodes: phi_s computes no extra transcendental.
        want, got = _op_counts(stage), _op_counts(phi_s)
        assert (got["OP_SIN"], got["OP_COS"]) == (want["OP_SIN"], want["OP_COS"]) == (4, 4)


def test_no_transcendentals_gives_empty_s():
    stage = _polynomial_stage()
    phi_s, vjp_s, ns = split_transcendentals(stage)
    assert ns == 0
    phi, s = phi_s([0.3], [0.5, -0.2])
    assert np.asarray(s).shape == (0, 1)
    plain = _plain_vjp(stage)
    for got, want in zip(vjp_s([0.3], [0.5, -0.2], np.zeros((0, 1)), [1.0, -2.0]),
                         plain([0.3], [0.5, -0.2], [1.0, -2.0])):
        assert _rel_err(got, want) <= RTOL


def test_rejects_non_stage():
    wm, xm = ca.MX.sym("w"), ca.MX.sym("x", 2)
    with pytest.raises(TypeError):  # MX, not SX
        split_transcendentals(ca.Function("f", [wm, xm], [xm]))
    xs = ca.SX.sym("x", 2)
    with pytest.raises(ValueError):  # one input, not (w, x)
        split_transcendentals(ca.Function("f", [xs], [xs]))
