"""The Chain protocol on a heterogeneous chain built by hand (issue 9's acceptance).

Three plain-numpy dense stages 5 -> 7 -> 3 -> 2 with tanh, a mini-batch of 4 samples as the
state, and a squared loss on targets passed through the data argument. References: central
finite differences (gradient), scipy's solve of every subproblem's defining argmin (Moreau),
closed forms (the layout).
"""
import numpy as np
import pytest
from scipy.optimize import minimize as scipy_minimize

import moreauctl as mc
from moreauctl.chain import Chain, Layout, Objective, Stage
from moreauctl.oracles import GradientOracle, MoreauOracle
from moreauctl.optimizers import adam, sgd


class TanhDense(Stage):
    """``x_t = tanh(x_{t-1} W^T + b)`` on a batch ``x (m, n_in)``; ``w = (W (out, in), b)``."""

    def __init__(self, n_in, n_out):
        self.n_in, self.n_out = n_in, n_out
        self.param_shapes = ((n_out, n_in), (n_out,))

    def _Wb(self, w):
        k = self.n_out * self.n_in
        return w[:k].reshape(self.n_out, self.n_in), w[k:]

    def forward(self, w, x):
        W, b = self._Wb(w)
        return np.tanh(x @ W.T + b)

    def vjp(self, w, x, lam):
        W, b = self._Wb(w)
        a = np.tanh(x @ W.T + b)
        dz = lam * (1.0 - a * a)
        return np.concatenate([(dz.T @ x).ravel(), dz.sum(axis=0)]), dz @ W

class Affine(TanhDense):
    """``x W^T + b``: affine in ``w`` (the Moreau weight line has a closed form)."""

    affine_w = True

    def forward(self, w, x):
        W, b = self._Wb(w)
        return x @ W.T + b

    def vjp(self, w, x, lam):
        W, b = self._Wb(w)
        return np.concatenate([(lam.T @ x).ravel(), lam.sum(axis=0)]), lam @ W


class Squared(Objective):
    """``h(x; (inputs, Y)) = 0.5 mean_i |x_i - Y_i|^2``."""

    def value(self, x, data):
        return 0.5 * float(np.sum((x - data[1]) ** 2)) / x.shape[0]

    def grad(self, x, data):
        return (x - data[1]) / x.shape[0]


RNG = np.random.default_rng(5)
SIZES = [5, 7, 3, 2]


def make_chain():
    return Chain([TanhDense(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])], Squared(),
                 x0=lambda data: data[0])


def make_data(m=4, seed=0):
    r = np.random.default_rng(seed)
    return r.normal(size=(m, 5)), 0.8 * np.tanh(r.normal(size=(m, 2)))


def test_layout_pack_unpack_roundtrip_and_errors():
    ch = make_chain()
    lay = ch.layout
    assert lay.size == 7 * 5 + 7 + 3 * 7 + 3 + 2 * 3 + 2
    assert list(lay.offsets) == [0, 42, 66, 74]
    params = [(RNG.normal(size=(b, a)), RNG.normal(size=b)) for a, b in zip(SIZES[:-1], SIZES[1:])]
    w = lay.pack(params)
    back = lay.unpack(w)
    for (W, b), (W2, b2) in zip(params, back):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert np.shares_memory(back[1][0], w)  # views, not copies
    with pytest.raises(ValueError, match=r"w\[1\]\[0\] has shape \(3, 5\); expected \(3, 7\)"):
        lay.pack([params[0], (np.zeros((3, 5)), np.zeros(3)), params[2]])
    with pytest.raises(ValueError, match="has 2 stages; expected T = 3"):
        lay.pack(params[:2])
    bad = [p for p in params]
    bad[2] = (np.full((2, 3), np.nan), bad[2][1])
    with pytest.raises(ValueError, match="finite"):
        lay.pack(bad)
    # a homogeneous control layout is a free (T, nw) view
    u = Layout.homogeneous(6, 2)
    z = np.arange(12.0)
    assert u.unpack(z).shape == (6, 2) and np.shares_memory(u.unpack(z), z)
    np.testing.assert_array_equal(u.pack(z.reshape(6, 2)), z)
    with pytest.raises(ValueError, match=r"expected \(T, nw\) = \(6, 2\)"):
        u.pack(np.zeros((6, 3)))


