"""The SVGD oracle (Li & Shu, Alg. 1) under its documented convention (per-sample signals,
r updated before it is read, biases rescaled like W; see moreauctl/oracles/svgd.py).

References: a fixture computed by hand (one dense layer, two samples, two batches) and a
per-sample loop twin of Alg. 1 on a two-layer ReLU network.
"""
import numpy as np
import pytest
from scipy.special import softmax

import moreauctl as mc
from moreauctl import datasets, nn
from moreauctl.oracles import SVGDOracle


def test_hand_fixture_one_dense_layer():
    # x = [[1], [2]] (m = 2), labels [0, 1], W = [[0.5], [-0.5]], b = 0, squared loss:
    #   z = x W^T = [[0.5, -0.5], [1, -1]],   z - onehot = [[-0.5, -0.5], [1, -2]]
    #   per-sample signals grad_z J^(tau) = z - onehot (the batch mean's costate is half)
    #   mean of squares per output unit: [(0.25 + 1)/2, (0.25 + 4)/2] = [0.625, 2.125]
    #   r_1 = (1 - 0.9) [0.625, 2.125] = [0.0625, 0.2125];  r_1 + eps = [0.1, 0.25]
    #   signal s lam_z / sqrt(r + eps) with lam_z = [[-0.25, -0.25], [0.5, -1]], s = 1:
    #     [[-0.25/sqrt(0.1), -0.5], [0.5/sqrt(0.1), -2]]
    #   dW = signal^T x = [[0.75/sqrt(0.1)], [-4.5]],  db = [0.25/sqrt(0.1), -2.5]
    # second call on the same batch: r_2 = 0.9 r_1 + 0.1 [0.625, 2.125] = [0.11875, 0.40375]
    #   r_2 + eps = [0.15625, 0.44125]: the signal's columns scale by 1/sqrt of those
    net = nn.Sequential([nn.Dense(1, 2)], 1)
    X, y = np.array([[1.0], [2.0]]), np.array([0, 1])
    prob = nn.Classification(net, X, y, loss="squared", batch_size=None)
    o = SVGDOracle(prob.chain, s=1.0, rho=0.9, eps=0.0375)
    w = prob.chain.check_params([(np.array([[0.5], [-0.5]]), np.zeros(2))])
    st = o.init(w)
    out, st = o(w, st, prob.data)
    r10 = np.sqrt(0.1)
    np.testing.assert_allclose(out.direction, [0.75 / r10, -4.5, 0.25 / r10, -2.5], rtol=1e-14)
    np.testing.assert_allclose(st.r[0], [0.0625, 0.2125], rtol=1e-14)
    assert st.count == 1
    out, st = o(w, st, prob.data)
    a, b = np.sqrt(0.15625), np.sqrt(0.44125)
    np.testing.assert_allclose(
        out.direction, [(-0.25 * 1 + 0.5 * 2) / a, (-0.25 * 1 - 1.0 * 2) / b,
                        (-0.25 + 0.5) / a, (-0.25 - 1.0) / b], rtol=1e-14)
    np.testing.assert_allclose(st.r[0], [0.11875, 0.40375], rtol=1e-14)
    assert out.cost == pytest.approx(0.5 * (0.25 + 0.25 + 1 + 4) / 2, rel=1e-15)


