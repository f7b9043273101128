"""Networks: a sequence of layers with a per-sample input shape, its initialization, its
forward map on data; :func:`~moreauctl.nn.mlp` and the paper's :func:`~moreauctl.nn.convnet`.

A network is the stage list of a chain (``x_0`` = the inputs, ``x_t`` = layer ``t``'s
output); :class:`~moreauctl.nn.problem.Classification` adds the loss and the data.
Parameters are given per stage as in DESIGN.md: a list of ``T`` tuples ``(W_t, b_t)``
(an empty tuple for a parameter-free layer), or the flat vector ``w`` of :meth:`~moreauctl.nn.Sequential.layout`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .. import _validate as v
from ..chain import Layout
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .layers import AffineActivation, Dense, Flatten, Layer

__all__ = ["Sequential", "mlp", "convnet", "INIT_SCHEMES"]

#: ``"he"``: ``W ~ N(0, 2 / fan_in)`` for layers followed by a ReLU and ``N(0, 1 / fan_in)``
#: otherwise (He et al. 2015 / LeCun), biases 0. ``"torch"``: PyTorch's default for
#: ``nn.Linear``/``nn.Conv2d``, ``W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
INIT_SCHEMES = ("he", "torch")

_EVAL_CHUNK = 1024


class Sequential:
    """Layers applied one after the other to a mini-batch.

    Parameters
    ----------
    layers : sequence of :class:`~moreauctl.nn.layers.Layer`
    input_shape : int or tuple of int
        Per-sample input shape: ``(n,)`` for vectors, ``(C, H, W)`` for images. Data sets
        hand flat rows ``(m, prod(input_shape))``; the chain reshapes them (a view).

    Raises
    ------
    ValueError
        When a layer does not accept its predecessor's output (naming both).
    """

    def __init__(self, layers: Sequence[Layer], input_shape):
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{i}] must be a moreauctl.nn layer; got "
                                f"{type(layer).__name__}")
        shape = (input_shape,) if np.isscalar(input_shape) else tuple(input_shape)
        self.input_shape: Tuple[int, ...] = tuple(v.positive_int("input_shape", s) for s in shape)
        shapes = [self.input_shape]
        for i, layer in enumerate(layers):
            try:
                shapes.append(tuple(layer.output_shape(shapes[-1])))
            except ValueError as e:
                raise ValueError(f"layer {i} ({layer!r}): {e}") from None
        self.stages: Tuple[Layer, ...] = tuple(layers)
        #: per-sample shapes of x_0..x_T
        self.shapes = tuple(shapes)

    @property
    def T(self) -> int:
        return len(self.stages)

    @property
    def output_shape(self) -> Tuple[int, ...]:
        return self.shapes[-1]

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    def layout(self, dtype=np.float64) -> Layout:
        """The flat parameter layout (``dtype`` float64 or float32)."""
        return Layout([st.param_shapes for st in self.stages], dtype=dtype)

    def init(self, seed: Optional[int] = 0, scheme: str = "he") -> list:
        """Initial parameters, a list of ``T`` tuples ``(W_t, b_t)`` (``()`` for layers
        without parameters), float64, drawn with ``numpy.random.default_rng(seed)`` layer by
        layer; ``scheme`` is one of :data:`INIT_SCHEMES`."""
        v.choice("init scheme", scheme, INIT_SCHEMES)
        rng = np.random.default_rng(seed)
        out = []
        for st in self.stages:
            if not st.param_shapes:
                out.append(())
                continue
            ws, bs = st.param_shapes
            fan_in = int(np.prod(ws[1:]))
            if scheme == "he":
                relu = isinstance(st, AffineActivation) and st.activation.name == "relu"
                std = np.sqrt((2.0 if relu else 1.0) / fan_in)
                out.append((rng.normal(0.0, std, size=ws), np.zeros(bs)))
            else:
                bound = 1.0 / np.sqrt(fan_in)
                out.append((rng.uniform(-bound, bound, size=ws), rng.uniform(-bound, bound, size=bs)))
        return out

    def reshape_inputs(self, X: np.ndarray) -> np.ndarray:
        """Flat rows ``(m, prod(input_shape))`` -> ``(m, *input_shape)`` (a view)."""
        return X.reshape((X.shape[0],) + self.input_shape)

    def forward(self, w, X: np.ndarray, chunk: int = _EVAL_CHUNK) -> np.ndarray:
        """Outputs ``x_T`` ``(m, *output_shape)`` for inputs ``X (m, prod(input_shape))``,
        computed ``chunk`` samples at a time (bounded memory); ``w`` per stage or flat."""
        lay = self.layout()
        wf = lay.pack(w)
        X = np.asarray(X, dtype=wf.dtype)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"X has shape {X.shape}; expected (m, {self.n_inputs}) for input "
                             f"shape {self.input_shape}")
        outs = []
        for i in range(0, X.shape[0], chunk):
            x = self.reshape_inputs(X[i:i + chunk])
            for t, st in enumerate(self.stages):
                x = st.forward(lay.segment(wf, t), x)
            outs.append(x)
        return np.concatenate(outs) if outs else np.zeros((0,) + self.output_shape)

    def predict(self, w, X) -> np.ndarray:
        """Predicted classes ``argmax_k x_T[i, k]``, ``(m,)`` int."""
        return np.argmax(self.forward(w, X), axis=1)

    def __repr__(self):
        inner = ",\n  ".join(repr(st) for st in self.stages)
        return f"Sequential(input_shape={self.input_shape}, [\n  {inner}])"


def mlp(sizes: Sequence[int], activation: str = "relu",
        output_activation: str = "identity") -> Sequential:
    """Multi-layer perceptron with layer widths ``sizes`` (input first): stage ``t`` is
    ``x_t = act(x_{t-1} W_t^T + b_t)``, the last stage affine (``output_activation``).

    >>> net = mlp([64, 32, 10], activation="relu")   # 2 stages: Dense(64, 32, relu), Dense(32, 10)
    """
    sizes = [v.positive_int("every layer size", s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least 2 sizes (inputs and outputs); got {sizes}")
    layers = [Dense(a, b, activation) for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers.append(Dense(sizes[-2], sizes[-1], output_activation))
    return Sequential(layers, (sizes[0],))


def convnet(input_shape=(1, 28, 28), n_classes: int = 10, channels=(16, 20, 20),
            kernel_size: int = 5, pool: str = "max", activation: str = "relu") -> Sequential:
    """The long paper's ConvNet (Sec. 4, after Frerix et al. 2018):
    ``Conv[16]->ReLU->Pool->Conv[20]->ReLU->Pool->Conv[20]->ReLU->Pool->FC``.

    The paper gives the feature-map sizes only (``16x32x32 -> 16x16x16 -> 20x16x16 ...``),
    which size-preserving convolutions and 2x2 pooling give; we use ``kernel_size x
    kernel_size`` kernels with padding ``kernel_size // 2`` (5x5, padding 2 by default),
    stride 1, ReLU fused into each convolution stage, 2x2 pooling with stride 2 (floor
    mode), then ``Flatten`` and a dense layer to ``n_classes`` logits. On 8x8 digits the
    maps are 8 -> 4 -> 2 -> 1 pixels, on 28x28 images 28 -> 14 -> 7 -> 3.
    """
    pools = {"max": MaxPool2d, "avg": AvgPool2d}
    Pool = pools[v.choice("pool", pool, pools)]
    k = v.positive_int("kernel_size", kernel_size)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (size-preserving padding); got {k}")
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W); got {shape}")
    layers = []
    c = shape[0]
    for c_out in channels:
        layers += [Conv2d(c, c_out, k, padding=k // 2, activation=activation), Pool(2)]
        c = c_out
    net = Sequential(layers + [Flatten()], shape)
    n_feat = net.output_shape[0]
    return Sequential(layers + [Flatten(), Dense(n_feat, v.positive_int("n_classes", n_classes))],
                      shape)
