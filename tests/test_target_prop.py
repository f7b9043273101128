"""Target propagation (Algo 10-11), regularized target propagation (Algo 12-13) and the
block-coordinate gradient sweep on the penalized formulation (Frerix et al., Prop. 1).

References: each line's defining argmin (Fact D.4 and D.5, the paper's unscaled form)
solved by scipy from the targets the pass produced; the minimum-norm least-squares inverse of
an affine layer (numpy's lstsq); gradient back-propagation (the penalized sweep with
``tau rho = 1``) and its geometric stage weights.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.oracles import (GradientOracle, PenalizedOracle, ProxTargetPropOracle,
                               TargetPropOracle)

from .test_chain_protocol import Affine, Squared, make_chain, make_data
from .test_auglag import regularized_chain, subproblem_case
from .test_ibp import _toy

RNG = np.random.default_rng(13)


def _lsq(residual, x0):
    return least_squares(residual, x0, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15).x


def test_target_prop_inverts_every_line_control():
    # Algo 10-11 on a chain neither affine in w nor x (nw = nx = 2: every inverse is a
    # square nonlinear system): x_T^+ by the prox of h/kappa, then exact inverses
    p = _toy(6)
    ch = p.chain
    w = 0.4 * RNG.normal(size=ch.layout.size)
    alpha = 0.05
    o = TargetPropOracle(ch, alpha, inner="newton", inner_iters=60, inner_tol=1e-14,
                         diagnostics=True)
    _, X = ch.forward(w)
    b = Chain.backward(ch, w, X, None, o.spec)
    assert b.failed_stage is None
    out, _ = o(w)   # compiled pass
    d = b.costates
    xT = X[-1]
    y = _lsq(lambda y: np.concatenate([[np.sqrt(2 * alpha * ch.h.value(xT + y))], y]),
             np.zeros(2))
    # x_T^+ = argmin alpha h + |y|^2/2 (h > 0 here, so sqrt(2 alpha h) is a residual)
    assert mc.relative_error(d[-1], -y) <= 1e-6
    for t, st in enumerate(ch.stages):
        wt, x, xp = ch.layout.segment(w, t), X[t], X[t + 1] - d[t + 1]
        # the controls move only omega in one step: the weight inverse is a least-squares
        # problem whose argmin is not unique, so compare the residuals it reaches
        v = _lsq(lambda v: st.forward(wt + v, x) - xp, np.zeros(2))
        # (the compiled pass too: where the argmin is not unique the two may differ)
        r_ref = np.linalg.norm(st.forward(wt + v, x) - xp)
        for g in (b.direction, out.info["g"]):
            r = np.linalg.norm(st.forward(wt - ch.layout.segment(g, t), x) - xp)
            assert r <= r_ref + 1e-9 * np.linalg.norm(d[t + 1]), t
        y = _lsq(lambda y: st.forward(wt, x + y) - xp, np.zeros(2))  # invertible: unique
        assert mc.relative_error(d[t], -y) <= 1e-6, t
    np.testing.assert_allclose(out.info["lam0"], b.lam0, rtol=1e-7)
    np.testing.assert_allclose(alpha * out.direction, out.info["g"], rtol=1e-15)


def test_target_prop_affine_layers_take_the_minimum_norm_inverse():
    ch = Chain([Affine(5, 4), Affine(4, 3)], Squared(), x0=lambda data: data[0])
    data = make_data(m=3)
    data = (data[0], data[1][:, :1].repeat(3, axis=1))
    w = RNG.normal(size=ch.layout.size)
    o = TargetPropOracle(ch, 0.5, inner="gd", diagnostics=True)
    out, _ = o(w, (), data)
    b = Chain.backward(ch, w, out.states, data, o.spec)
    for t, st in enumerate(ch.stages):
        x = out.states[t]
        A = np.kron(np.eye(st.n_out), x)                      # dphi/dW (row-major W)
        B = np.kron(np.eye(st.n_out), np.ones((x.shape[0], 1)))
        J = np.zeros((x.shape[0] * st.n_out, st.n_out * st.n_in + st.n_out))
        # rows: phi[i, o]; columns: W[o, j] then b[o]
        for o_ in range(st.n_out):
            J[o_::st.n_out, o_ * st.n_in:(o_ + 1) * st.n_in] = x
            J[o_::st.n_out, st.n_out * st.n_in + o_] = 1.0
        del A, B
        lam = np.ravel(b.costates[t + 1])
        ref = np.linalg.lstsq(J, lam, rcond=None)[0]
        np.testing.assert_allclose(ch.layout.segment(b.direction, t), ref, rtol=1e-10,
                                   atol=1e-13)


@pytest.mark.parametrize("which", ["control", pytest.param("network", marks=pytest.mark.slow)])
def test_prox_target_prop_lines_solve_fact_d5(which):
    # Algo 12-13 in the paper's own form with Algo 2's arrays gamma_t, alpha_t
    ch, data, w, inner = subproblem_case(which, RNG)
    T = ch.horizon
    kappa = 1.3
    gs = 0.9 * 0.7 ** np.arange(T, -1, -1, dtype=float)
    als = 0.6 * gs[1:]
    o = ProxTargetPropOracle(ch, gammas=gs, alphas=als, kappa=kappa, diagnostics=True, **inner)
    _, X = ch.forward(w, data)
    b = Chain.backward(ch, w, X, data, o.spec)
    assert b.failed_stage is None
    d = b.costates
    for t, st in enumerate(ch.stages):
        wt, x, xp = ch.layout.segment(w, t), X[t], X[t + 1] - d[t + 1]
        rk, rw = np.sqrt(kappa), 1 / np.sqrt(als[t])
        v = _lsq(lambda v: np.concatenate([rk * np.ravel(st.forward(wt + v, x) - xp), rw * v]),
                 np.zeros(wt.size))
        assert mc.relative_error(ch.layout.segment(b.direction, t), -v) <= 1e-6, t
        rx = np.sqrt(kappa + 1 / gs[t])
        y = _lsq(lambda y: np.concatenate([rk * np.ravel(st.forward(wt, x + y.reshape(x.shape))
                                                          - xp), rx * y]), np.zeros(x.size))
        assert mc.relative_error(d[t], -y.reshape(x.shape)) <= 1e-6, t


def test_prox_target_prop_at_long_horizons_stays_finite():
    # the geometric schedule's gamma_t underflow to 0 at T = 2000 (1/gamma_t = inf): the
    # early lines then vanish instead of producing NaN (at rest, the torque of the last
    # stage cannot move theta in one Euler step: the last direction is 0 too)
    p = models.pendulum_swingup(horizon=2000)     # dt = 0.1: the session's compiled stage
    out, _ = ProxTargetPropOracle(p.chain, 1.0, 0.5, kappa=1.0)(np.zeros(2000))
    assert out.failed_stage is None and np.all(np.isfinite(out.direction))
    assert out.direction[0] == 0.0 and out.direction[-2] < 0.0


@pytest.mark.parametrize("which", ["pendulum", "network"])
def test_penalized_sweep_is_backprop(which):
    # Frerix et al., Prop. 1: with tau rho = 1 the sweep is gradient back-propagation;
    # otherwise it weights stage t by (tau rho)^(T-t), the gradient oracle's geometric weights
    if which == "pendulum":
        ch, data = models.pendulum_swingup(horizon=25).chain, None
        w = 0.3 * RNG.normal(size=25)
    else:
        ch, data = make_chain(), make_data()
        w = 0.6 * RNG.normal(size=ch.layout.size)
    grad = GradientOracle(ch)(w, (), data)[0].direction
    d = PenalizedOracle(ch, 0.3, tau=2.0, rho=0.5)(w, (), data)[0]
    np.testing.assert_allclose(d.direction, grad, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d.info["g"], 0.3 * 2.0 * 0.5 * grad, rtol=1e-13, atol=1e-15)
    pen = PenalizedOracle(ch, 0.3, tau=1.0, rho=0.6)
    geo = pen(w, (), data)[0].direction
    ref = GradientOracle(ch, weights=0.6 ** np.arange(ch.horizon - 1, -1, -1.0))(w, (), data)[0]
    np.testing.assert_allclose(geo, ref.direction, rtol=1e-13, atol=1e-15)
    # the oracle takes the gradient pass; the sweep as written (GBP lines of the general
    # pass, compiled for the pendulum) is its twin
    _, _, sweep = ch.forward_backward(w, data, pen.spec)
    np.testing.assert_allclose(geo, sweep.direction / pen.scale, rtol=1e-12, atol=1e-15)


def test_penalized_with_weight_decay_is_the_regularized_gradient():
    ch, _ = regularized_chain(0.2)
    data = make_data()
    w = 0.6 * RNG.normal(size=ch.layout.size)
    grad = GradientOracle(ch)(w, (), data)[0].direction      # includes grad r
    d = PenalizedOracle(ch, 0.7, tau=4.0, rho=0.25)(w, (), data)[0].direction
    np.testing.assert_allclose(d, grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("method,step,opts", [
    ("target-prop", 1e-3, None), ("target-prop-adam", 1e-2, {"alpha": 1e-2}),
    ("prox-target-prop", 4.0, {"kappa": 1.0}), ("prox-target-prop-gd", 4.0, {"kappa": 1.0}),
    ("penalized", 0.01, None), ("penalized-adam", 0.05, {"tau_w": 1.0})])
def test_methods_run_from_solve(method, step, opts):
    p = models.pendulum_swingup(horizon=30)
    kw = {"gamma": 0.5} if "prox-target" in method else {}
    res = mc.solve(p, method, step=step, iters=4, verbose=False, oracle_options=opts, **kw)
    assert res.success and res.costs[-1] < res.costs[0], (res.costs, res.message)


def test_target_prop_divergence_is_a_status_and_bad_input_raises():
    p = models.pendulum_swingup(horizon=60)
    res = mc.solve(p, "target-prop", step=1.0, iters=20, verbose=False)
    assert not res.success and res.status < 0 and len(res.costs) >= 1
    with pytest.raises(ValueError, match=r"alpha \(= 1/kappa"):
        TargetPropOracle(p.chain, 0.0)
    with pytest.raises(ValueError, match="kappa must be a finite number > 0"):
        ProxTargetPropOracle(p.chain, 1.0, 0.5, kappa=0.0)
    with pytest.raises(ValueError, match="regularized target propagation needs gamma"):
        mc.solve(p, "prox-target-prop", step=1.0, iters=1)
    reg = Chain(make_chain().stages, Squared(), lambda d: d[0], regularizer=mc.chain.L2(0.1))
    with pytest.raises(ValueError, match="prox-target-prop"):
        TargetPropOracle(reg, 1.0)


def test_family_from_the_command_line(tmp_path, capsys):
    import json

    from moreauctl.cli import main
    assert main(["swingup", "--horizon", "20", "--method", "auglag", "--step", "64",
                 "--gamma", "0.5", "--kappa", "0.1", "--iters", "2", "--quiet", "--json",
                 "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["kappa"] == 0.1 and len(out["costs"]) == 3
    assert main(["swingup", "--horizon", "20", "--method", "proxprop", "--step", "0.01",
                 "--tau", "2", "--oracle-option", "inner=\"cg\"", "--oracle-option",
                 "inner_iters=3", "--iters", "1", "--quiet", "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["tau"] == 2 and out["settings"]["inner"] == "cg"
    argv = ["sweep", "--horizons", "10", "--methods", "proxprop,auglag,target-prop,"
            "prox-target-prop,penalized", "--steps", "-1:0", "--iters", "2", "--no-reference",
            "--executor", "serial", "--quiet", "--out", str(tmp_path / "s")]
    assert main(argv) == 0
    with open(tmp_path / "s" / "summary.csv") as f:
        assert f.read().count("\n") == 6