def _alg1_twin(params, batches, s, rho, eps):
    """Alg. 1 on x -> relu(x W1^T + b1) -> W2^T + b2 -> softmax cross-entropy, one sample at
    a time: per-sample gradients of the per-sample loss J^(tau), r per output unit,
    virtual gradients of W and b, plain costates between the layers."""
    (W1, b1), (W2, b2) = params
    r1, r2 = np.zeros(b1.shape), np.zeros(b2.shape)
    outs = []
    for X, y in batches:
        m = X.shape[0]
        g1s, g2s, a1s = [], [], []
        for tau in range(m):
            x = X[tau]
            z1 = W1 @ x + b1
            a1 = np.maximum(z1, 0)
            z2 = W2 @ a1 + b2
            g2 = softmax(z2)
            g2[y[tau]] -= 1.0                   # grad_{z2} J^(tau)
            g1 = (W2.T @ g2) * (z1 > 0)         # plain costate through the states
            g1s.append(g1), g2s.append(g2), a1s.append(a1)
        r1 = rho * r1 + (1 - rho) * np.mean(np.square(g1s), axis=0)
        r2 = rho * r2 + (1 - rho) * np.mean(np.square(g2s), axis=0)
        dW1, db1, dW2, db2 = 0, 0, 0, 0
        for tau in range(m):
            v1 = s * g1s[tau] / np.sqrt(r1 + eps)
            v2 = s * g2s[tau] / np.sqrt(r2 + eps)
            dW1 = dW1 + np.outer(v1, X[tau]) / m
            db1 = db1 + v1 / m
            dW2 = dW2 + np.outer(v2, a1s[tau]) / m
            db2 = db2 + v2 / m
        outs.append(np.concatenate([np.ravel(dW1), db1, np.ravel(dW2), db2]))
    return outs


def test_matches_per_sample_twin_of_alg1():
    d = datasets.digits(test_size=0.5, seed=1)
    net = nn.mlp([64, 9, 10], activation="relu")
    prob = nn.Classification(net, d.X_train, d.y_train, batch_size=7)
    rng = np.random.default_rng(0)
    params = [(W, b + 0.1 * rng.normal(size=b.shape)) for W, b in net.init(seed=4)]
    batches = list(prob.batches(0)(0))[:3]
    twin = _alg1_twin(params, batches, s=0.3, rho=0.8, eps=1e-3)
    o = SVGDOracle(prob.chain, s=0.3, rho=0.8, eps=1e-3)
    w = prob.chain.check_params(params)
    st = o.init(w)
    for b, ref in zip(batches, twin):
        out, st = o(w, st, b)
        assert mc.relative_error(out.direction, ref) <= 1e-12


def test_methods_conv_weight_decay_and_options():
    for name in ("svgd", "svgd-sgd", "svgd-momentum", "svgd-adam"):
        assert name in mc.METHODS
    d = datasets.digits(test_size=0.5, seed=0)
    net = nn.convnet((1, 8, 8), channels=(3, 4, 4), kernel_size=3)
    prob = nn.Classification(net, d.X_train[:200], d.y_train[:200], batch_size=20,
                             weight_decay=1e-3)
    o = SVGDOracle(prob.chain)
    w = prob.chain.check_params(prob.init_params())
    out, st = o(w, o.init(w), next(iter(prob.batches(0)(0))))
    # r per output unit: (C_out, H_out, W_out) for convolutions, (out,) for the dense layer
    shapes = [None if r is None else r.shape for r in st.r]
    assert shapes == [(3, 8, 8), None, (4, 4, 4), None, (4, 2, 2), None, None, (10,)]
    # s = 0: only the weight-decay gradient is left
    o0 = SVGDOracle(prob.chain, s=0.0)
    out0, _ = o0(w, o0.init(w), next(iter(prob.batches(0)(0))))
    reg = np.concatenate([prob.chain.regularizer.grad(prob.chain.layout.segment(w, t), t)
                          for t in range(prob.chain.horizon)])
    np.testing.assert_allclose(out0.direction, reg, rtol=0, atol=0)
    res = mc.solve(prob, method="svgd", step=0.1, epochs=2, seed=0, verbose=False,
                   oracle_options={"s": 0.1, "rho": 0.9, "eps": 1e-6})
    assert res.success and res.costs[-1] < res.costs[0]
    with pytest.raises(ValueError, match="rho must be in"):
        mc.solve(prob, method="svgd", step=0.1, epochs=1, oracle_options={"rho": 1.5})
    with pytest.raises(TypeError, match="unexpected keyword"):
        mc.solve(prob, method="svgd", step=0.1, epochs=1, oracle_options={"rhoo": 0.5})
