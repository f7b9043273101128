"""Classification problems: a network, a loss and labelled data, solved by the same
:func:`moreauctl.solve` as control problems.

The problem offers what :func:`moreauctl.solve` and the api functions read: ``.chain`` (the
network's stages, the loss as the objective ``h(x_T; y)``, the inputs as ``x_0`` and the
weight decay as the chain's regularizer, D.6), ``.data`` (the whole training set: the
objective reported per epoch), ``.batches(seed)`` (reshuffled mini-batches per epoch) and
``.init_params()``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _validate as v
from ..chain import L2, Chain
from .losses import get_loss
from .network import Sequential

__all__ = ["Classification", "NetworkChain", "accuracy", "check_inputs", "check_labels"]

_EVAL_CHUNK = 2048


def check_inputs(net: Sequential, X, what: str = "X", dtype=np.float64) -> np.ndarray:
    """``X`` as a C-contiguous ``(m, prod(input_shape))`` array of ``dtype`` with finite
    entries (images ``(m, *input_shape)`` are flattened), or a ValueError/TypeError naming
    what was expected and what arrived."""
    try:
        arr = np.asarray(X)
    except Exception:  # noqa: BLE001 - ragged lists and the like
        raise TypeError(f"{what} must be an array of numbers; got {type(X).__name__}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be an array of numbers; got dtype {arr.dtype}")
    if arr.ndim == 1 + len(net.input_shape) and arr.shape[1:] == net.input_shape and arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2:
        raise ValueError(f"{what} has shape {arr.shape}; expected (m, {net.n_inputs}) "
                         f"(samples x features)")
    if arr.shape[1] != net.n_inputs:
        raise ValueError(f"{what} has {arr.shape[1]} features per sample; the network's first "
                         f"layer expects {net.n_inputs} (input shape {net.input_shape})")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} has no samples")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{what} must have finite entries; found {int(bad.sum())} NaN/inf "
                         f"(first at sample {int(np.nonzero(bad.any(axis=1))[0][0])})")
    return arr


def check_labels(y, m: int, n_classes: int, what: str = "y") -> np.ndarray:
    """``y`` as ``(m,)`` int64 class indices in ``[0, n_classes)``."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != m:
        raise ValueError(f"{what} has shape {arr.shape}; expected ({m},) (one label per sample)")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{what} must hold integer class labels; got non-integer values")
    elif arr.dtype.kind not in "iub":
        raise TypeError(f"{what} must hold integer class labels; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{what} has labels in [{lo}, {hi}]; the network has {n_classes} "
                         f"outputs, so labels must be in [0, {n_classes - 1}]")
    return arr


class _Inputs:
    """``x_0(data)``: the batch's input rows reshaped to the network's input shape (a
    picklable callable, so problems travel to worker processes)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __call__(self, data):
        X = data[0]
        return X.reshape((X.shape[0],) + self.shape)


class _WeightMask:
    """``mask(t)``: 1 on stage ``t``'s weight ``W``, 0 on its bias (``decay_biases=False``)."""

    def __init__(self, layout):
        self.layout = layout

    def __call__(self, t):
        shapes = self.layout.shapes[t]
        m = np.zeros(int(self.layout.sizes[t]), dtype=self.layout.dtype)
        if shapes:
            m[:int(np.prod(shapes[0]))] = 1.0
        return m


class _Batches:
    """``batches(epoch)``: the mini-batches of one epoch, reshuffled with
    ``numpy.random.default_rng([seed, epoch])`` (so any epoch can be replayed alone); the
    last batch holds the remainder (``m mod batch_size`` samples) when there is one."""

    def __init__(self, X, y, batch_size, seed):
        self.X, self.y, self.batch_size = X, y, batch_size
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else seed

    def __call__(self, epoch):
        n = self.X.shape[0]
        if self.batch_size is None or self.batch_size >= n:
            yield self.X, self.y
            return
        perm = np.random.default_rng([self.seed, int(epoch)]).permutation(n)
        for i in range(0, n, self.batch_size):
            idx = perm[i:i + self.batch_size]
            yield self.X[idx], self.y[idx]


class NetworkChain(Chain):
    """A :class:`~moreauctl.chain.Chain` whose objective on many samples is evaluated in
    chunks (bounded memory; the objective is a mean over samples, so the chunk means
    weighted by their sizes give the same number up to rounding), and whose passes skip the
    costate of the inputs (``input_costate=False``: nothing uses it). Every pass is the base
    class's."""

    def __init__(self, *args, input_costate: bool = False, **kwargs):
        super().__init__(*args, input_costate=input_costate, **kwargs)

    def objective(self, w, data=None):
        X, y = data
        n = X.shape[0]
        if n <= _EVAL_CHUNK:
            return super().objective(w, data)
        total = 0.0
        for i in range(0, n, _EVAL_CHUNK):
            part = (X[i:i + _EVAL_CHUNK], y[i:i + _EVAL_CHUNK])
            x = self.initial_state(part)
            for t, st in enumerate(self.stages):
                x = st.forward(self.layout.segment(w, t), x)
            total += part[0].shape[0] * float(self.h.value(x, part))
        return total / n + self._r(w)


