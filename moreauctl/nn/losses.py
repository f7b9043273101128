"""Classification losses as the chain's objective ``h(x_T; y)``: means over the ``m`` samples
of a mini-batch, exactly as DESIGN.md writes them.

- ``"cross_entropy"`` (softmax): ``h(z; y) = mean_i logsumexp(z_i) - z_i[y_i]``,
  ``grad = (softmax(z) - onehot(y)) / m``;
- ``"squared"``: ``h(z; y) = mean_i 0.5 |z_i - onehot(y_i)|^2``, ``grad = (z - onehot(y)) / m``,
  and its Moreau step in closed form:
  ``grad env(c h)(z) = (c/m) / (1 + c/m) (z - onehot(y))``.

``data`` is ``(inputs, labels)`` with integer labels ``(m,)``; ``z = x_T`` is ``(m, K)``.
"""
from __future__ import annotations

import numpy as np

from .. import _validate as v
from ..chain import Objective

__all__ = ["CrossEntropy", "Squared", "LOSSES", "get_loss", "onehot"]


def onehot(y: np.ndarray, K: int, dtype=np.float64) -> np.ndarray:
    """``(m, K)`` with a 1 at ``[i, y_i]``."""
    out = np.zeros((y.shape[0], K), dtype=dtype)
    out[np.arange(y.shape[0]), y] = 1.0
    return out


class CrossEntropy(Objective):
    """Softmax cross-entropy, averaged over the batch."""

    name = "cross_entropy"

    @staticmethod
    def _shifted(z):
        return z - z.max(axis=1, keepdims=True)

    def value(self, z, data):
        y = data[1]
        s = self._shifted(z)
        lse = np.log(np.exp(s).sum(axis=1))
        return float(np.mean(lse - s[np.arange(z.shape[0]), y]))

    def grad(self, z, data):
        y = data[1]
        m = z.shape[0]
        e = np.exp(self._shifted(z))
        e /= e.sum(axis=1, keepdims=True)
        e[np.arange(m), y] -= 1.0
        e /= m
        return e

    def __repr__(self):
        return "CrossEntropy()"


class Squared(Objective):
    """``0.5 |z - onehot(y)|^2`` averaged over the batch; quadratic, so its Moreau step is a
    closed form (:meth:`~moreauctl.nn.losses.Squared.moreau_grad`)."""

    name = "squared"
    quadratic = True

    def value(self, z, data):
        r = z - onehot(data[1], z.shape[1], z.dtype)
        return 0.5 * float(np.vdot(r, r)) / z.shape[0]

    def grad(self, z, data):
        r = z - onehot(data[1], z.shape[1], z.dtype)
        r /= z.shape[0]
        return r

    def moreau_grad(self, z, data, c):
        """``grad env(c h)(z) = -argmin_y c h(z + y) + |y|^2/2 = (c/m)/(1 + c/m) (z - Y)``."""
        q = c / z.shape[0]
        return (q / (1.0 + q)) * (z - onehot(data[1], z.shape[1], z.dtype))

    def __repr__(self):
        return "Squared()"


#: Losses by name, for :class:`~moreauctl.nn.Classification` and the command line.
LOSSES = {"cross_entropy": CrossEntropy, "squared": Squared}


def get_loss(name) -> Objective:
    """A loss by name (or an :class:`~moreauctl.chain.Objective` instance, returned as is)."""
    if isinstance(name, Objective):
        return name
    return LOSSES[v.choice("loss", name, LOSSES)]()
