"""Network layers as stages ``x_t = phi_t(w_t, x_{t-1})`` of a :class:`moreauctl.chain.Chain`.

The state ``x_t`` is a mini-batch: an array ``(m, ...)`` whose first axis runs over the
``m`` samples (``(m, n)`` after a dense layer, ``(m, C, H, W)`` after a convolution, as
PyTorch). ``w_t`` is the stage's flat segment of the parameter vector ``w``; every layer
with parameters stores ``(W, b)`` one after the other (``params(w)`` returns the views).
The arithmetic follows the dtype of ``w`` and ``x`` (float64 by default, float32 when the
problem asks for it).

What each layer offers (for rules and oracles that want more than ``vjp``)
--------------------------------------------------------------------------
Layers with parameters are :class:`AffineActivation` stages, ``x_t = sigma(A(w_t, x_{t-1}))``
with ``z = A(w, x)`` affine in ``w`` and in ``x`` (bilinear: ``x W^T + b``, or a
convolution) and ``sigma`` element-wise. They provide

- ``params(w) -> (W, b)``: views of the stage's parameters;
- ``preactivation(w, x) -> z``: the affine part's output;
- ``activation``: the :class:`~moreauctl.nn.activations.Activation` (``.f``, ``.df(a)``);
- ``preactivation_costate(lam, y) -> lam_z = sigma'(z) * lam`` from the output ``y``;
- ``affine_vjp_w(x, lam_z)``, ``affine_vjp_x(w, lam_z, x_shape)``: the affine part's
  transposed Jacobians (the gradient w.r.t. ``w`` flat like ``w_t``, and w.r.t. ``x``);
- ``affine_w = affine_x = True`` when the activation is the identity (the Moreau rule's
  lines are then closed forms, equal to the gradient's).

The SVGD oracle (``moreauctl/oracles/svgd.py``) uses ``preactivation_costate`` and
``affine_vjp_*``; inversion or ProxProp rules can solve their linear least squares on
``params``/``preactivation`` (:class:`~moreauctl.nn.conv.Conv2d` adds ``columns(x)``, its
im2col matrix, so a convolution is ``z = W_mat @ columns(x) + b``).

Parameter-free layers (:class:`ActivationLayer`, :class:`Flatten`, pooling) have
``param_shapes = ()``, are trivially affine in their empty ``w`` (``affine_w = True``) and
say whether they are linear in ``x`` (``Flatten``, average pooling). The ReLU layer solves
its Moreau state subproblem exactly (``moreau_grad_x``).
"""
from __future__ import annotations

import copy
import threading
from typing import Tuple

import numpy as np

from .. import _validate as v
from ..chain import Stage
from .activations import Activation, get_activation, relu_moreau_grad

__all__ = ["Layer", "AffineActivation", "Dense", "ActivationLayer", "Flatten", "LastInput"]

Shape = Tuple[int, ...]


class LastInput:
    """What a layer computed from the last input it saw in this thread (an im2col matrix, the
    arg max of each pooling window), for its backward pass on the same input.

    A hit needs the very same array object (``x is key``): the gradient pass calls
    ``vjp(w, X[t], ...)`` with the object ``forward`` received, while the Moreau rules'
    trial points are new arrays and simply miss. States are never modified in place. One
    slot per thread, so thread executors sharing a problem do not mix their batches; not
    pickled (a copy starts empty).
    """

    def __init__(self):
        self._local = threading.local()

    def get(self, x):
        item = getattr(self._local, "item", None)
        return item[1] if item is not None and item[0] is x else None

    def put(self, x, value):
        self._local.item = (x, value)
        return value

    def __reduce__(self):
        return (LastInput, ())


class Layer(Stage):
    """A network stage: a :class:`~moreauctl.chain.Stage` that also knows its per-sample
    input and output shapes (without the batch axis)."""

    def output_shape(self, input_shape: Shape) -> Shape:
        """Per-sample output shape for a per-sample ``input_shape``; a ValueError naming
        the layer when the input does not fit."""
        raise NotImplementedError

    def _expect(self, input_shape: Shape, expected: Shape) -> None:
        if tuple(input_shape) != tuple(expected):
            raise ValueError(f"{self!r} expects inputs of per-sample shape {tuple(expected)}; "
                             f"got {tuple(input_shape)}")


