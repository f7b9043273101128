"""Argument checks shared by every public entry point (one copy of each).

Each returns the converted value or raises a ``ValueError``/``TypeError`` whose message names
the argument, what was expected and what arrived (``"step must be a finite number > 0; got
-1"``). Nothing here knows about chains or problems.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["positive_number", "nonnegative_number", "finite_number", "positive_int",
           "nonnegative_int", "fraction", "real_array", "finite_array", "positive_array",
           "box", "choice"]


def _number(name: str, value, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        try:  # numpy 0-d arrays and numeric strings from config files
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be {expected}; got {value!r}") from None
    return float(value)


def positive_number(name: str, value) -> float:
    """A finite float ``> 0``."""
    v = _number(name, value, "a finite number > 0")
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return v


def finite_number(name: str, value) -> float:
    """A finite float (NaN and inf rejected)."""
    v = _number(name, value, "a finite number")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return v


def nonnegative_number(name: str, value) -> float:
    """A finite float ``>= 0``."""
    v = _number(name, value, "a finite number >= 0")
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return v


def fraction(name: str, value) -> float:
    """A float in ``[0, 1)`` (momentum and averaging coefficients)."""
    v = _number(name, value, "a number in [0, 1)")
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")
    return v


def _integer(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise (TypeError if not isinstance(value, (numbers.Real, np.floating)) else ValueError)(
            f"{name} must be an integer >= {lo}; got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}; got {value!r}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An integer ``>= 1`` (bools rejected)."""
    return _integer(name, value, 1)


def nonnegative_int(name: str, value) -> int:
    """An integer ``>= 0`` (bools rejected)."""
    return _integer(name, value, 0)


def real_array(name: str, value) -> np.ndarray:
    """``value`` as a float64 array (a new array only when a conversion is needed). Complex
    values are refused (numpy would drop their imaginary part with a mere warning), and so
    is anything that is not numbers."""
    if np.iscomplexobj(value):
        raise TypeError(f"{name} must be real numbers; got complex values "
                        f"({np.asarray(value).dtype})")
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers; got {type(value).__name__}") from None


def finite_array(name: str, value, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
    """A C-contiguous float64 array of finite entries (of ``shape`` if given; a new array
    only when a conversion is needed)."""
    arr = np.ascontiguousarray(real_array(name, value))
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}; expected {tuple(shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must have finite entries; found "
                         f"{int(np.sum(~np.isfinite(arr)))} non-finite")
    return arr


def positive_array(name: str, value, shape: Tuple[int, ...]) -> np.ndarray:
    """A float64 array of ``shape`` with finite entries ``> 0``."""
    arr = finite_array(name, value, shape)
    if arr.size and not np.all(arr > 0):
        raise ValueError(f"{name} must have finite entries > 0; got min {float(arr.min())!r}")
    return arr


def box(name: str, bounds, shape: Tuple[int, ...], shape_text: str = "") -> Tuple[np.ndarray,
                                                                                np.ndarray]:
    """A box ``(lower, upper)`` as two read-only float64 arrays of ``shape``, or raise.

    Entries may be infinite (``-inf`` in ``lower``, ``inf`` in ``upper``: free on that side)
    but not NaN, and ``lower <= upper`` everywhere (``lower == upper`` fixes an entry).
    ``lower = +inf`` or ``upper = -inf`` leave no admissible value and are rejected.
    ``shape_text`` names the shape in messages (e.g. ``"(nw,)"``).
    """
    shape = tuple(shape)
    expected = f"{shape_text} = {shape}" if shape_text else f"{shape}"
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        got = type(bounds).__name__ + (f" of length {len(bounds)}"
                                       if isinstance(bounds, (tuple, list)) else "")
        raise TypeError(f"{name} must be a pair (lower, upper) of arrays of shape {expected}; "
                        f"got {got}")
    out = []
    for side, b in zip(("lower", "upper"), bounds):
        try:
            arr = np.array(b, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} {side} must be an array of numbers of shape {expected}; "
                            f"got {b!r}") from None
        if arr.shape != shape:
            raise ValueError(f"{name} {side} has shape {arr.shape}; expected {expected}")
        if np.any(np.isnan(arr)):
            raise ValueError(f"{name} {side} has NaN entries ({int(np.isnan(arr).sum())}); use "
                             "-inf/inf for a free side")
        arr.setflags(write=False)
        out.append(arr)
    lower, upper = out
    if np.any(lower == np.inf) or np.any(upper == -np.inf):
        raise ValueError(f"{name} leave no admissible value: lower = +inf or upper = -inf "
                         f"somewhere")
    bad = np.argwhere(lower > upper)
    if bad.size:
        i = tuple(int(j) for j in bad[0])
        at = i[0] if len(i) == 1 else i
        raise ValueError(f"{name} need lower <= upper; got lower[{at}] = {float(lower[i])!r} > "
                         f"upper[{at}] = {float(upper[i])!r}")
    return lower, upper


def choice(name: str, value, options: Union[Sequence, dict]):
    """``value`` if it is one of ``options``, else a ValueError listing them."""
    try:
        ok = value in options
    except TypeError:  # unhashable
        ok = False
    if not ok:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(map(str, options))}")
    return value
