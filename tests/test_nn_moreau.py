"""Moreau back-propagation on network layers (issue 10, item 3): the generic Chain.backward
with the rules of moreauctl.rules over nn stages.

References: scipy's BFGS solve of every subproblem's defining argmin (objective, state and
weight lines, with weight decay as in D.6), the closed form of an all-affine network with
the squared loss, a brute-force 1-D minimization for the ReLU layer's exact step, and the
small-step limit (the Moreau direction tends to the gradient).
"""
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import datasets, nn
from moreauctl.optimizers import piecewise_constant
from moreauctl.oracles import MoreauOracle
from tests import naive


@pytest.fixture(scope="module")
def digits():
    return datasets.digits(test_size=0.25, seed=0)


def _small_problems():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3, 16))
    y = np.array([0, 2, 1])
    mlp = nn.mlp([16, 5, 4, 3], activation="tanh")
    conv = nn.Sequential([nn.Conv2d(1, 2, 3, padding=1, activation="sigmoid"), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Dense(8, 3, "tanh"), nn.Dense(3, 3)], (1, 4, 4))
    return {
        "mlp-ce": nn.Classification(mlp, X, y, loss="cross_entropy", weight_decay=0.05),
        "mlp-sq": nn.Classification(mlp, X, y, loss="squared"),
        "conv-ce": nn.Classification(conv, X, y, loss="cross_entropy", weight_decay=0.02,
                                     decay_biases=False),
    }


@pytest.mark.parametrize("name", ["mlp-ce", "mlp-sq", "conv-ce"])
def test_every_subproblem_matches_scipy(name):
    prob = _small_problems()[name]
    ch, data = prob.chain, prob.data
    ch.input_costate = True     # check the first state line too (networks skip it)
    rng = np.random.default_rng(1)
    w = ch.check_params(prob.init_params()) + 0.2 * rng.normal(size=ch.layout.size)
    o = MoreauOracle(ch, alpha=0.7, gamma=0.6, inner="gd", inner_iters=5000, inner_tol=1e-8,
                     diagnostics=True)
    out, _ = o(w, o.init(w), data)
    assert out.failed_stage is None
    errs = naive.moreau_line_errors(ch, w, data, out, o.gam_h, o.gam, o.alp, o.spec.reg_scale)
    assert len(errs) == 1 + len(ch.stages) + sum(bool(s.param_shapes) for s in ch.stages)
    assert max(e[-1] for e in errs) <= 1e-6, errs
    assert np.nanmax(out.info["residuals"]) <= 1e-8


def test_all_affine_network_closed_form():
    # identity layers and the squared loss: every line of Algo 2 is a closed form.
    #   lam_T     = (c/m)/(1 + c/m) (x_T - Y),                      c = gam_h = gamma
    #   lam_{t-1} = gamma lam_t W_t                                 (affine in x)
    #   g_t       = w_t - (w_t - alp B_t^T lam_t) / (1 + alp gamma_t mu)   (affine in w, D.6)
    # with alp = alpha (eq52), gamma_t = gamma^(T-t+1) for stage t = 1..T.
    rng = np.random.default_rng(2)
    m, sizes = 5, [6, 4, 3, 3]
    X = rng.normal(size=(m, 6))
    y = rng.integers(0, 3, size=m)
    net = nn.mlp(sizes, activation="identity")
    mu, alpha, gamma = 0.1, 0.3, 0.7
    prob = nn.Classification(net, X, y, loss="squared", weight_decay=mu)
    params = [(rng.normal(size=W.shape), rng.normal(size=b.shape)) for W, b in net.init(0)]
    g = mc.moreau_direction(prob, params, alpha=alpha, gamma=gamma)
    T = len(params)
    xs = [X]
    for W, b in params:
        xs.append(xs[-1] @ W.T + b)
    Y = np.eye(3)[y]
    q = gamma / m
    lam = q / (1 + q) * (xs[-1] - Y)
    for t in range(T - 1, -1, -1):
        W, b = params[t]
        gamma_t = gamma ** (T - t)
        BtW, Btb = lam.T @ xs[t], lam.sum(axis=0)
        for got, p, Bt in ((g[t][0], W, BtW), (g[t][1], b, Btb)):
            ref = p - (p - alpha * Bt) / (1 + alpha * gamma_t * mu)
            assert mc.relative_error(got, ref) <= 1e-10
        lam = gamma * lam @ W
    # "Moreau with a linear stage is the gradient": without decay and with gamma = 1 the
    # direction is alpha times the gradient up to the objective line's factor 1/(1 + c/m)
    p2 = nn.Classification(net, X, y, loss="squared")
    g2 = mc.moreau_direction(p2, params, alpha=alpha, gamma=1.0)
    grad = mc.gradient(p2, params)
    ref = [tuple(alpha / (1 + 1.0 / m) * a for a in p) for p in grad]
    assert mc.relative_error(g2, ref) <= 1e-12