class AffineActivation(Layer):
    """``x_t = sigma(A(w, x_{t-1}))``: an affine map (in ``w`` and in ``x``) followed by an
    element-wise activation; see the module docstring for what it offers.

    Subclasses set ``param_shapes`` and ``activation`` and implement ``preactivation``,
    ``affine_vjp_w`` and ``affine_vjp_x``.
    """

    activation: Activation

    def _set_activation(self, activation) -> None:
        self.activation = get_activation(activation)
        self.affine_w = self.affine_x = self.activation.linear

    def params(self, w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(W, b)``: views of the stage's flat segment ``w``."""
        ws = self.param_shapes[0]
        k = self.nw - self.param_shapes[1][0]
        return w[:k].reshape(ws), w[k:]

    def preactivation(self, w, x) -> np.ndarray:
        raise NotImplementedError

    def affine_vjp_w(self, x, lam_z, out=None) -> np.ndarray:
        """``dA/dw^T lam_z``, flat like ``w`` (written into ``out`` when given)."""
        raise NotImplementedError

    def affine_vjp_x(self, w, lam_z, x_shape) -> np.ndarray:
        raise NotImplementedError

    def forward(self, w, x):
        return self.activation.apply_fresh(self.preactivation(w, x))

    def preactivation_costate(self, lam, y) -> np.ndarray:
        """``lam_z = sigma'(z) * lam`` from the output ``y = sigma(z)``."""
        return self.activation.backward(y, lam)

    @property
    def affine_part(self) -> "AffineActivation":
        """This layer without its activation (the map ``A``): ProxProp (Frerix et al.) takes
        its proximal step on it, with the pre-activation costate of :meth:`vjp_activation`."""
        part = self.__dict__.get("_affine_part")
        if part is None:
            part = copy.copy(self)
            part._set_activation("identity")
            self._affine_part = part
        return part

    def vjp_activation(self, w, x, lam) -> np.ndarray:
        """The costate of the pre-activation, ``sigma'(A(w, x)) * lam``."""
        y = None if self.activation.linear else self.forward(w, x)
        return self.preactivation_costate(lam, y)

    def vjp_with_output(self, w, x, y, lam, out=None, need_x=True, need_w=True):
        lam_z = self.preactivation_costate(lam, y)
        gx = self.affine_vjp_x(w, lam_z, x.shape) if need_x else None
        return (self.affine_vjp_w(x, lam_z, out) if need_w else None), gx

    def vjp(self, w, x, lam):
        y = None if self.activation.linear else self.forward(w, x)
        return self.vjp_with_output(w, x, y, lam)

    def vjp_w(self, w, x, lam):
        y = None if self.activation.linear else self.forward(w, x)
        return self.affine_vjp_w(x, self.preactivation_costate(lam, y))

    def vjp_x(self, w, x, lam):
        y = None if self.activation.linear else self.forward(w, x)
        return self.affine_vjp_x(w, self.preactivation_costate(lam, y), x.shape)


class Dense(AffineActivation):
    """Fully connected layer with a fused activation: ``x_t = sigma(x_{t-1} W^T + b)``, the
    paper's "affine layer followed by a ReLU" as one stage.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features; ``W`` is ``(n_out, n_in)`` and ``b`` is ``(n_out,)``
        (PyTorch's ``nn.Linear`` layout).
    activation : str
        ``"identity"`` (default), ``"relu"``, ``"tanh"`` or ``"sigmoid"``.

    Notes
    -----
    State ``x`` is ``(m, n_in)``. ``vjp``: with ``lam_z = sigma'(z) lam`` (``(m, n_out)``),
    ``dW = lam_z^T x``, ``db = sum_i lam_z[i]``, ``dx = lam_z W``.
    """

    def __init__(self, n_in: int, n_out: int, activation="identity"):
        self.n_in = v.positive_int("n_in", n_in)
        self.n_out = v.positive_int("n_out", n_out)
        self._set_activation(activation)
        self.param_shapes = ((self.n_out, self.n_in), (self.n_out,))

    def output_shape(self, input_shape):
        self._expect(input_shape, (self.n_in,))
        return (self.n_out,)

    def preactivation(self, w, x):
        W, b = self.params(w)
        z = x @ W.T
        z += b
        return z

    def affine_vjp_w(self, x, lam_z, out=None):
        gw = np.empty(self.nw, dtype=np.result_type(x, lam_z)) if out is None else out
        k = self.n_out * self.n_in
        np.matmul(lam_z.T, x, out=gw[:k].reshape(self.n_out, self.n_in))
        np.sum(lam_z, axis=0, out=gw[k:])
        return gw

    def affine_vjp_x(self, w, lam_z, x_shape=None):
        return lam_z @ self.params(w)[0]

    def normal_solve_w(self, w, x, rhs, a, b):
        """Solve ``(a J^T J + b I) y = rhs`` for ``J = dA/dw`` (flat ``y``, ``rhs``): with
        ``A1 = [x, 1]`` (``(m, n_in + 1)``) and ``Y = [dW | db]``, ``Y (a A1^T A1 + b I) =
        RHS``, one ``(n_in + 1)``-square solve (the closed form of ProxProp's weight prox,
        :mod:`moreauctl.oracles.proxprop`; ``J`` of the activated layer is not this one: the
        rules use it on :attr:`~moreauctl.nn.AffineActivation.affine_part` or when the activation is the identity)."""
        k = self.n_out * self.n_in
        R = np.concatenate([rhs[:k].reshape(self.n_out, self.n_in), rhs[k:, None]], axis=1)
        A1 = np.concatenate([x, np.ones((x.shape[0], 1), dtype=x.dtype)], axis=1)
        M = a * (A1.T @ A1) + b * np.eye(self.n_in + 1)
        Y = np.linalg.solve(M, R.T).T           # M is symmetric
        return np.concatenate([Y[:, :self.n_in].ravel(), Y[:, self.n_in]])

    def moreau_grad_w(self, w, x, lam, c, inner, x_next=None, reg=None):
        """The weight line's Moreau step ``grad env(c lam^T phi(., x))(w)``, solved by the
        inner algorithm in an ``m (n_out + 1)``-dimensional subspace instead of the
        ``n_out (n_in + 1)`` weights; None (the generic solve runs) when that does not pay
        (``m >= n_in``) or does not apply (a regularizer).

        Why it is the same problem: the subproblem ``min_y c lam^T sigma(x (W + Y)^T + b +
        y_b) + |y|^2 / 2`` has gradients ``(c lam_z^T x + Y, ...)`` whose ``Y``-rows lie in
        the row space of the batch ``x (m, n_in)``; starting from 0, every iterate of a
        gradient-type inner algorithm, and the solution itself (``Y = -c lam_z^T x``), stay
        there. With ``x^T = Q R`` (thin QR, ``Q (n_in, m)`` orthonormal columns) and
        ``Y = (Q U)^T``, ``|Y| = |U|`` and ``x Y^T = R^T U``: the inner algorithm runs on
        ``(U (m, n_out), y_b)`` with the same inner products, so its iterates are those of
        the full-space run (in exact arithmetic), at ``O(m^2 n_out)`` per evaluation
        instead of ``O(m n_in n_out)``.
        """
        m = x.shape[0]
        if reg is not None or m >= self.n_in:
            return None
        from ..rules import prox_direction
        Q, R = np.linalg.qr(x.T)                       # (n_in, m), (m, m)
        Rt = np.ascontiguousarray(R.T)
        z0 = self.preactivation(w, x)
        k, o, act = Q.shape[1], self.n_out, self.activation

        def z_at(v):
            z = z0 + Rt @ v[:k * o].reshape(k, o)
            z += v[k * o:]
            return z

        def f(v):
            return float(np.vdot(lam, act.f(z_at(v))))

        def grad(v):
            lz = act.backward(act.apply_fresh(z_at(v)), lam)
            return np.concatenate([(R @ lz).ravel(), lz.sum(axis=0)])

        v0 = np.zeros(k * o + o, dtype=np.result_type(w, x))
        y = act.apply_fresh(z0.copy()) if x_next is None else x_next
        lz0 = act.backward(y, lam)
        gv = prox_direction(f, grad, v0, c, inner, f_z=float(np.vdot(lam, y)),
                            grad_z=np.concatenate([(R @ lz0).ravel(), lz0.sum(axis=0)]))
        out = np.empty(self.nw, dtype=gv.dtype)
        kw = self.n_out * self.n_in
        out[:kw] = (Q @ gv[:k * o].reshape(k, o)).T.ravel()
        out[kw:] = gv[k * o:]
        return out

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation.name!r})"


