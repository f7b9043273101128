"""Learning-rate schedules: ``schedule(count) -> lr`` with ``count = 0, 1, ...`` the number
of updates already made (optax's convention). Any optimizer of
:mod:`moreauctl.optimizers` takes a float or one of these as its learning rate."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .. import _validate as v

__all__ = ["Schedule", "constant", "piecewise_constant", "exponential_decay", "as_schedule"]

Schedule = Callable[[int], float]


def constant(lr: float) -> Schedule:
    """``lr`` at every update."""
    lr = v.positive_number("lr", lr)
    return lambda count: lr


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """``values[i]`` for ``boundaries[i-1] <= count < boundaries[i]`` (``len(values) ==
    len(boundaries) + 1``, boundaries increasing): the step tables of the SVGD paper
    (e.g. 0.1 for 80 epochs, then 0.01, then 0.001, with boundaries in updates)."""
    b = [v.nonnegative_int(f"boundaries[{i}]", x) for i, x in enumerate(boundaries)]
    vals = [v.positive_number(f"values[{i}]", x) for i, x in enumerate(values)]
    if len(vals) != len(b) + 1:
        raise ValueError(f"piecewise_constant needs len(values) == len(boundaries) + 1; got "
                         f"{len(vals)} values and {len(b)} boundaries")
    if any(b2 <= b1 for b1, b2 in zip(b, b[1:])):
        raise ValueError(f"boundaries must increase; got {b}")
    edges = np.asarray(b)
    return lambda count: vals[int(np.searchsorted(edges, count, side="right"))]


def exponential_decay(lr: float, rate: float, every: int) -> Schedule:
    """``lr * rate ** (count / every)``."""
    lr = v.positive_number("lr", lr)
    rate = v.positive_number("rate", rate)
    every = v.positive_int("every", every)
    return lambda count: lr * rate ** (count / every)


def as_schedule(lr) -> Schedule:
    """A float becomes :func:`constant`; a callable is checked on ``count = 0``."""
    if callable(lr):
        v.positive_number("the schedule's learning rate at count 0", lr(0))
        return lr
    return constant(lr)
