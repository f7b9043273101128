"""Method names -> what runs them. Each module registers what it defines.

Three tables, filled at import time by the modules that define their entries:

- :data:`ORACLES`: ``name -> factory(chain, **options) -> oracle`` (``moreauctl.oracles.*``);
- :data:`OPTIMIZERS`: ``name -> factory(lr, **options) -> Optimizer`` (``moreauctl.optimizers``);
- :data:`~moreauctl.METHODS`: ``name -> Method``, what :func:`moreauctl.solve` accepts. A
  first-order method pairs an oracle with an optimizer (``"moreau-adam"``: the Moreau
  oracle's directions through Adam); a solver method runs on its own (``"ipopt"``).

A new oracle is one file that defines it and calls :func:`~moreauctl.register_oracle` and
:func:`~moreauctl.register_method` (or :func:`register_oracle_methods` for the usual
``<prefix>-<optimizer>`` family); nothing else changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Dict, Optional

__all__ = ["Method", "ORACLES", "OPTIMIZERS", "METHODS", "register_oracle",
           "register_optimizer", "register_method", "register_oracle_methods", "get_method"]


@dataclass(frozen=True)
class Method:
    """One entry of :data:`~moreauctl.METHODS`.

    Attributes
    ----------
    name : str
    oracle, optimizer : str or None
        Names in :data:`ORACLES` and :data:`OPTIMIZERS` (first-order methods).
    step_option : str or None
        For a method whose step lives in the oracle (Moreau GD: ``step`` is ``alpha``), the
        oracle option set to ``step``; the optimizer then runs with learning rate ``step``
        on directions in gradient units, so ``w <- w - step * (g / alpha) = w - g``.
    run : callable or None
        Solver methods: ``run(problem, *, w0, verbose, options) -> SolveResult``.
    doc : str
        One line for listings.
    """

    name: str
    oracle: Optional[str] = None
    optimizer: Optional[str] = None
    step_option: Optional[str] = None
    run: Optional[Callable] = None
    doc: str = ""

    @property
    def is_solver(self) -> bool:
        return self.run is not None


#: Oracle factories by name: ``name -> factory(chain, **options) -> oracle``.
ORACLES: Dict[str, Callable] = {}
#: Optimizer factories by name: ``name -> factory(lr, **options) -> Optimizer``.
OPTIMIZERS: Dict[str, Callable] = {}
_METHODS: Dict[str, Method] = {}
#: Every method name :func:`moreauctl.solve` accepts (a live read-only view).
METHODS = MappingProxyType(_METHODS)


def _check_new(table, kind, name):
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {kind} name must be a non-empty string; got {name!r}")
    if name in table:
        raise ValueError(f"{kind} {name!r} is already registered")


def register_oracle(name: str, factory: Callable) -> Callable:
    """Register ``factory(chain, **options) -> oracle`` under ``name``."""
    _check_new(ORACLES, "oracle", name)
    ORACLES[name] = factory
    return factory


def register_optimizer(name: str, factory: Callable) -> Callable:
    """Register ``factory(lr, **options) -> Optimizer`` under ``name``."""
    _check_new(OPTIMIZERS, "optimizer", name)
    OPTIMIZERS[name] = factory
    return factory


def register_method(name: str, *, oracle: Optional[str] = None, optimizer: Optional[str] = None,
                    step_option: Optional[str] = None, run: Optional[Callable] = None,
                    doc: str = "") -> Method:
    """Register a method: an ``oracle`` with an ``optimizer``, or a solver's ``run``."""
    _check_new(_METHODS, "method", name)
    if run is None:
        if oracle not in ORACLES:
            raise ValueError(f"method {name!r}: unknown oracle {oracle!r}; registered: {sorted(ORACLES)}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"method {name!r}: unknown optimizer {optimizer!r}; "
                             f"registered: {sorted(OPTIMIZERS)}")
    elif oracle is not None or optimizer is not None:
        raise ValueError(f"method {name!r}: a solver method has no oracle or optimizer")
    m = Method(name, oracle, optimizer, step_option, run, doc)
    _METHODS[name] = m
    return m


def register_oracle_methods(oracle: str, prefix: str, *, step_option: Optional[str] = None,
                            doc: str = "") -> None:
    """``<prefix>-gd`` and ``<prefix>-sgd`` (the oracle's plain method: plain steps, with
    ``step`` routed to ``step_option`` if given), and ``<prefix>-<optimizer>`` for every
    other registered optimizer (``step`` is its learning rate)."""
    for opt in OPTIMIZERS:
        plain = opt in ("gd", "sgd")
        register_method(f"{prefix}-{opt}", oracle=oracle, optimizer="sgd" if plain else opt,
                        step_option=step_option if plain else None,
                        doc=f"{doc} ({'plain steps' if plain else opt})")


def get_method(name) -> Method:
    """The :class:`Method` called ``name``, or a ValueError listing them all."""
    try:
        return _METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(_METHODS)}") from None