class ActivationLayer(Layer):
    """A parameter-free element-wise activation ``x_t = sigma(x_{t-1})`` (any shape), for
    networks that keep activations as their own stages. The ReLU solves its Moreau state
    subproblem exactly (:func:`~moreauctl.nn.activations.relu_moreau_grad`)."""

    param_shapes = ()
    affine_w = True

    def __init__(self, activation):
        self.activation = get_activation(activation)
        self.affine_x = self.activation.linear
        if self.activation.name == "relu":
            self.moreau_grad_x = self._relu_moreau_grad_x

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, w, x):
        return self.activation.f(x)

    def vjp_with_output(self, w, x, y, lam, out=None, need_x=True, need_w=True):
        return np.empty(0, dtype=x.dtype), self.activation.backward(y, lam)

    def vjp(self, w, x, lam):
        return self.vjp_with_output(w, x, self.forward(w, x), lam)

    def _relu_moreau_grad_x(self, w, x, lam, c):
        return relu_moreau_grad(x, lam, c)

    def __repr__(self):
        return f"ActivationLayer({self.activation.name!r})"

    def __reduce__(self):  # the bound method above does not pickle by itself
        return (ActivationLayer, (self.activation.name,))


class Flatten(Layer):
    """``(m, C, H, W) -> (m, C*H*W)`` (C order, as ``torch.flatten(x, 1)``); linear."""

    param_shapes = ()
    affine_w = affine_x = True

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, w, x):
        return x.reshape(x.shape[0], -1)

    def vjp(self, w, x, lam):
        return np.empty(0, dtype=x.dtype), lam.reshape(x.shape)

    def __repr__(self):
        return "Flatten()"
