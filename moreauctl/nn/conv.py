"""Convolution and pooling layers on mini-batches of images ``(m, C, H, W)`` (PyTorch's
NCHW layout and weight layout, so tests compare with ``torch.nn.functional`` directly).

A convolution is ONE matrix product on the im2col matrix (rows layout
``(m*ho*wo, C*kh*kw)``, built by the compiled :func:`~moreauctl.nn.kernels.im2col_rows`),
its transposes are two more products and the compiled scatter
:func:`~moreauctl.nn.kernels.col2im_rows`; pooling runs compiled loops. No Python loop runs
over samples or pixels.

Output sizes follow PyTorch (floor mode): ``H_out = (H + 2 p - kh) // s + 1``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .. import _validate as v
from .kernels import col2im_rows, im2col_rows, maxpool_forward, maxpool_scatter
from .layers import AffineActivation, LastInput, Layer

__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "im2col", "col2im", "out_size"]


def out_size(n: int, k: int, s: int, p: int = 0) -> int:
    """Output length of a window ``k`` with stride ``s`` and padding ``p`` over ``n``."""
    return (n + 2 * p - k) // s + 1


def _pair(name, val) -> Tuple[int, int]:
    if isinstance(val, (tuple, list)):
        if len(val) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints; got {val!r}")
        return v.positive_int(name, val[0]), v.positive_int(name, val[1])
    k = v.positive_int(name, val)
    return k, k


def im2col(x, kh, kw, sh=1, sw=1, ph=0, pw=0) -> np.ndarray:
    """The im2col matrix of ``x (m, C, H, W)`` in rows layout ``(m, ho*wo, C*kh*kw)``: row
    ``(i, j)`` of sample ``n`` holds the zero-padded window under output pixel ``(i, j)``, in
    the order ``(c, u, v)`` of a weight ``W (O, C, kh, kw)`` flattened."""
    x = np.ascontiguousarray(x)
    ho, wo = out_size(x.shape[2], kh, sh, ph), out_size(x.shape[3], kw, sw, pw)
    return im2col_rows(x, kh, kw, sh, sw, ph, pw, ho, wo)


def col2im(cols, x_shape, kh, kw, sh=1, sw=1, ph=0, pw=0) -> np.ndarray:
    """The transpose of :func:`~moreauctl.nn.im2col`: ``(m, ho*wo, C*kh*kw)`` -> ``(m, C, H, W)``, every
    entry added back onto the pixel it was read from."""
    _, C, H, W = x_shape
    ho, wo = out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
    return col2im_rows(np.ascontiguousarray(cols), C, H, W, kh, kw, sh, sw, ph, pw, ho, wo)


class Conv2d(AffineActivation):
    """2-D convolution (cross-correlation, as PyTorch) with a fused activation:
    ``x_t = sigma(conv(x_{t-1}, W) + b)``.

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels.
    kernel_size : int or (kh, kw)
    stride, padding : int or pair
        Zero padding on both sides.
    activation : str
        As :class:`~moreauctl.nn.layers.Dense` (``"identity"`` by default).

    Notes
    -----
    ``W`` is ``(c_out, c_in, kh, kw)``, ``b`` is ``(c_out,)``. With ``cols = im2col(x)``
    ``(m, c_in kh kw, ho wo)`` and ``W_mat = W.reshape(c_out, -1)``:
    ``z[n] = W_mat @ cols[n] + b``; ``dW = sum_n lam_z[n] @ cols[n]^T``,
    ``db = sum lam_z over (n, i, j)``, ``dx = col2im(W_mat^T @ lam_z)``.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size=3, stride=1, padding=0,
                 activation="identity"):
        self.c_in = v.positive_int("c_in", c_in)
        self.c_out = v.positive_int("c_out", c_out)
        self.kh, self.kw = _pair("kernel_size", kernel_size)
        self.sh, self.sw = _pair("stride", stride)
        if isinstance(padding, (tuple, list)):
            if len(padding) != 2:
                raise ValueError(f"padding must be an int or a pair of ints; got {padding!r}")
            self.ph, self.pw = (v.nonnegative_int("padding", p) for p in padding)
        else:
            self.ph = self.pw = v.nonnegative_int("padding", padding)
        self._set_activation(activation)
        self.param_shapes = ((self.c_out, self.c_in, self.kh, self.kw), (self.c_out,))
        self._cols = LastInput()   # forward's im2col matrix, reused by the backward pass

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.c_in:
            raise ValueError(f"{self!r} expects inputs of per-sample shape ({self.c_in}, H, W); "
                             f"got {tuple(input_shape)}")
        _, H, W = input_shape
        ho, wo = out_size(H, self.kh, self.sh, self.ph), out_size(W, self.kw, self.sw, self.pw)
        if ho < 1 or wo < 1:
            raise ValueError(f"{self!r}: input {H}x{W} is smaller than the kernel "
                             f"{self.kh}x{self.kw} (with padding {self.ph}, {self.pw})")
        return (self.c_out, ho, wo)

    def columns(self, x) -> np.ndarray:
        """``im2col(x)`` with this layer's geometry, rows layout ``(m, ho wo, c_in kh kw)``:
        ``z = (columns(x) @ W.reshape(c_out, -1).T + b)`` transposed to ``(m, c_out, ho, wo)``.
        The last one computed in this thread is kept for the backward pass on the same
        ``x``."""
        cols = self._cols.get(x)
        if cols is None:
            cols = self._cols.put(x, im2col(x, self.kh, self.kw, self.sh, self.sw, self.ph,
                                            self.pw))
        return cols

    def _out_hw(self, shape):
        return (out_size(shape[2], self.kh, self.sh, self.ph),
                out_size(shape[3], self.kw, self.sw, self.pw))

    def preactivation(self, w, x):
        W, b = self.params(w)
        m = x.shape[0]
        ho, wo = self._out_hw(x.shape)
        cols = self.columns(x).reshape(m * ho * wo, -1)
        z = cols @ W.reshape(self.c_out, -1).T       # (m ho wo, c_out): one product
        z += b
        return np.ascontiguousarray(z.reshape(m, ho * wo, self.c_out).transpose(0, 2, 1)
                                    ).reshape(m, self.c_out, ho, wo)

    def _rows(self, lam_z):
        """Costate of the pre-activation in rows layout ``(m ho wo, c_out)``."""
        m = lam_z.shape[0]
        return np.ascontiguousarray(lam_z.reshape(m, self.c_out, -1).transpose(0, 2, 1)
                                    ).reshape(-1, self.c_out)

    def _vjp_w_rows(self, x, lz, out=None):
        cols = self.columns(x).reshape(lz.shape[0], -1)
        gw = np.empty(self.nw, dtype=np.result_type(x, lz)) if out is None else out
        k = gw.size - self.c_out
        np.matmul(lz.T, cols, out=gw[:k].reshape(self.c_out, -1))
        np.sum(lz, axis=0, out=gw[k:])
        return gw

    def _vjp_x_rows(self, w, lz, x_shape):
        W, _ = self.params(w)
        m, _, H, Wd = x_shape
        ho, wo = self._out_hw(x_shape)
        g = (lz @ W.reshape(self.c_out, -1)).reshape(m, ho * wo, -1)
        return col2im_rows(g, self.c_in, H, Wd, self.kh, self.kw, self.sh, self.sw,
                           self.ph, self.pw, ho, wo)

    def affine_vjp_w(self, x, lam_z, out=None):
        return self._vjp_w_rows(x, self._rows(lam_z), out)

    def affine_vjp_x(self, w, lam_z, x_shape):
        return self._vjp_x_rows(w, self._rows(lam_z), x_shape)

    def vjp_with_output(self, w, x, y, lam, out=None, need_x=True, need_w=True):
        lz = self._rows(self.preactivation_costate(lam, y))   # shared by both halves
        return ((self._vjp_w_rows(x, lz, out) if need_w else None),
                (self._vjp_x_rows(w, lz, x.shape) if need_x else None))

    def __repr__(self):
        return (f"Conv2d({self.c_in}, {self.c_out}, kernel_size=({self.kh}, {self.kw}), "
                f"stride=({self.sh}, {self.sw}), padding=({self.ph}, {self.pw}), "
                f"activation={self.activation.name!r})")


