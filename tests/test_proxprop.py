"""ProxProp (Frerix et al. 2018; long paper Eq. (19)/(43)): GBP costates, IBP on the weights.

References: the defining argmin of Eq. (43) solved by scipy (least squares) with the
back-propagated targets ``z_t = x_t - tau lam_t`` (``lam_t`` from gradient back-propagation);
the closed form of a dense layer vs conjugate gradient run to convergence; the small-step
limit (back-propagation, ``O(tau_theta)``).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

import moreauctl as mc
from moreauctl import models
from moreauctl.chain import Chain
from moreauctl.oracles import GradientOracle, ProxPropOracle
from moreauctl.rules import GBP, BackwardSpec

from .test_chain_protocol import Affine, Squared, TanhDense, make_chain, make_data
from .test_ibp import DenseWithClosedForm

RNG = np.random.default_rng(8)


@pytest.fixture(scope="module")
def pendulum():
    return models.pendulum_swingup(horizon=30)


def _affine_chain(closed=True):
    st = DenseWithClosedForm if closed else Affine
    return Chain([st(5, 7), st(7, 3), st(3, 2)], Squared(), x0=lambda data: data[0])


def _gradient_costates(ch, w, data):
    """``lam_t`` of gradient back-propagation (Algo 4), from the plain pass."""
    T = ch.horizon
    spec = BackwardSpec((GBP, GBP, GBP), 1.0, np.ones(T), np.ones(T), diagnostics=True)
    _, X = ch.forward(w, data)
    return X, Chain.backward(ch, w, X, data, spec).costates


@pytest.mark.parametrize("make", [make_chain, _affine_chain])
def test_proxprop_solves_eq43_with_backpropagated_targets(make):
    # tanh stages: the weight prox by the inner algorithm run to convergence; affine stages:
    # the dense layer's closed form
    ch = make()
    data = make_data()
    w = 0.6 * RNG.normal(size=ch.layout.size)
    tau, tt = 0.7, 0.4
    o = ProxPropOracle(ch, tt, tau=tau, inner="gd", inner_iters=4000, inner_tol=1e-13)
    out, _ = o(w, o.init(w), data)
    assert out.failed_stage is None
    X, lams = _gradient_costates(ch, w, data)
    for t, st in enumerate(ch.stages):
        wt = ch.layout.segment(w, t)
        z = X[t + 1] - tau * lams[t + 1]
        v = least_squares(lambda v: np.concatenate([np.ravel(st.forward(v, X[t]) - z),
                                                    (v - wt) / np.sqrt(tt)]),
                          wt, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15).x
        assert mc.relative_error(ch.layout.segment(out.info["g"], t), wt - v) <= 1e-6, t
    np.testing.assert_allclose(tt * out.direction, out.info["g"], rtol=1e-15)


def test_proxprop_closed_form_equals_cg_run_to_convergence(pendulum):
    # a network of dense layers (the stage's closed form vs matrix-free CG) and the pendulum,
    # affine in w (the Jacobian's closed form in the compiled pass vs CG in the Python pass)
    ch = _affine_chain()
    data = make_data(m=6)
    w = RNG.normal(size=ch.layout.size)
    closed = ProxPropOracle(ch, 0.9)(w, (), data)[0].direction
    cg = ProxPropOracle(ch, 0.9, inner="cg", inner_iters=500, inner_tol=1e-14)(w, (), data)[0]
    np.testing.assert_allclose(cg.direction, closed, rtol=1e-10, atol=1e-13)
    p = pendulum
    w = 0.3 * RNG.normal(size=p.horizon)
    closed = ProxPropOracle(p.chain, 0.9)(w)[0].direction
    cg = ProxPropOracle(p.chain, 0.9, inner="cg", inner_iters=50, inner_tol=1e-15)(w)[0].direction
    np.testing.assert_allclose(cg, closed, rtol=1e-10, atol=1e-14 * np.abs(closed).max())


def test_proxprop_cg_with_a_step_count_is_inexact():
    ch = _affine_chain(closed=False)
    data = make_data(m=6)
    w = RNG.normal(size=ch.layout.size)
    closed = ProxPropOracle(ch, 5.0)(w, (), data)[0].direction
    one = ProxPropOracle(ch, 5.0, inner="cg", inner_iters=1)(w, (), data)[0].direction
    assert mc.relative_error(one, closed) > 1e-3


@pytest.mark.parametrize("which", ["pendulum", "network"])
def test_proxprop_tends_to_backprop_linearly(which, pendulum):
    # direction = g / tau_theta = gradient + O(tau_theta): halving the step halves the gap
    if which == "pendulum":
        ch, data = pendulum.chain, None
        w = 0.3 * RNG.normal(size=pendulum.horizon)
    else:
        ch, data = make_chain(), make_data()
        w = 0.6 * RNG.normal(size=ch.layout.size)
    grad = GradientOracle(ch)(w, (), data)[0].direction
    gaps = []
    for tt in (1e-3, 5e-4, 2.5e-4):
        d = ProxPropOracle(ch, tt, inner="newton" if data is None else "gd", inner_iters=200,
                           inner_tol=1e-14)(w, (), data)[0].direction
        gaps.append(np.abs(d - grad).max() / np.abs(grad).max())
    assert gaps[0] < 1e-2
    assert gaps[1] / gaps[0] == pytest.approx(0.5, abs=0.02)
    assert gaps[2] / gaps[1] == pytest.approx(0.5, abs=0.02)


def test_proxprop_methods_run_and_divergence_is_a_status(pendulum):
    p = pendulum
    res = mc.solve(p, "proxprop", step=0.02, iters=5, verbose=False)
    assert res.success and res.costs[-1] < res.costs[0]
    assert res.settings["tau_theta"] == 0.02
    res = mc.solve(p, "proxprop-adam", step=0.05, iters=5, verbose=False,
                   oracle_options={"tau_theta": 0.5})
    assert res.success and res.costs[-1] < res.costs[0]
    bad = mc.solve(models.pendulum_swingup(horizon=100), "proxprop", step=1.0, iters=40,
                   verbose=False)
    assert not bad.success and bad.status == -2 and len(bad.costs) >= 2
    with pytest.raises(ValueError, match="tau_theta"):
        mc.solve(p, "proxprop", step=1.0, iters=1, oracle_options={"tau_theta": 2.0})
    with pytest.raises(ValueError, match=r"tau \(the target step\) must be a finite number > 0"):
        ProxPropOracle(p.chain, 1.0, tau=0.0)


def test_proxprop_with_weight_decay_matches_scipy():
    # D.6: w^+ = argmin 1/2 |phi(v) - z|^2 + r(v) + |v - w|^2 / (2 tau_theta), r = mu/2 |v|^2
    reg = mc.chain.L2(0.2)
    ch = Chain([Affine(5, 7), Affine(7, 3), Affine(3, 2)], Squared(), x0=lambda d: d[0],
               regularizer=reg)
    data = make_data()
    w = 0.6 * RNG.normal(size=ch.layout.size)
    tt = 0.5
    out, _ = ProxPropOracle(ch, tt)(w, (), data)
    X, lams = _gradient_costates(Chain(ch.stages, ch.h, ch._x0), w, data)
    for t, st in enumerate(ch.stages):
        wt = ch.layout.segment(w, t)
        z = X[t + 1] - lams[t + 1]
        v = least_squares(lambda v: np.concatenate([np.ravel(st.forward(v, X[t]) - z),
                                                    np.sqrt(0.2) * v, (v - wt) / np.sqrt(tt)]),
                          wt, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15).x
        assert mc.relative_error(ch.layout.segment(out.info["g"], t), wt - v) <= 1e-8, t


class SplitTanhDense(TanhDense):
    """``tanh(x W^T + b)`` exposing its pre-activation map (Frerix et al.'s split)."""

    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out)
        self.affine_part = DenseWithClosedForm(n_in, n_out)

    def vjp_activation(self, w, x, lam):
        a = self.forward(w, x)
        return lam * (1.0 - a * a)


