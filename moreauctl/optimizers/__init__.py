"""Update rules on directions, as pairs of small pure functions (optax style).

An optimizer is ``Optimizer(init, update)``:

- ``init(w) -> state``
- ``update(d, state) -> (delta, state)``; the iterate moves as ``w <- w - delta``.

``d`` is whatever direction an oracle returns (a gradient, or a Moreau direction that
already contains its step ``alpha``), with the shape of ``w``, ``(T, nw)``. Optimizers know
nothing about chains. Formulas follow Fischer, *Implementation and convergence analysis of
first-order optimization methods for a fully-connected network* (SGD, momentum, Nesterov in
the ``v_prev`` form, RMSprop, Adam with bias correction).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Optimizer", "sgd", "momentum", "nesterov", "rmsprop", "adam", "OPTIMIZERS",
           "make_optimizer"]


class Optimizer(NamedTuple):
    init: Callable
    update: Callable


class EmptyState(NamedTuple):
    pass


class MomentumState(NamedTuple):
    v: np.ndarray


class RMSpropState(NamedTuple):
    r: np.ndarray


class AdamState(NamedTuple):
    count: int
    mu: np.ndarray
    nu: np.ndarray


def _check_positive(name, value):
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return v


def _check_unit(name, value, allow_zero=True):
    v = float(value)
    if not (0 <= v < 1) or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return v


def sgd(lr: float) -> Optimizer:
    """``w <- w - lr d`` (GD on full batches, SGD on mini-batches)."""
    lr = _check_positive("lr", lr)
    return Optimizer(lambda w: EmptyState(), lambda d, s: (lr * d, s))


def momentum(lr: float, beta: float = 0.9) -> Optimizer:
    """Heavy ball: ``v <- beta v + lr d``, ``w <- w - v``. ``beta = 0`` is :func:`sgd`."""
    lr, beta = _check_positive("lr", lr), _check_unit("beta", beta)

    def update(d, s):
        v = beta * s.v + lr * d
        return v, MomentumState(v)

    return Optimizer(lambda w: MomentumState(np.zeros_like(w)), update)


def nesterov(lr: float, beta: float = 0.9) -> Optimizer:
    """Nesterov momentum in the ``v_prev`` form: ``v <- beta v - lr d``,
    ``w <- w - beta v_prev + (1 + beta) v``. ``beta = 0`` is :func:`sgd`."""
    lr, beta = _check_positive("lr", lr), _check_unit("beta", beta)

    def update(d, s):
        v_prev = s.v
        v = beta * v_prev - lr * d
        return beta * v_prev - (1.0 + beta) * v, MomentumState(v)

    return Optimizer(lambda w: MomentumState(np.zeros_like(w)), update)


def rmsprop(lr: float, rho: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """``r <- rho r + (1 - rho) d^2``, ``w <- w - lr d / (sqrt(r) + eps)``."""
    lr, rho, eps = _check_positive("lr", lr), _check_unit("rho", rho), _check_positive("eps", eps)

    def update(d, s):
        r = rho * s.r + (1.0 - rho) * d * d
        return lr * d / (np.sqrt(r) + eps), RMSpropState(r)

    return Optimizer(lambda w: RMSpropState(np.zeros_like(w)), update)


def adam(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction (Kingma & Ba)."""
    lr, b1, b2 = _check_positive("lr", lr), _check_unit("b1", b1), _check_unit("b2", b2)
    eps = _check_positive("eps", eps)

    def update(d, s):
        k = s.count + 1
        mu = b1 * s.mu + (1.0 - b1) * d
        nu = b2 * s.nu + (1.0 - b2) * d * d
        mhat = mu / (1.0 - b1**k)
        vhat = nu / (1.0 - b2**k)
        return lr * mhat / (np.sqrt(vhat) + eps), AdamState(k, mu, nu)

    return Optimizer(lambda w: AdamState(0, np.zeros_like(w), np.zeros_like(w)), update)


OPTIMIZERS = {"sgd": sgd, "gd": sgd, "momentum": momentum, "nesterov": nesterov,
              "rmsprop": rmsprop, "adam": adam}


def make_optimizer(name: str, lr: float, **kwargs) -> Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr, **kwargs)