class _Pool(Layer):
    param_shapes = ()
    affine_w = True

    def __init__(self, kernel_size=2, stride=None):
        self.kh, self.kw = _pair("kernel_size", kernel_size)
        self.sh, self.sw = _pair("stride", stride) if stride is not None else (self.kh, self.kw)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self!r} expects inputs of per-sample shape (C, H, W); got "
                             f"{tuple(input_shape)}")
        C, H, W = input_shape
        ho, wo = out_size(H, self.kh, self.sh), out_size(W, self.kw, self.sw)
        if ho < 1 or wo < 1:
            raise ValueError(f"{self!r}: input {H}x{W} is smaller than the window")
        return (C, ho, wo)

    def _hw(self, x):
        return out_size(x.shape[2], self.kh, self.sh), out_size(x.shape[3], self.kw, self.sw)

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size=({self.kh}, {self.kw}), "
                f"stride=({self.sh}, {self.sw}))")


class MaxPool2d(_Pool):
    """Max pooling over ``kh x kw`` windows (stride = kernel size by default). The gradient
    goes to the first maximum of each window in row-major order (as PyTorch's CPU kernel)."""

    def __init__(self, kernel_size=2, stride=None):
        super().__init__(kernel_size, stride)
        self._argmax = LastInput()   # forward's arg max per window, for the backward pass

    def _pool(self, x):
        out, idx = maxpool_forward(np.ascontiguousarray(x), self.kh, self.kw, self.sh, self.sw,
                                   *self._hw(x))
        self._argmax.put(x, idx)
        return out, idx

    def forward(self, w, x):
        return self._pool(x)[0]

    def vjp(self, w, x, lam):
        idx = self._argmax.get(x)
        if idx is None:
            idx = self._pool(x)[1]
        return np.empty(0, dtype=x.dtype), maxpool_scatter(
            idx, np.ascontiguousarray(lam), x.shape[2], x.shape[3], self.kh, self.kw, self.sh,
            self.sw)


class AvgPool2d(_Pool):
    """Average pooling over ``kh x kw`` windows (no padding); linear in ``x``. Pooling is a
    convolution of each channel with a constant ``1/(kh kw)`` kernel, so it runs the same
    compiled im2col/col2im on the channels folded into the batch."""

    affine_x = True

    def forward(self, w, x):
        m, C, H, W = x.shape
        ho, wo = self._hw(x)
        cols = im2col_rows(np.ascontiguousarray(x).reshape(m * C, 1, H, W), self.kh, self.kw,
                           self.sh, self.sw, 0, 0, ho, wo)
        return cols.mean(axis=2).reshape(m, C, ho, wo)

    def vjp(self, w, x, lam):
        m, C, H, W = x.shape
        ho, wo = self._hw(x)
        share = np.ascontiguousarray(lam).reshape(m * C, ho * wo, 1) / (self.kh * self.kw)
        g = np.broadcast_to(share, (m * C, ho * wo, self.kh * self.kw))
        gx = col2im_rows(np.ascontiguousarray(g), 1, H, W, self.kh, self.kw, self.sh, self.sw,
                         0, 0, ho, wo)
        return np.empty(0, dtype=x.dtype), gx.reshape(m, C, H, W)