def _check_split_proxprop(ch, w, data, tau, tt):
    """Every layer's ProxProp update vs scipy on Eq. (43), the prox on the pre-activation
    map with the targets ``z = A(w, x) - tau sigma'(A) lam`` (the whole stage where it has
    no split); returns the oracle's output."""
    out, _ = ProxPropOracle(ch, tt, tau=tau)(w, (), data)
    X, lams = _gradient_costates(ch, w, data)
    for t, st in enumerate(ch.stages):
        wt = ch.layout.segment(w, t)
        if hasattr(st, "affine_part"):
            A, lam = st.affine_part, st.vjp_activation(wt, X[t], tau * lams[t + 1])
        else:
            A, lam = st, tau * lams[t + 1]
        z = A.forward(wt, X[t]) - lam
        v = least_squares(lambda v: np.concatenate([np.ravel(A.forward(v, X[t]) - z),
                                                    (v - wt) / np.sqrt(tt)]),
                          wt, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15).x
        # (wt - v loses digits to cancellation: the reference is good to ~1e-8)
        assert mc.relative_error(ch.layout.segment(out.info["g"], t), wt - v) <= 1e-6, t
    return out


def test_proxprop_on_the_linear_part_of_activated_layers():
    # Frerix et al.: z_pre = pre - tau sigma'(pre) lam, then the dense closed form on the
    # pre-activation, vs scipy on argmin 1/2 |A(v) - z_pre|^2 + |v - w|^2 / (2 tau_theta)
    ch = Chain([SplitTanhDense(5, 7), SplitTanhDense(7, 3), Affine(3, 2)], Squared(),
               x0=lambda data: data[0])
    data = make_data()
    w = 0.6 * RNG.normal(size=ch.layout.size)
    tau, tt = 0.8, 0.3
    out = _check_split_proxprop(ch, w, data, tau, tt)
    with pytest.raises(ValueError, match="split=True needs every stage"):
        ProxPropOracle(ch, tt, split=True)
    whole = ProxPropOracle(ch, tt, tau=tau, split=False)(w, (), data)[0]
    assert mc.relative_error(whole.direction, out.direction) > 1e-6   # a different update


def test_proxprop_on_nn_dense_layers_is_frerix_et_al():
    # moreauctl.nn's Dense exposes its affine part, its pre-activation costate and the dense
    # closed form: the weight update of every layer vs scipy on Eq. (43) with pre-activation
    # targets z = A(w, x) - tau sigma'(A) lam
    from moreauctl import nn
    ch = Chain([nn.Dense(5, 7, "relu"), nn.Dense(7, 3, "tanh"), nn.Dense(3, 2)], Squared(),
               x0=lambda data: data[0])
    data = make_data(m=6)
    w = 0.6 * RNG.normal(size=ch.layout.size)
    _check_split_proxprop(ch, w, data, 0.9, 0.4)