def test_gradient_oracle_matches_finite_differences():
    ch = make_chain()
    data = make_data()
    w = 0.7 * RNG.normal(size=ch.layout.size)
    o = GradientOracle(ch)
    out, _ = o(w, o.init(w), data)
    assert out.cost == pytest.approx(ch.objective(w, data), rel=1e-15)
    assert [x.shape for x in out.states] == [(4, 5), (4, 7), (4, 3), (4, 2)]
    eps = 1e-6
    fd = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        fd[i] = (ch.objective(w + e, data) - ch.objective(w - e, data)) / (2 * eps)
    assert mc.relative_error(out.direction, fd) <= 1e-8


def _argmin(F, grad, n):
    """scipy's BFGS solve of a strongly convex subproblem, tight tolerance."""
    r = scipy_minimize(F, np.zeros(n), jac=grad, method="BFGS",
                       options={"gtol": 1e-12, "maxiter": 10000})
    return r.x


def test_moreau_oracle_solves_every_subproblem():
    # inner "gd" run to convergence; each line's output is checked against scipy's argmin of
    # its defining subproblem, with the costates the pass itself produced.
    ch = make_chain()
    data = make_data()
    w = 0.7 * RNG.normal(size=ch.layout.size)
    alpha, gamma = 0.8, 0.6
    o = MoreauOracle(ch, alpha=alpha, gamma=gamma, inner="gd", inner_iters=2000,
                     inner_tol=1e-11, diagnostics=True)
    out, _ = o(w, o.init(w), data)
    assert out.failed_stage is None
    lams = out.info["costates"]
    X = out.states
    g = out.info["g"]
    np.testing.assert_allclose(alpha * out.direction, g, rtol=1e-15)
    # objective line: lam_T = -argmin_y gam_h h(x_T + y) + |y|^2/2
    xT = X[-1]
    y = _argmin(lambda y: o.gam_h * ch.h.value(xT + y.reshape(xT.shape), data) + 0.5 * y @ y,
                lambda y: o.gam_h * ch.h.grad(xT + y.reshape(xT.shape), data).ravel() + y,
                xT.size)
    assert mc.relative_error(lams[-1], -y.reshape(xT.shape)) <= 1e-6
    for t, st in enumerate(ch.stages):
        wt, x, lam = ch.layout.segment(w, t), X[t], lams[t + 1]
        c = o.gam[t]
        y = _argmin(
            lambda y: c * float(np.vdot(lam, st.forward(wt, x + y.reshape(x.shape)))) + 0.5 * y @ y,
            lambda y: c * st.vjp_x(wt, x + y.reshape(x.shape), lam).ravel() + y, x.size)
        assert mc.relative_error(lams[t], -y.reshape(x.shape)) <= 1e-6, t
        a = o.alp[t]
        v = _argmin(lambda v: a * float(np.vdot(lam, st.forward(wt + v, x))) + 0.5 * v @ v,
                    lambda v: a * st.vjp_w(wt + v, x, lam) + v, wt.size)
        assert mc.relative_error(ch.layout.segment(g, t), -v) <= 1e-6, t
    # the residuals the pass reports are those of converged solves
    assert np.nanmax(out.info["residuals"]) <= 1e-9


