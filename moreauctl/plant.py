"""Plants: continuous-time dynamics written in CasADi.

Notation (used across moreauctl)
--------------------------------
- ``x``: state, ``nx`` entries; ``u``: control, ``nu`` entries.
- A plant is the ODE ``dx/dt = f(x, u)`` with ``f`` an SX expression of ``state`` and
  ``control``. Discretization (:mod:`moreauctl.discretize`) turns it into the stage map
  ``x_t = phi(w_t, x_{t-1})`` of a chain of computations (Def. 1.1 of Roulet & Harchaoui),
  where ``w_t`` is the control held over step ``t``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import casadi as ca

from ._validate import finite_number

__all__ = ["Plant"]


def _as_symbolic_vector(value, what: str) -> ca.SX:
    if not isinstance(value, ca.SX):
        raise TypeError(f"{what} must be a casadi.SX column of symbols; got {type(value).__name__}")
    if value.size2() != 1:
        raise ValueError(f"{what} must be a column vector (n, 1); got shape {value.shape}")
    if not value.is_valid_input():
        raise ValueError(f"{what} must be made of pure symbols (e.g. SX.sym('x', n)); got {value}")
    return value


@dataclass(frozen=True)
class Plant:
    """A continuous-time plant ``dx/dt = rhs(x, u)``.

    Parameters
    ----------
    state : casadi.SX, shape (nx, 1)
        Symbols of the state.
    control : casadi.SX, shape (nu, 1)
        Symbols of the control.
    rhs : casadi.SX, shape (nx, 1)
        Right-hand side ``f(x, u)``; may only depend on ``state``, ``control`` and symbols
        named in ``params``.
    name : str
        A short name, used in file names and plots.
    params : mapping of str to float, optional
        Values of the physical parameters. Symbols of ``rhs`` whose names are keys of
        ``params`` are substituted by the values; the mapping is kept for documentation
        (e.g. ``plant.params["m"]``).
    state_names, control_names : tuple of str, optional
        Labels for plots and tables; default ``x0, x1, ...`` and ``u0, ...``.

    Examples
    --------
    >>> import casadi as ca
    >>> x = ca.SX.sym("x", 2); u = ca.SX.sym("u", 1)
    >>> toy = Plant(state=x, control=u, rhs=ca.vertcat(x[1], -ca.sin(x[0]) + u[0]), name="toy")
    >>> toy.nx, toy.nu
    (2, 1)
    """

    state: ca.SX
    control: ca.SX
    rhs: ca.SX
    name: str = "plant"
    params: Mapping[str, float] = field(default_factory=dict)
    state_names: tuple = ()
    control_names: tuple = ()
    #: the parameter symbols, in the order of ``params`` (shape (n_params, 1))
    param_symbols: ca.SX = field(init=False, repr=False, compare=False)
    #: ``rhs`` before the values of ``params`` were substituted (an expression of
    #: ``state``, ``control`` and ``param_symbols``): what makes the parameters run-time
    #: inputs of the compiled kernels
    rhs_symbolic: ca.SX = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        x = _as_symbolic_vector(self.state, "state")
        u = _as_symbolic_vector(self.control, "control")
        rhs = self.rhs
        if isinstance(rhs, (list, tuple)):
            rhs = ca.vertcat(*rhs)
        if not isinstance(rhs, ca.SX):
            rhs = ca.SX(rhs)
        if rhs.shape != (x.numel(), 1):
            raise ValueError(
                f"rhs has shape {rhs.shape}; expected (nx, 1) = ({x.numel()}, 1) to match the state"
            )
        params = dict(self.params or {})
        for k, v in params.items():
            if not isinstance(k, str):
                raise TypeError(f"params keys must be parameter names (str); got {k!r}")
            params[k] = finite_number(f"params[{k!r}]", v)
        # Substitute named parameters, then insist that nothing free is left.
        free = ca.symvar(rhs)
        known = {s.name() for s in ca.symvar(ca.vertcat(x, u))}
        found = {}
        for s in free:
            nm = s.name()
            if nm in known:
                continue
            if nm in params:
                if nm in found:
                    raise ValueError(f"rhs has two different symbols named {nm!r}")
                found[nm] = s
            else:
                raise ValueError(
                    f"rhs depends on symbol {nm!r}, which is neither a state, a control nor a "
                    f"key of params (got params keys {sorted(params)})"
                )
        # one symbol per parameter, in the order of params (a fresh one when rhs does not
        # use it), so the compiled kernels take the values as a run-time vector
        syms = [found.get(nm, ca.SX.sym(nm)) for nm in params]
        object.__setattr__(self, "param_symbols", ca.vertcat(*syms) if syms else ca.SX(0, 1))
        object.__setattr__(self, "rhs_symbolic", rhs)
        if found:
            subs = list(found)
            rhs = ca.substitute(rhs, ca.vertcat(*[found[n] for n in subs]),
                                ca.DM([params[n] for n in subs]))
        object.__setattr__(self, "rhs", rhs)
        object.__setattr__(self, "params", MappingProxyType(params))
        if not self.state_names:
            object.__setattr__(self, "state_names", tuple(f"x{i}" for i in range(x.numel())))
        if not self.control_names:
            object.__setattr__(self, "control_names", tuple(f"u{i}" for i in range(u.numel())))
        if len(self.state_names) != x.numel():
            raise ValueError(f"state_names has {len(self.state_names)} labels; expected nx = {x.numel()}")
        if len(self.control_names) != u.numel():
            raise ValueError(f"control_names has {len(self.control_names)} labels; expected nu = {u.numel()}")

    @property
    def nx(self) -> int:
        """Number of states."""
        return int(self.state.numel())

    @property
    def nu(self) -> int:
        """Number of controls."""
        return int(self.control.numel())

    def ode(self) -> ca.Function:
        """The right-hand side as a CasADi Function ``f(x, u) -> xdot``."""
        return ca.Function(f"{self.name}_ode", [self.state, self.control], [self.rhs],
                           ["x", "u"], ["xdot"])

    def __repr__(self) -> str:
        return f"Plant(name={self.name!r}, nx={self.nx}, nu={self.nu}, params={dict(self.params)})"
