"""Update rules on directions, as pairs of small pure functions (optax style).

An optimizer is ``Optimizer(init, update)``:

- ``init(w) -> state``
- ``update(d, state, params=None) -> (delta, state)``; the iterate moves as
  ``w <- w - delta``. ``params`` is the current ``w`` (transforms such as
  :func:`projected` need it; the update rules ignore it).

``d`` is an oracle's direction, in gradient units (see
:class:`moreauctl.oracles.OracleOutput`), flat like ``w``. Optimizers know nothing about
chains. The learning rate ``lr`` is a float or a schedule ``count -> lr``
(:mod:`moreauctl.optimizers.schedules`); every state counts its updates. Formulas follow
Fischer, *Implementation and convergence analysis of first-order optimization methods for a
fully-connected network* (SGD, momentum, Nesterov in the ``v_prev`` form, RMSprop, Adam with
bias correction).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .. import _validate as v
from ..registry import OPTIMIZERS, register_optimizer
from .schedules import as_schedule, constant, exponential_decay, piecewise_constant

__all__ = ["Optimizer", "sgd", "momentum", "nesterov", "rmsprop", "adam", "projected",
           "OPTIMIZERS", "make_optimizer", "constant", "piecewise_constant",
           "exponential_decay"]


class Optimizer(NamedTuple):
    """An update rule: ``init(w) -> state`` and ``update(d, state, params=None) ->
    (delta, state)``; the iterate moves as ``w <- w - delta`` (``w``, ``d``, ``delta``
    flat, shape ``(n,)``)."""

    init: Callable
    update: Callable


class CountState(NamedTuple):
    count: int


class MomentumState(NamedTuple):
    count: int
    v: np.ndarray


class RMSpropState(NamedTuple):
    count: int
    r: np.ndarray


class AdamState(NamedTuple):
    count: int
    mu: np.ndarray
    nu: np.ndarray


def _rate(lr):
    """``count -> lr``; a float stays a float, so ``lr * d`` rounds as it always did."""
    if callable(lr):
        return as_schedule(lr)
    lr = v.positive_number("lr", lr)
    return lambda count: lr


def sgd(lr) -> Optimizer:
    """``w <- w - lr d`` (GD on full batches, SGD on mini-batches)."""
    rate = _rate(lr)

    def update(d, s, params=None):
        return rate(s.count) * d, CountState(s.count + 1)

    return Optimizer(lambda w: CountState(0), update)


def momentum(lr, beta: float = 0.9) -> Optimizer:
    """Heavy ball: ``v <- beta v + lr d``, ``w <- w - v``. ``beta = 0`` is :func:`sgd`."""
    rate, beta = _rate(lr), v.fraction("beta", beta)

    def update(d, s, params=None):
        vel = beta * s.v + rate(s.count) * d
        return vel, MomentumState(s.count + 1, vel)

    return Optimizer(lambda w: MomentumState(0, np.zeros_like(w)), update)


def nesterov(lr, beta: float = 0.9) -> Optimizer:
    """Nesterov momentum in the ``v_prev`` form: ``v <- beta v - lr d``,
    ``w <- w - beta v_prev + (1 + beta) v``. ``beta = 0`` is :func:`sgd`."""
    rate, beta = _rate(lr), v.fraction("beta", beta)

    def update(d, s, params=None):
        v_prev = s.v
        vel = beta * v_prev - rate(s.count) * d
        return beta * v_prev - (1.0 + beta) * vel, MomentumState(s.count + 1, vel)

    return Optimizer(lambda w: MomentumState(0, np.zeros_like(w)), update)


def rmsprop(lr, rho: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """``r <- rho r + (1 - rho) d^2``, ``w <- w - lr d / (sqrt(r) + eps)``."""
    rate, rho, eps = _rate(lr), v.fraction("rho", rho), v.positive_number("eps", eps)

    def update(d, s, params=None):
        r = rho * s.r + (1.0 - rho) * d * d
        return rate(s.count) * d / (np.sqrt(r) + eps), RMSpropState(s.count + 1, r)

    return Optimizer(lambda w: RMSpropState(0, np.zeros_like(w)), update)


def adam(lr, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam with bias correction (Kingma & Ba)."""
    rate, b1, b2 = _rate(lr), v.fraction("b1", b1), v.fraction("b2", b2)
    eps = v.positive_number("eps", eps)

    def update(d, s, params=None):
        k = s.count + 1
        mu = b1 * s.mu + (1.0 - b1) * d
        nu = b2 * s.nu + (1.0 - b2) * d * d
        mhat = mu / (1.0 - b1**k)
        vhat = nu / (1.0 - b2**k)
        return rate(s.count) * mhat / (np.sqrt(vhat) + eps), AdamState(k, mu, nu)

    return Optimizer(lambda w: AdamState(0, np.zeros_like(w), np.zeros_like(w)), update)


def projected(inner: Optimizer, lower, upper) -> Optimizer:
    """``inner``'s step, then the projection onto the box ``[lower, upper]``:
    ``w - delta = clip(w - delta_inner, lower, upper)``. ``lower``/``upper`` broadcast
    against ``w`` (use ``-inf``/``inf`` for free entries)."""
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if np.any(lo > hi):
        raise ValueError("projected: lower must be <= upper everywhere")

    def update(d, s, params=None):
        if params is None:
            raise ValueError("projected() needs params (the current w) in update(d, state, params)")
        delta, s = inner.update(d, s, params)
        return params - np.clip(params - delta, lo, hi), s

    return Optimizer(inner.init, update)


for _name, _factory in (("sgd", sgd), ("gd", sgd), ("momentum", momentum),
                        ("nesterov", nesterov), ("rmsprop", rmsprop), ("adam", adam)):
    register_optimizer(_name, _factory)


def make_optimizer(name: str, lr, **kwargs) -> Optimizer:
    """The optimizer registered as ``name`` with learning rate ``lr``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr, **kwargs)
