"""Finite-horizon control problems, folded into the form ``h(f(w, x0))`` of Def. 1.1.

Notation
--------
- ``T`` (``horizon``): number of stages; ``t = 1..T`` in the paper, ``t = 0..T-1`` as a
  Python row index of ``w``.
- ``w``: controls, shape ``(T, nw)``; row ``t`` is the paper's ``w_{t+1}``.
- ``X``: states, shape ``(T+1, nx)``; row ``t`` is ``x_t``, row 0 is ``x0``.
- ``phi(w_t, x_{t-1}) -> x_t``: the discretized stage (one per step, time-invariant).
- ``h(x_T)``: the objective.

A running cost ``l(x, u)`` is folded into the chain by state augmentation: the state gets one
more entry ``c`` with ``dc/dt = l(x, u)``, ``c(0) = 0``, discretized with the same scheme, and
the objective becomes ``h(x_T) + c_T``. So every problem, with or without stage cost, is
``h(f(w, x0))`` and every oracle works on it unchanged.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple, Union

import casadi as ca
import numpy as np

from . import _validate as v
from .codegen import compile_chain
from .discretize import SCHEMES, discretize
from .plant import Plant

__all__ = ["ControlProblem"]

CostSpec = Union[Callable, ca.SX, None]


def _check_x0(x0, nx):
    arr = np.array(v.real_array("x0", x0), dtype=float)  # a copy (made read-only below)
    arr = np.atleast_1d(np.squeeze(arr)) if arr.ndim > 1 and arr.size == nx else arr
    if arr.shape != (nx,):
        raise ValueError(f"x0 has shape {np.shape(x0)}; expected (nx,) = ({nx},)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"x0 must have finite entries; got {arr.tolist()}")
    return arr


def _scalar_cost(spec, args, signature):
    """The SX scalar of a cost ``spec`` (a function called on the symbols ``args``, or an
    expression), checked against its ``signature`` (``"stage_cost(x, u)"``): the function
    takes exactly those arguments, and the expression uses no other symbol."""
    what = signature.split("(")[0]
    if callable(spec):
        try:
            inspect.signature(spec).bind(*args)
        except TypeError as e:
            raise TypeError(f"{what} must be a function {signature} -> casadi.SX scalar; "
                            f"it cannot be called with {len(args)} argument"
                            f"{'s' if len(args) > 1 else ''} ({e})") from None
        except ValueError:  # no signature to inspect (a builtin): let the call tell
            pass
        expr = spec(*args)
    else:
        expr = spec
    if isinstance(expr, (int, float)):
        expr = ca.SX(expr)
    if not isinstance(expr, ca.SX):
        raise TypeError(f"{what} must return a casadi.SX scalar; got {type(expr).__name__}")
    if expr.shape != (1, 1):
        raise ValueError(f"{what} must be a scalar; got shape {expr.shape}")
    allowed = ca.symvar(ca.vertcat(*args))
    foreign = [s.name() for s in ca.symvar(expr)
               if not any(ca.is_equal(s, a) for a in allowed)]
    if foreign:
        raise ValueError(f"{what} uses the symbol{'s' if len(foreign) > 1 else ''} {foreign}, "
                         f"which {signature} does not receive: it may depend only on its "
                         f"argument{'s' if len(args) > 1 else ''} (write constants as numbers)")
    return expr


@dataclass(frozen=True, eq=False)
class ControlProblem:
    """``min_w h(x_T)`` s.t. ``x_t = phi(w_t, x_{t-1})``, ``t = 1..T``, ``x_0`` given.

    Parameters
    ----------
    plant : Plant
        Continuous-time dynamics.
    horizon : int
        Number of stages ``T >= 1``.
    dt : float
        Time step ``> 0``; the physical horizon is ``T * dt``.
    x0 : array_like, shape (plant.nx,)
        Initial state (finite).
    terminal_cost : callable or casadi.SX
        ``h``: a function of the state symbols ``x`` (SX, shape (nx, 1)) returning an SX
        scalar, or an SX expression of ``plant.state``.
    stage_cost : callable, optional
        ``l(x, u)`` returning an SX scalar; integrated over time and folded into the chain by
        state augmentation (see the module docstring).
    scheme : {"euler", "heun", "rk4"}
        Discretization, control held constant over each step.
    substeps : int
        Sub-steps per stage (the control stays constant over them).
    name : str, optional
        Label for results and plots.
    control_bounds : (array_like, array_like), optional
        ``(lower, upper)``, each of shape ``(nw,)``: the box ``lower <= w_t <= upper`` for
        every stage (``-inf``/``inf`` for a free side; NaN and ``lower > upper`` are
        rejected). Every method of :func:`moreauctl.solve` keeps its iterates in the box
        (projection for first-order and Moreau updates, bounds for IPOPT and L-BFGS-B,
        clamping in iLQR's backward pass); a ``w0`` outside the box is an error, and the
        default start is the projection of zero onto the box.
    runtime_params : bool
        Compile ``dt`` and the plant's parameters as run-time inputs of the kernels (from
        the attribute ``stage_p``): a problem with another ``dt`` or parameter values, same plant,
        scheme and costs, reuses the compiled module (a fixed-total-time sweep compiles
        once). Off by default: with the values compiled in, CasADi folds constant
        subexpressions (``dt * g / l`` into one number), which changes the last bits of the
        passes; the numbers pinned before issue 12 keep their bits that way.

    Attributes
    ----------
    nx : int
        State size of the chain (``plant.nx + 1`` with a stage cost).
    nw : int
        Controls per stage (``plant.nu``).
    stage : casadi.Function
        ``phi(w, x) -> x_next`` (inputs named ``w``, ``x``; output ``x_next``).
    stage_p : casadi.Function
        ``phi(w, x, p) -> x_next`` with ``p = (dt, *plant.params.values())`` an input: the
        Function the kernels are generated from (``stage(w, x) = stage_p(w, x,
        stage_params)``); a problem of another ``dt`` or parameter values at the same plant,
        scheme and costs has the same ``stage_p`` and reuses the compiled kernels.
    stage_params : ndarray
        ``p`` of this problem.
    objective : casadi.Function
        ``h(x) -> h``.
    x0_chain : ndarray, shape (nx,)
        Initial state of the chain (augmented with a zero accumulated cost if needed).
    """

    plant: Plant
    horizon: int
    dt: float
    x0: np.ndarray
    terminal_cost: CostSpec
    stage_cost: Optional[Callable] = None
    scheme: str = "euler"
    substeps: int = 1
    name: Optional[str] = None
    control_bounds: Optional[Tuple[np.ndarray, np.ndarray]] = None
    runtime_params: bool = False
    stage: ca.Function = field(init=False, repr=False)
    objective: ca.Function = field(init=False, repr=False)
    stage_p: ca.Function = field(init=False, repr=False)
    stage_params: np.ndarray = field(init=False, repr=False)
    x0_chain: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.plant, Plant):
            raise TypeError(f"plant must be a moreauctl.Plant; got {type(self.plant).__name__}")
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("horizon", v.positive_int("horizon", self.horizon))
        set_("dt", v.positive_number("dt", self.dt))
        set_("substeps", v.positive_int("substeps", self.substeps))
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {self.scheme!r}; choose one of {sorted(SCHEMES)}")
        p = self.plant
        x0 = _check_x0(self.x0, p.nx)
        x0.setflags(write=False)
        set_("x0", x0)
        if self.terminal_cost is None:
            raise ValueError("terminal_cost is required: a function h(x) -> SX scalar")
        if self.control_bounds is not None:
            set_("control_bounds", v.box("control_bounds", self.control_bounds, (p.nu,), "(nw,)"))
        x, u = p.state, p.control
        h = _scalar_cost(self.terminal_cost, (x,), "terminal_cost(x)")
        if self.stage_cost is None:
            xs, rhs, x0c = x, p.rhs, x0
            h_aug = h
        else:
            ell = _scalar_cost(self.stage_cost, (x, u), "stage_cost(x, u)")
            c = ca.SX.sym("c", 1)
            xs = ca.vertcat(x, c)
            rhs = ca.vertcat(p.rhs, ell)
            x0c = np.concatenate([x0, [0.0]])
            h_aug = h + c
        x_next = discretize(rhs, xs, u, self.dt, self.scheme, self.substeps)
        w = ca.SX.sym("w", p.nu)
        x_chain = ca.SX.sym("x", xs.numel())
        phi_expr = ca.substitute(x_next, ca.vertcat(xs, u), ca.vertcat(x_chain, w))
        h_expr = ca.substitute(h_aug, xs, x_chain)
        set_("stage", ca.Function("phi", [w, x_chain], [phi_expr], ["w", "x"], ["x_next"]))
        set_("objective", ca.Function("h", [x_chain], [h_expr], ["x"], ["h"]))
        # The same stage with dt and the plant's parameters as a third input p = (dt,
        # params...): the compiled kernels are generated from this one and take p at run
        # time, so another dt or parameter value reuses them (nothing is compiled).
        dt_sym = ca.SX.sym("dt")
        rhs_p = p.rhs_symbolic if self.stage_cost is None else ca.vertcat(p.rhs_symbolic, ell)
        x_next_p = discretize(rhs_p, xs, u, dt_sym, self.scheme, self.substeps)
        p_sym = ca.vertcat(dt_sym, p.param_symbols)
        phi_p = ca.substitute(x_next_p, ca.vertcat(xs, u), ca.vertcat(x_chain, w))
        set_("stage_p", ca.Function("phi", [w, x_chain, p_sym], [phi_p], ["w", "x", "p"],
                                    ["x_next"]))
        values = np.array([self.dt] + [p.params[k] for k in p.params], dtype=float)
        values.setflags(write=False)
        set_("stage_params", values)
        set_("runtime_params", bool(self.runtime_params))
        n_args = p.nu + 2 * xs.numel() + values.size
        if self.runtime_params and n_args > 30:
            raise ValueError(
                f"runtime_params=True needs nw + 2 nx + n_params <= 30 (the scalar stage "
                f"functions numba inlines take that many arguments); this problem has "
                f"{p.nu} + 2*{xs.numel()} + {values.size} = {n_args}: keep runtime_params=False")
        x0c = np.array(x0c, dtype=float)
        x0c.setflags(write=False)
        set_("x0_chain", x0c)
        if self.name is None:
            set_("name", f"{p.name}-T{self.horizon}")

    # -- sizes ------------------------------------------------------------------
    @property
    def nx(self) -> int:
        return int(self.stage.size1_in(1))

    @property
    def nw(self) -> int:
        return int(self.stage.size1_in(0))

    @property
    def T(self) -> int:
        return self.horizon

    def zeros(self) -> np.ndarray:
        """Zero controls, shape ``(T, nw)``."""
        return np.zeros((self.horizon, self.nw))

    @property
    def cost_states(self) -> Tuple[int, ...]:
        """Indices of the chain's state that accumulate the running cost (the last one when
        there is a ``stage_cost``, none otherwise). iLQR keeps the curvature of these
        entries of the stage (the quadratized running cost) and drops that of the others
        (the dynamics): Gauss-Newton on the original problem."""
        return () if self.stage_cost is None else (self.nx - 1,)

    def with_horizon(self, horizon: int, dt: Optional[float] = None,
                     x0=None) -> "ControlProblem":
        """The same problem with another horizon (and optionally another ``dt`` or ``x0``);
        bounds, costs and scheme are kept."""
        return ControlProblem(self.plant, horizon, self.dt if dt is None else dt,
                              self.x0 if x0 is None else x0, self.terminal_cost,
                              self.stage_cost, self.scheme, self.substeps,
                              control_bounds=self.control_bounds,
                              runtime_params=self.runtime_params)

    # -- control bounds ---------------------------------------------------------------
    @property
    def bounded(self) -> bool:
        """Whether the problem has ``control_bounds``."""
        return self.control_bounds is not None

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds per control, shape ``(nw,)`` (``-inf`` without bounds)."""
        return self.control_bounds[0] if self.bounded else np.full(self.nw, -np.inf)

    @property
    def upper(self) -> np.ndarray:
        """Upper bounds per control, shape ``(nw,)`` (``inf`` without bounds)."""
        return self.control_bounds[1] if self.bounded else np.full(self.nw, np.inf)

    def project(self, w) -> np.ndarray:
        """``w`` (T, nw) clipped onto the box (a new array; unchanged without bounds)."""
        w = self.check_w(w)
        return np.clip(w, self.lower, self.upper) if self.bounded else w.copy()

    def start(self, w0=None, what: str = "w0") -> np.ndarray:
        """The start point of a solver: ``w0`` validated (shape, finite, inside the box),
        or, when None, zero projected onto the box. Shape ``(T, nw)``.

        Raises
        ------
        ValueError
            When ``w0`` leaves the box, naming the first offending entry (project it first
            with :meth:`project` if that is what you mean).
        """
        if w0 is None:
            return self.project(self.zeros())
        w = self.check_w(w0, what)
        if self.bounded:
            lo, hi = self.control_bounds
            out = (w < lo) | (w > hi)
            if out.any():
                t, i = (int(a[0]) for a in np.nonzero(out))
                raise ValueError(
                    f"{what} is outside control_bounds at {int(out.sum())} entries; first: "
                    f"{what}[{t}, {i}] = {float(w[t, i])!r} not in [{float(lo[i])!r}, "
                    f"{float(hi[i])!r}] (project it with problem.project({what}) if that is "
                    "what you mean)")
        return w

    # -- validation shared by every public entry point ------------------------------
    def check_w(self, w, what: str = "w") -> np.ndarray:
        """Return ``w`` as a C-contiguous float64 array of shape ``(T, nw)``, or raise."""
        if w is None:
            return self.zeros()
        arr = v.real_array(what, w)
        T, nw = self.horizon, self.nw
        if arr.shape == (T,) and nw == 1:
            arr = arr.reshape(T, 1)
        if arr.shape != (T, nw):
            raise ValueError(f"{what} has shape {arr.shape}; expected (T, nw) = ({T}, {nw})")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} must have finite entries; found {int(np.sum(~np.isfinite(arr)))} non-finite")
        return np.ascontiguousarray(arr)

    # -- the compiled chain -----------------------------------------------------
    @property
    def chain(self):
        """Alias of :func:`moreauctl.codegen.compile_chain` ``(self)``: the compiled
        :class:`~moreauctl.codegen.CasadiChain` (built once per problem, cached there)."""
        return compile_chain(self)

    # -- symbolic references (tests, IPOPT) ---------------------------------------
    def casadi_rollout(self) -> ca.Function:
        """The whole rollout as one SX Function ``J(W) -> h(x_T)``, ``W`` of shape (T*nw, 1)
        stacked stage by stage. Reference for tests and the CasADi peer in benchmarks;
        its size grows linearly in ``T``."""
        T, nw = self.horizon, self.nw
        W = ca.SX.sym("W", T * nw)
        xk = ca.SX(self.x0_chain)
        for t in range(T):
            xk = self.stage(W[t * nw:(t + 1) * nw], xk)
        return ca.Function("J", [W], [self.objective(xk)], ["W"], ["J"])

    def __repr__(self):
        b = "" if not self.bounded else (f", control_bounds=({self.lower.tolist()}, "
                                         f"{self.upper.tolist()})")
        return (f"ControlProblem(plant={self.plant.name!r}, horizon={self.horizon}, dt={self.dt}, "
                f"scheme={self.scheme!r}, x0={self.x0.tolist()}{b})")