def test_minimize_with_adam_fits_the_batch():
    ch = make_chain()
    data = make_data()
    w0 = ch.layout.pack([(0.5 * RNG.normal(size=(b, a)), np.zeros(b))
                         for a, b in zip(SIZES[:-1], SIZES[1:])])
    c0 = ch.objective(w0, data)
    # full batch: the data argument of every call is the same mini-batch
    res = mc.minimize(ch, GradientOracle(ch), adam(0.05), w0, batches=lambda epoch: [data],
                      epochs=300, eval_data=data, verbose=False)
    assert res.success and res.nit == 300
    assert res.costs.shape == (301,) and res.costs[0] == pytest.approx(c0)
    assert res.costs[-1] < 1e-3 * c0  # 4 samples, 98 weights: Adam fits them
    assert res.fun == pytest.approx(ch.objective(ch.layout.pack(res.w), data), rel=1e-12)
    assert [W.shape for W, b in res.w] == [(7, 5), (3, 7), (2, 3)]
    np.testing.assert_array_equal(res.history.epoch_ends, np.arange(301))
    # the Moreau oracle's directions through the same loop also decrease the loss
    rm = mc.minimize(ch, MoreauOracle(ch, alpha=1.0, gamma=0.9), adam(0.05), w0,
                     batches=lambda epoch: [data], epochs=100, eval_data=data, verbose=False)
    assert rm.success and rm.costs[-1] < 0.1 * c0


def test_minimize_epochs_of_shuffled_minibatches():
    ch = make_chain()
    inputs, targets = make_data(m=12, seed=1)
    full = (inputs, targets)

    def batches(epoch):
        perm = np.random.default_rng(epoch).permutation(12)
        return [(inputs[perm[i:i + 4]], targets[perm[i:i + 4]]) for i in range(0, 12, 4)]

    w0 = 0.3 * RNG.normal(size=ch.layout.size)
    seen = []
    res = mc.minimize(ch, GradientOracle(ch), sgd(0.5), w0, batches=batches, epochs=5,
                      eval_data=full, callback=lambda info: seen.append(info.epoch),
                      verbose=False)
    assert res.nit == 15 and len(res.history.costs) == 15  # one batch loss per update
    np.testing.assert_array_equal(res.history.epoch_ends, [0, 3, 6, 9, 12, 15])
    assert seen == [e for e in range(5) for _ in range(3)]
    assert res.costs.shape == (6,) and res.costs[-1] < res.costs[0]
    # a by-hand replay of the same updates gives the same parameters
    w = w0.copy()
    for e in range(5):
        for b in batches(e):
            w = w - 0.5 * ch.value_and_gradient(w, b)[2]
    np.testing.assert_allclose(ch.layout.pack(res.w), w, rtol=1e-13)


def test_minimize_reports_divergence_and_bad_input():
    data = make_data()
    # affine stages are unbounded, so a huge step blows the loss up
    lin = Chain([Affine(5, 4), Affine(4, 2)], Squared(), x0=lambda d: d[0])
    w0 = RNG.normal(size=lin.layout.size)
    res = mc.minimize(lin, GradientOracle(lin), sgd(10.0), w0, batches=lambda e: [data],
                      epochs=20, eval_data=data, verbose=False)
    assert not res.success and res.status in (-1, -2) and "diverged" in res.message
    assert len(res.costs) < 21 and np.isfinite(res.fun)  # history kept, last finite iterate
    ch = make_chain()
    w0 = RNG.normal(size=ch.layout.size)
    with pytest.raises(ValueError, match="w0 has shape"):
        mc.minimize(ch, GradientOracle(ch), sgd(0.1), np.zeros(5), iters=1)
    # iteration mode on fixed data: full-batch GD
    r = mc.minimize(ch, GradientOracle(ch), sgd(0.5), w0, iters=4, data=data, verbose=False)
    w = w0.copy()
    for _ in range(4):
        w = w - 0.5 * ch.value_and_gradient(w, data)[2]
    np.testing.assert_allclose(ch.layout.pack(r.w), w, rtol=1e-14)
    assert r.costs[-1] == pytest.approx(ch.objective(w, data), rel=1e-14)
    with pytest.raises(ValueError, match="give iters .* not both"):
        mc.minimize(ch, GradientOracle(ch), sgd(0.1), w0, iters=3, batches=lambda e: [data],
                    epochs=1)
    with pytest.raises(ValueError, match="needs epochs"):
        mc.minimize(ch, GradientOracle(ch), sgd(0.1), w0, batches=lambda e: [data])


