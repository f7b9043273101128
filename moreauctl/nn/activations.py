"""Element-wise activations ``a = sigma(z)``, with the derivative written as a function of the
output ``a`` (so a layer's backward pass reuses its stored output instead of recomputing the
pre-activation), and the exact element-wise Moreau step of the ReLU.

===========  ====================  ==========================
name         ``sigma(z)``          ``sigma'(z)`` from ``a``
===========  ====================  ==========================
identity     ``z``                 ``1``
relu         ``max(z, 0)``         ``1 if a > 0 else 0`` (0 at ``z = 0``, as PyTorch)
tanh         ``tanh(z)``           ``1 - a^2``
sigmoid      ``1 / (1 + e^-z)``    ``a (1 - a)``
===========  ====================  ==========================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _validate as v

__all__ = ["Activation", "ACTIVATIONS", "get_activation", "relu_moreau_grad"]


def _sigmoid(z):
    # exp of a non-positive number only: no overflow warning for large |z|
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


@dataclass(frozen=True)
class Activation:
    """One element-wise activation.

    Attributes
    ----------
    name : str
    f : callable
        ``f(z) -> a``, any shape.
    df : callable
        ``df(a) -> sigma'(z)`` from the output ``a = f(z)``.
    linear : bool
        True for the identity (the layer is then affine in ``w`` and in ``x``).
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    linear: bool = False

    def __reduce__(self):  # pickled by name (its functions are lambdas)
        return (get_activation, (self.name,))

    def apply_fresh(self, z: np.ndarray) -> np.ndarray:
        """``f(z)`` for a ``z`` the caller just computed and owns (overwritten in place when
        the activation allows it: one array less per layer)."""
        if self.name in ("relu", "tanh"):
            return self.f(z, out=z)
        return self.f(z)

    def backward(self, a: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """``sigma'(z) * lam`` from the output ``a`` (``lam`` itself for the identity)."""
        if self.linear:
            return lam
        if self.name == "relu":
            return np.where(a > 0, lam, 0).astype(lam.dtype, copy=False)
        return lam * self.df(a)


#: Activations by name (the table above), for layers, networks and the command line.
ACTIVATIONS = {
    "identity": Activation("identity", lambda z: z, lambda a: np.ones_like(a), linear=True),
    "relu": Activation("relu", lambda z, out=None: np.maximum(z, 0, out=out),
                       lambda a: (a > 0).astype(a.dtype)),
    "tanh": Activation("tanh", lambda z, out=None: np.tanh(z, out=out),
                       lambda a: 1.0 - a * a),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda a: a * (1.0 - a)),
}


def get_activation(name) -> Activation:
    """The activation called ``name`` (``None`` is the identity), or a ValueError listing
    them."""
    if isinstance(name, Activation):
        return name
    if name is None:
        return ACTIVATIONS["identity"]
    return ACTIVATIONS[v.choice("activation", name, ACTIVATIONS)]


def relu_moreau_grad(x: np.ndarray, lam: np.ndarray, c: float) -> np.ndarray:
    """``grad env(c lam^T relu(.))(x) = -argmin_y c lam^T relu(x + y) + |y|^2/2``, exactly.

    The subproblem separates over entries; each is a continuous piecewise quadratic in one
    variable with two pieces, so its global minimizer is the better of the two pieces'
    constrained minimizers (whatever the sign of ``lam``: for ``lam < 0`` the problem is
    not convex, and this still returns a global minimizer; ties go to the piece
    ``x + y > 0``):

    - piece ``x + y >= 0``: ``c l (x + y) + y^2/2``, minimized at ``y = max(-c l, -x)``;
    - piece ``x + y <= 0``: ``y^2/2``, minimized at ``y = min(0, -x)``.

    Parameters
    ----------
    x, lam : ndarray, same shape
    c : float
        Step ``> 0``.

    Returns
    -------
    ndarray shaped like ``x``: ``-y*``.
    """
    cl = c * lam
    y_pos = np.maximum(-cl, -x)
    f_pos = cl * (x + y_pos) + 0.5 * y_pos * y_pos
    y_neg = np.minimum(0.0, -x)
    f_neg = 0.5 * y_neg * y_neg
    return -np.where(f_pos <= f_neg, y_pos, y_neg).astype(x.dtype, copy=False)