class Classification:
    """Classify ``X`` into ``y`` with a network: minimize
    ``mean_i L(y_i, net(w, X_i)) + r(w)`` with mini-batch methods.

    Parameters
    ----------
    net : Sequential
        E.g. :func:`~moreauctl.nn.mlp` or :func:`~moreauctl.nn.convnet`; its output size is
        the number of classes ``K``.
    X : array_like, shape (m, prod(input_shape)) or (m,) + input_shape
        Training inputs (finite).
    y : array_like of int, shape (m,)
        Labels in ``[0, K)``.
    loss : {"cross_entropy", "squared"}
        See :mod:`moreauctl.nn.losses`.
    batch_size : int or None
        Mini-batch size; None for full batches (gradient descent).
    weight_decay : float
        ``mu >= 0`` of the layer-wise ``r(w) = sum_t mu/2 |w_t|^2`` (D.6, E.1.2 uses
        ``mu = 1e-6``), in the objective, the gradient and every Moreau weight line.
    decay_biases : bool
        Whether ``r`` includes the biases. Default True, as the paper's ``|w_t|^2`` over all
        of the layer's parameters and PyTorch's ``weight_decay``; False decays the weights
        ``W`` only (``L2(mu, mask=...)``).
    dtype : {"float64", "float32"}
        Arithmetic of the parameters, data and passes.
    init_seed : int
        Seed of :meth:`init_params` (``net.init(seed=init_seed)``).

    Attributes
    ----------
    chain : NetworkChain
    data : (X, y)
        The whole training set, ``X`` flat ``(m, prod(input_shape))`` of ``dtype``.
    """

    def __init__(self, net: Sequential, X, y, loss="cross_entropy", batch_size: Optional[int] = 32,
                 weight_decay: float = 0.0, *, decay_biases: bool = True, dtype="float64",
                 init_seed: int = 0, name: Optional[str] = None):
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be a moreauctl.nn.Sequential (nn.mlp, nn.convnet); got "
                            f"{type(net).__name__}")
        if len(net.output_shape) != 1:
            raise ValueError(f"the network's output has per-sample shape {net.output_shape}; a "
                             f"classifier needs (n_classes,) (end with Flatten and Dense)")
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be 'float64' or 'float32'; got {dtype!r}")
        self.h = get_loss(loss)
        self.net = net
        self.n_classes = int(net.output_shape[0])
        X = check_inputs(net, X, "X", dt)
        y = check_labels(y, X.shape[0], self.n_classes, "y")
        self.batch_size = None if batch_size is None else v.positive_int("batch_size", batch_size)
        self.weight_decay = v.nonnegative_number("weight_decay", weight_decay)
        if not isinstance(decay_biases, (bool, np.bool_)):
            raise TypeError(f"decay_biases must be True or False; got {decay_biases!r}")
        self.decay_biases = bool(decay_biases)
        self.init_seed = v.nonnegative_int("init_seed", init_seed)
        self.dtype = dt
        self.data = (X, y)
        layout = net.layout(dt)
        reg = None
        if self.weight_decay > 0:
            reg = L2(self.weight_decay, mask=None if self.decay_biases else _WeightMask(layout))
        self.chain = NetworkChain(net.stages, self.h, x0=_Inputs(net.input_shape), layout=layout,
                                  regularizer=reg)
        self.name = name or f"{type(self.h).__name__} classification"

    @property
    def n_samples(self) -> int:
        return int(self.data[0].shape[0])

    @property
    def horizon(self) -> int:
        """``T``, the number of stages (layers)."""
        return self.chain.horizon

    def batches(self, seed: Optional[int] = None):
        """``callable(epoch) -> iterable of (X_batch, y_batch)``: the epoch's reshuffled
        mini-batches (``seed=None`` draws a fresh seed)."""
        if seed is not None:
            seed = v.nonnegative_int("seed", seed)
        return _Batches(self.data[0], self.data[1], self.batch_size, seed)

    def init_params(self) -> list:
        """``net.init(seed=init_seed)``: a list of ``T`` tuples ``(W_t, b_t)``."""
        return self.net.init(seed=self.init_seed)

    def __repr__(self):
        return (f"Classification({self.name}: {self.n_samples} samples, {self.n_classes} "
                f"classes, T={self.horizon}, n={self.chain.layout.size}, batch_size="
                f"{self.batch_size}, weight_decay={self.weight_decay:g}, dtype={self.dtype})")


def accuracy(net: Sequential, w, X, y) -> float:
    """Fraction of samples whose predicted class (arg max of the outputs) is their label,
    in ``[0, 1]`` (scikit-learn's ``accuracy_score``)."""
    from sklearn.metrics import accuracy_score
    X = check_inputs(net, X, "X")
    y = check_labels(y, X.shape[0], int(net.output_shape[0]), "y")
    return float(accuracy_score(y, net.predict(w, X)))
