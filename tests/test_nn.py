"""Networks as chains (issue 10, items 1-2): objective and gradient of MLPs and the ConvNet.

References: the plain-numpy twin ``tests/naive.py::network_value_and_grad`` (explicit loops
over output pixels, derivatives from the pre-activations), central finite differences
(Fischer's relative error ``|a - b| / max(|a|, |b|)``, seed 003), and PyTorch autograd in
float64 where torch is installed.
"""
import pickle

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import datasets, nn
from tests import naive


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """One BLAS thread: on a shared 2-core machine OpenBLAS's second thread slows the skinny
    products of convolutions down by an order of magnitude."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def digits():
    return datasets.digits(test_size=0.25, seed=0)


def _flat(params):
    return np.concatenate([np.ravel(a) for p in params for a in p])


def _nets():
    return {
        "mlp-relu": nn.mlp([64, 32, 16, 10], activation="relu"),
        "mlp-tanh": nn.mlp([64, 20, 10], activation="tanh"),
        "mlp-sigmoid": nn.mlp([64, 12, 10], activation="sigmoid"),
        "convnet": nn.convnet((1, 8, 8), n_classes=10, channels=(4, 5, 6), kernel_size=3),
        "conv-mixed": nn.Sequential(
            [nn.Conv2d(1, 3, 3, stride=2, padding=1, activation="tanh"),
             nn.Conv2d(3, 4, (3, 2), stride=(1, 2), activation="identity"),
             nn.ActivationLayer("relu"), nn.AvgPool2d(2, stride=1), nn.Flatten(),
             nn.Dense(4, 10, "sigmoid")], (1, 8, 8)),
    }


NETS = _nets()


def _random_params(net, seed, scale=1.0):
    """He weights and small random biases (so no bias sits at exactly 0)."""
    rng = np.random.default_rng(seed + 100)
    return [tuple(a * scale + (0.1 * rng.normal(size=a.shape) if a.ndim == 1 else 0.0)
                  for a in p) for p in net.init(seed=seed)]


# ---------------------------------------------------------------------------------------
# contract
# ---------------------------------------------------------------------------------------

def test_contract_shapes_and_structure(digits):
    net = nn.mlp([64, 32, 10], activation="relu")
    w0 = net.init(seed=0)
    assert [tuple(a.shape) for p in w0 for a in p] == [(32, 64), (32,), (10, 32), (10,)]
    prob = nn.Classification(net, digits.X_train, digits.y_train, loss="cross_entropy",
                             batch_size=32, weight_decay=0.0)
    g = mc.gradient(prob, w0)
    assert [tuple(a.shape) for p in g for a in p] == [(32, 64), (32,), (10, 32), (10,)]
    # cross-entropy at zero output weights: every class has probability 1/10 -> log(10)
    w = [w0[0], (np.zeros((10, 32)), np.zeros(10))]
    assert mc.objective(prob, w) == pytest.approx(np.log(10.0), rel=1e-15)
    # squared loss at zero outputs: 0.5 |onehot|^2 = 0.5 (closed form)
    sq = nn.Classification(net, digits.X_train, digits.y_train, loss="squared")
    assert mc.objective(sq, w) == pytest.approx(0.5, rel=1e-15)
    # He initialization: std sqrt(2/fan_in) for ReLU layers, sqrt(1/fan_in) after; biases 0
    big = nn.mlp([400, 300, 200], activation="relu").init(seed=1)
    assert np.std(big[0][0]) == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.std(big[1][0]) == pytest.approx(np.sqrt(1 / 300), rel=0.02)
    assert not np.any(big[0][1])
    # the same seed gives the same parameters
    np.testing.assert_array_equal(_flat(net.init(seed=3)), _flat(net.init(seed=3)))


def test_convnet_is_the_papers_architecture():
    net = nn.convnet((3, 32, 32), n_classes=10)
    # Sec. 4: Conv[16x32x32] -> Pool[16x16x16] -> Conv[20x16x16] -> Pool[20x8x8]
    #         -> Conv[20x8x8] -> Pool[20x4x4] -> FC
    assert net.shapes == ((3, 32, 32), (16, 32, 32), (16, 16, 16), (20, 16, 16), (20, 8, 8),
                          (20, 8, 8), (20, 4, 4), (320,), (10,))
    assert [type(s).__name__ for s in net.stages] == ["Conv2d", "MaxPool2d"] * 3 + ["Flatten", "Dense"]
    assert all(s.activation.name == "relu" for s in net.stages if isinstance(s, nn.Conv2d))


# ---------------------------------------------------------------------------------------
# objective and gradient vs the plain-numpy twin, finite differences, PyTorch
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
@pytest.mark.parametrize("m", [1, 32, None])
def test_gradient_matches_naive_twin(digits, name, loss, m):
    net = NETS[name]
    X, y = digits.X_train, digits.y_train
    if m is not None:
        X, y = X[:m], y[:m]
    elif name.startswith("conv"):
        X, y = X[:300], y[:300]     # the twin's pixel loops: keep the quick tier quick
    params = _random_params(net, 1)
    mu = 0.0 if loss == "cross_entropy" else 1e-3
    prob = nn.Classification(net, X, y, loss=loss, batch_size=32, weight_decay=mu)
    val, grads = naive.network_value_and_grad(net, params, X, y, loss, mu)
    assert mc.objective(prob, params) == pytest.approx(val, rel=1e-12)
    g = mc.gradient(prob, params)
    assert mc.relative_error(g, grads) <= 1e-10
    for (gw, gb), (rw, rb) in ((a, b) for a, b in zip(g, grads) if a):
        assert mc.relative_error(gw, rw) <= 1e-10 and mc.relative_error(gb, rb) <= 1e-10


@pytest.mark.parametrize("name", ["mlp-tanh", "mlp-relu", "conv-mixed", "convnet"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
def test_gradient_matches_central_differences(digits, name, loss):
    net = NETS[name]
    X, y = digits.X_train[:16], digits.y_train[:16]
    prob = nn.Classification(net, X, y, loss=loss, weight_decay=1e-2, decay_biases=False)
    params = _random_params(net, 2)
    # seed 003's check: relative error of the whole gradient <= 1e-6 (kinks of ReLU and
    # max pooling are not crossed at eps = 1e-6 for these seeds)
    assert mc.check_gradient(prob, params, eps=1e-6) <= 1e-6


def test_weight_decay_and_bias_mask(digits):
    net = nn.mlp([64, 8, 10], activation="tanh")
    X, y = digits.X_train[:50], digits.y_train[:50]
    p = _random_params(net, 4)
    base = nn.Classification(net, X, y)
    mu = 0.3
    for decay_biases in (True, False):
        prob = nn.Classification(net, X, y, weight_decay=mu, decay_biases=decay_biases)
        extra = 0.5 * mu * sum(float(np.sum(a ** 2)) for q in p
                               for a in (q if decay_biases else q[:1]))
        assert mc.objective(prob, p) == pytest.approx(mc.objective(base, p) + extra, rel=1e-14)
        g, g0 = mc.gradient(prob, p), mc.gradient(base, p)
        for (gw, gb), (hw, hb), (W, b) in zip(g, g0, p):
            np.testing.assert_allclose(gw, hw + mu * W, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(gb, hb + (mu * b if decay_biases else 0), rtol=1e-13,
                                       atol=1e-15)


def test_float32_option(digits):
    net = nn.mlp([64, 32, 10], activation="relu")
    p = _random_params(net, 5)
    p64 = nn.Classification(net, digits.X_train, digits.y_train)
    p32 = nn.Classification(net, digits.X_train, digits.y_train, dtype="float32")
    assert p32.data[0].dtype == np.float32 and p32.chain.layout.dtype == np.float32
    g32 = mc.gradient(p32, p)
    assert g32[0][0].dtype == np.float32
    assert mc.relative_error(g32, mc.gradient(p64, p)) <= 1e-5
    assert mc.objective(p32, p) == pytest.approx(mc.objective(p64, p), rel=1e-6)
    res = mc.solve(p32, method="adam", step=1e-3, epochs=2, seed=0, verbose=False)
    assert res.success and res.costs[-1] < res.costs[0]
    assert res.history.costs.dtype == np.float64





def _torch_value_and_grad(net, params, X, y, loss):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    tp = [tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in p)
          for p in params]
    x = torch.tensor(X, dtype=torch.float64).reshape((X.shape[0],) + net.input_shape)
    acts = {"identity": lambda z: z, "relu": F.relu, "tanh": torch.tanh,
            "sigmoid": torch.sigmoid}
    for st, p in zip(net.stages, tp):
        kind = type(st).__name__
        if kind == "Dense":
            x = acts[st.activation.name](F.linear(x, *p))
        elif kind == "Conv2d":
            x = acts[st.activation.name](F.conv2d(x, *p, stride=(st.sh, st.sw),
                                                  padding=(st.ph, st.pw)))
        elif kind == "MaxPool2d":
            x = F.max_pool2d(x, (st.kh, st.kw), (st.sh, st.sw))
        elif kind == "AvgPool2d":
            x = F.avg_pool2d(x, (st.kh, st.kw), (st.sh, st.sw))
        elif kind == "Flatten":
            x = torch.flatten(x, 1)
        else:
            x = acts[st.activation.name](x)
    yt = torch.tensor(y)
    if loss == "cross_entropy":
        J = F.cross_entropy(x, yt)
    else:
        J = 0.5 * ((x - F.one_hot(yt, x.shape[1]).double()) ** 2).sum() / x.shape[0]
    J.backward()
    return float(J.detach()), [tuple(a.grad.numpy() for a in p) for p in tp]


@pytest.mark.parametrize("name", sorted(NETS) + ["paper-convnet"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared"])
@pytest.mark.parametrize("m", [1, 32, None])
def test_gradient_matches_torch_autograd(digits, name, loss, m):
    pytest.importorskip("torch")
    net = NETS.get(name) or nn.convnet((1, 8, 8))
    X, y = (digits.X_train, digits.y_train) if m is None else (digits.X_train[:m], digits.y_train[:m])
    params = _random_params(net, 7)
    prob = nn.Classification(net, X, y, loss=loss)
    val, grads = _torch_value_and_grad(net, params, X, y, loss)
    assert mc.objective(prob, params) == pytest.approx(val, rel=1e-12)
    assert mc.relative_error(mc.gradient(prob, params), grads) <= 1e-12


# ---------------------------------------------------------------------------------------
# training: epochs, costs, reproducibility
# ---------------------------------------------------------------------------------------

def test_epochs_costs_and_batches(digits):
    net = nn.mlp([64, 16, 10], activation="relu")
    prob = nn.Classification(net, digits.X_train, digits.y_train, batch_size=100)
    seen = [np.sort(np.concatenate([b[1] for b in prob.batches(3)(e)])) for e in range(2)]
    np.testing.assert_array_equal(seen[0], np.sort(digits.y_train))   # every sample once
    sizes = [b[0].shape[0] for b in prob.batches(3)(0)]
    assert sizes == [100] * 13 + [47]
    first = [b[1] for b in prob.batches(3)(0)]
    again = [b[1] for b in prob.batches(3)(0)]
    other = [b[1] for b in prob.batches(3)(1)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))     # epoch replayable
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))  # reshuffled
    res = mc.solve(prob, method="sgd", step=0.1, epochs=3, seed=0, verbose=False)
    assert len(res.costs) == 4 and res.nit == 3 * 14
    assert res.costs[0] == pytest.approx(mc.objective(prob, prob.init_params()), rel=1e-15)
    assert res.costs[-1] == pytest.approx(mc.objective(prob, res.w), rel=1e-15)
    assert list(res.history.epoch_ends) == [0, 14, 28, 42] and len(res.history.costs) == 42
    again = mc.solve(prob, method="sgd", step=0.1, epochs=3, seed=0, verbose=False)
    np.testing.assert_array_equal(again.costs, res.costs)
    # full batches: SGD is GD (one update per epoch, on the whole training set)
    full = nn.Classification(net, digits.X_train, digits.y_train, batch_size=None)
    r1 = mc.solve(full, method="sgd", step=0.5, epochs=4, seed=0, verbose=False)
    r2 = mc.solve(full, method="gd", step=0.5, epochs=4, seed=1, verbose=False)
    np.testing.assert_array_equal(r1.costs, r2.costs)
    np.testing.assert_array_equal(r1.history.costs, r1.costs[:-1])
    assert 0.0 <= nn.accuracy(net, res.w, digits.X_test, digits.y_test) <= 1.0


def test_objective_on_many_samples_is_chunked_but_equal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 6))
    y = rng.integers(0, 3, size=5000)
    net = nn.mlp([6, 5, 3], activation="tanh")
    prob = nn.Classification(net, X, y, weight_decay=1e-3)
    p = _random_params(net, 0)
    val, _ = naive.network_value_and_grad(net, p, X, y, "cross_entropy", 1e-3)
    assert mc.objective(prob, p) == pytest.approx(val, rel=1e-13)


def test_problem_pickles(digits):
    prob = nn.Classification(nn.convnet((1, 8, 8), channels=(2, 2, 2)), digits.X_train[:40],
                             digits.y_train[:40], weight_decay=1e-4, decay_biases=False)
    back = pickle.loads(pickle.dumps(prob))
    p = prob.init_params()
    assert mc.objective(back, p) == mc.objective(prob, p)
    relu = pickle.loads(pickle.dumps(nn.ActivationLayer("relu")))
    assert hasattr(relu, "moreau_grad_x")


# ---------------------------------------------------------------------------------------
# bad input: a clear error before any compute
# ---------------------------------------------------------------------------------------

def test_bad_input_messages(digits):
    net = nn.mlp([64, 8, 10])
    X, y = digits.X_train[:20], digits.y_train[:20]
    with pytest.raises(ValueError, match=r"labels in \[\d, 12\].*labels must be in \[0, 9\]"):
        nn.Classification(net, X, np.where(y == 0, 12, y))
    with pytest.raises(ValueError, match=r"labels in \[-1, "):
        nn.Classification(net, X, np.where(y == 0, -1, y))
    with pytest.raises(ValueError, match="has 63 features per sample; the network's first layer expects 64"):
        nn.Classification(net, X[:, :63], y)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"finite entries; found 1 NaN/inf \(first at sample 3\)"):
        nn.Classification(net, bad, y)
    with pytest.raises(ValueError, match=r"y has shape \(19,\); expected \(20,\)"):
        nn.Classification(net, X, y[:19])
    with pytest.raises(ValueError, match="integer class labels"):
        nn.Classification(net, X, y + 0.5)
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'; choose one of"):
        nn.mlp([64, 8, 10], activation="rleu")
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; choose one of"):
        nn.Classification(net, X, y, loss="hinge")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        nn.Classification(net, X, y, batch_size=0)
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        nn.Classification(net, X, y, weight_decay=-1.0)
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        nn.Classification(net, X, y, dtype="float16")
    with pytest.raises(ValueError, match=r"layer 1 \(Dense\(7, 10"):
        nn.Sequential([nn.Dense(64, 8), nn.Dense(7, 10)], 64)
    prob = nn.Classification(net, X, y)
    with pytest.raises(ValueError, match=r"w\[0\]\[0\] has shape \(8, 63\); expected \(8, 64\)"):
        mc.gradient(prob, [(np.zeros((8, 63)), np.zeros(8)), (np.zeros((10, 8)), np.zeros(10))])
    with pytest.raises(ValueError, match="give epochs, not iters"):
        mc.solve(prob, method="sgd", step=0.1, iters=3)
    with pytest.raises(ValueError, match=r"X has 10 features per sample"):
        nn.accuracy(net, net.init(0), X[:, :10], y)