def test_l2_regularizer_in_gradient_and_weight_subproblems():
    # D.6: J(w) = h(f(w)) + sum_t mu/2 |w_t|^2; the weight line of Algo 2 solves
    # argmin_v alp_t (lam^T phi(v, x) + r_t(v)) + |v - w_t|^2/2. References: finite
    # differences; scipy's argmin for the tanh stages (inner solver) and for the affine last
    # stage (closed form u = prox(w - alp B^T lam) / (1 + alp mu)).
    from moreauctl.chain import L2
    mu = 0.3
    stages = [TanhDense(5, 7), TanhDense(7, 3), Affine(3, 2)]
    ch = Chain(stages, Squared(), x0=lambda d: d[0], regularizer=L2(mu))
    data = make_data()
    w = 0.7 * RNG.normal(size=ch.layout.size)
    plain = Chain(stages, Squared(), x0=lambda d: d[0])
    assert ch.objective(w, data) == pytest.approx(plain.objective(w, data) + 0.5 * mu * w @ w,
                                                  rel=1e-14)
    G = ch.value_and_gradient(w, data)[2]
    eps = 1e-6
    fd = np.array([(ch.objective(w + eps * e, data) - ch.objective(w - eps * e, data)) / (2 * eps)
                   for e in np.eye(w.size)])
    assert mc.relative_error(G, fd) <= 1e-8
    o = MoreauOracle(ch, alpha=0.9, gamma=0.7, inner="gd", inner_iters=2000, inner_tol=1e-11,
                     diagnostics=True)
    out, _ = o(w, o.init(w), data)
    lams, X, g = out.info["costates"], out.states, out.info["g"]
    for t, st in enumerate(stages):
        # Algo 2's weight line alpha_t (lam_t^T phi + r_t) in the rescaled costates
        # lamhat_t = gamma_t lam_t, alp_t = alpha_t / gamma_t: alp_t (lamhat^T phi + gamma_t r_t)
        # with gamma_t = 0.7^(T-t+1) for the paper's stage t (row t here: 0.7^(3-t))
        wt, x, lam, a = ch.layout.segment(w, t), X[t], lams[t + 1], o.alp[t]
        m = mu * 0.7 ** (3 - t)
        v = _argmin(lambda v: a * (float(np.vdot(lam, st.forward(wt + v, x)))
                                   + 0.5 * m * (wt + v) @ (wt + v)) + 0.5 * v @ v,
                    lambda v: a * (st.vjp_w(wt + v, x, lam) + m * (wt + v)) + v, wt.size)
        assert mc.relative_error(ch.layout.segment(g, t), -v) <= 1e-6, t
    # the regularized Moreau pass tends to the regularized gradient for small steps:
    # constant schedule, alpha = gamma = s: direction = g / alpha ~ s grad J, error O(s)
    errs = []
    for s in (1e-3, 5e-4):
        d, _ = MoreauOracle(ch, alpha=s, gamma=s, schedule="constant")(w, (), data)
        errs.append(mc.relative_error(d.direction / s, G))
    assert errs[0] < 1e-2 and 1.6 < errs[0] / errs[1] < 2.4


def test_compiled_chain_accepts_unpickled_float64():
    # an array that crossed a process boundary has an equal but distinct dtype object
    import pickle
    p = mc.models.pendulum_swingup(horizon=5)
    w = pickle.loads(pickle.dumps(0.1 * np.ones(5)))
    assert w.dtype is not np.dtype(np.float64)
    assert p.chain.objective(w) == pytest.approx(mc.objective(p, 0.1 * np.ones((5, 1))))