def test_relu_layer_exact_step_is_the_global_minimizer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400) * 2
    lam = rng.normal(size=400)
    c = 0.8
    got = nn.relu_moreau_grad(x, lam, c)
    grid = np.linspace(-12, 12, 240001)          # brute force, resolution 1e-4
    for xi, li, gi in zip(x, lam, got):
        F = c * li * np.maximum(xi + grid, 0) + 0.5 * grid ** 2
        k = np.argmin(F)
        Fy = c * li * max(xi - gi, 0) + 0.5 * gi ** 2
        assert Fy <= F[k] + 1e-12
        assert abs(-gi - grid[k]) <= 2e-4 or abs(Fy - F[k]) <= 1e-9   # ties: either piece
    # as a stage: the Moreau pass uses it (the residual of the state line is 0 where the
    # solution is not on the kink)
    layer = nn.ActivationLayer("relu")
    xs = rng.normal(size=(3, 4))
    ls = rng.normal(size=(3, 4))
    out = mc.rules.MBP.states(layer, np.empty(0), xs, ls, 0.5, mc.rules.Inner("paper"))
    np.testing.assert_array_equal(out, nn.relu_moreau_grad(xs, ls, 0.5))


def test_small_steps_give_the_gradient(digits):
    # for small steps every envelope gradient linearizes: stage t's direction (row t, the
    # paper's stage t+1) tends to alpha gamma^(T-t) dh/dw_t (geometric schedule, eq52)
    net = nn.mlp([64, 10, 10, 10], activation="tanh")
    prob = nn.Classification(net, digits.X_train[:64], digits.y_train[:64])
    w = prob.init_params()
    grad = mc.gradient(prob, w)
    T = len(grad)
    for eps in (1e-3, 1e-5):
        g = mc.moreau_direction(prob, w, alpha=eps, gamma=eps)    # the paper's inner algorithm
        scaled = [tuple(a / (eps * eps ** (T - t)) for a in p) for t, p in enumerate(g)]
        for t in range(T):
            assert mc.relative_error(scaled[t], grad[t]) <= 10 * eps, t


def test_moreau_training_on_networks(digits):
    net = nn.mlp([64, 32, 10], activation="relu")
    prob = nn.Classification(net, digits.X_train, digits.y_train, batch_size=32,
                             weight_decay=1e-6)
    # nobody uses the inputs' costate: the passes skip it (Chain input_costate=False)
    w = prob.chain.check_params(prob.init_params())
    b = next(iter(prob.batches(0)(0)))
    o = MoreauOracle(prob.chain, alpha=0.5, gamma=1.0)
    assert o(w, o.init(w), b)[0].info["lam0"] is None
    assert prob.chain.value_and_gradient(w, b)[3] is None
    res = mc.solve(prob, method="moreau-sgd", step=0.5, gamma=1.0, epochs=3, seed=0,
                   verbose=False)
    assert res.success and np.all(np.isfinite(res.costs)) and res.costs[-1] < 0.5 * res.costs[0]
    # a piecewise-constant learning rate (the SVGD paper's tables) on the Moreau direction
    sched = piecewise_constant([40, 80], [0.5, 0.1, 0.01])
    res2 = mc.solve(prob, method="moreau-momentum", step=sched, gamma=0.5, epochs=2, seed=0,
                    verbose=False)
    assert res2.success and res2.costs[-1] < res2.costs[0]
    # the ConvNet with Moreau-Adam, in float32
    cnet = nn.convnet((1, 8, 8), channels=(4, 6, 6), kernel_size=3)
    cp = nn.Classification(cnet, digits.X_train[:256], digits.y_train[:256], batch_size=32,
                           dtype="float32")
    r3 = mc.solve(cp, method="moreau-adam", step=1e-2, gamma=0.5, epochs=2, seed=0,
                  verbose=False)
    assert r3.success and r3.costs[-1] < r3.costs[0]


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid"])
def test_dense_weight_line_in_the_batch_subspace_equals_the_full_solve(act):
    # Dense.moreau_grad_w runs the inner algorithm on (U, y_b) with Y = (Q U)^T, x^T = Q R:
    # the same iterates as the full-space run (an isometry onto the span of the gradients)
    rng = np.random.default_rng(1)
    st = nn.Dense(40, 7, act)

    class Full(nn.Dense):
        moreau_grad_w = None      # the rule's generic solve over all n_out (n_in + 1) weights

    full = Full(40, 7, act)
    x, lam = rng.normal(size=(5, 40)), rng.normal(size=(5, 7))
    w = 0.3 * rng.normal(size=st.nw)
    y = st.forward(w, x)
    paper = mc.rules.Inner("paper")
    a = mc.rules.MBP.weights(st, w, x, lam, 0.7, paper, y)
    b = mc.rules.MBP.weights(full, w, x, lam, 0.7, paper, y)
    assert mc.relative_error(a, b) <= 1e-12
    gd = mc.rules.Inner("gd", 30, 0.0)      # 30 Armijo steps each: the same iterates
    a = mc.rules.MBP.weights(st, w, x, lam, 0.7, gd, y)
    b = mc.rules.MBP.weights(full, w, x, lam, 0.7, gd, y)
    assert mc.relative_error(a, b) <= 1e-10
    # not used where it would not pay (m >= n_in) or does not apply (a regularizer)
    assert st.moreau_grad_w(w, rng.normal(size=(40, 40)), rng.normal(size=(40, 7)), 0.7,
                            paper) is None
    reg = mc.chain.L2(0.1).at(0)
    assert st.moreau_grad_w(w, x, lam, 0.7, paper, y, reg) is None
