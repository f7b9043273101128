"""A control problem -> :class:`~moreauctl.CasadiChain`: generated, compiled passes behind the Chain protocol.

:func:`~moreauctl.compile_chain` derives the stage's primitives with CasADi
(:func:`~moreauctl.codegen.stages.stage_primitives`), generates one module with them, the
subproblem solvers (:mod:`~moreauctl.codegen.inner`) and the fused passes
(:mod:`~moreauctl.codegen.fused`), and lets numba cache the machine code on disk
(:func:`~moreauctl.codegen.build.build_module`). The chain is cached per problem object, so
``problem.chain`` (an alias) and repeated calls compile once.

:class:`~moreauctl.CasadiChain` runs every pass of the :class:`~moreauctl.chain.Chain` protocol
as one compiled loop over ``T`` homogeneous stages. Its ``stages`` are
:class:`~moreauctl.codegen.CasadiStage` views that evaluate CasADi's own Functions: the base class's Python
passes run on them (slowly) for any rule no kernel implements yet, and tests use them as the
twin of the compiled passes.
"""
from __future__ import annotations

import weakref
from typing import Mapping, Sequence

import casadi as ca
import numpy as np

from ..chain import Backward, Chain, Layout, Objective, Stage
from ..rules import KERNEL_CONSTANTS, RULE_ALBP, RULE_IBP, BackwardSpec
from .build import build_module
from .fused import SCALAR_PRIMITIVES, fused_source
from .inner import ARRAY_PRIMITIVES, inner_source
from .stages import stage_primitives

__all__ = ["compile_chain", "compile_casadi_chain", "CasadiChain", "CasadiStage",
           "CasadiObjective"]


_F64 = np.dtype(np.float64)


def _vec(dm) -> np.ndarray:
    return np.asarray(dm, dtype=float).ravel()


class CasadiStage(Stage):
    """``phi(w, x)`` evaluated by CasADi's virtual machine (plain numpy in and out).

    Parameters
    ----------
    functions : mapping
        The CasADi Functions of :func:`~moreauctl.codegen.stages.stage_primitives`.
    flags : mapping
        Its structure flags.
    """

    def __init__(self, functions: Mapping[str, ca.Function], flags: Mapping[str, object],
                 params=None):
        self._f = functions
        self._p = np.zeros(0) if params is None else np.asarray(params, dtype=float)
        self.param_shapes = ((int(flags["NW"]),),)
        self.affine_w = bool(flags["AFFINE_W"])
        self.affine_x = bool(flags["AFFINE_X"])

    def forward(self, w, x):
        return _vec(self._f["_phi"](w, x, self._p))

    def vjp(self, w, x, lam):
        gw, gx = self._f["_vjp"](w, x, lam, self._p)
        return _vec(gw), _vec(gx)

    def vjp_w(self, w, x, lam):
        return _vec(self._f["_vjp_w"](w, x, lam, self._p))

    def vjp_x(self, w, x, lam):
        return _vec(self._f["_vjp_x"](w, x, lam, self._p))

    def hess_x(self, w, x, lam):
        return np.asarray(self._f["_hess_xx"](w, x, lam, self._p), dtype=float)

    def hess_w(self, w, x, lam):
        return np.asarray(self._f["_hess_ww"](w, x, lam, self._p), dtype=float)


class CasadiObjective(Objective):
    """``h(x)`` evaluated by CasADi (takes no data)."""

    def __init__(self, functions: Mapping[str, ca.Function], flags: Mapping[str, object]):
        self._f = functions
        self.quadratic = bool(flags["QUAD_H"])

    def value(self, x, data=None):
        return float(self._f["_h"](x))

    def grad(self, x, data=None):
        return _vec(self._f["_h_grad"](x))

    def hess(self, x, data=None):
        return np.asarray(self._f["_h_hess"](x), dtype=float)


class _Repeated(Sequence):
    """The same stage ``T`` times (a time-invariant chain), without a list of ``T`` items."""

    def __init__(self, stage, T):
        self._stage, self._T = stage, T

    def __len__(self):
        return self._T

    def __getitem__(self, t):
        if isinstance(t, slice):
            return [self._stage] * len(range(*t.indices(self._T)))
        if not -self._T <= t < self._T:
            raise IndexError(t)
        return self._stage


def _no_data(data) -> None:
    if data is not None:
        raise ValueError(f"a control chain takes no data argument; got {type(data).__name__}")


class CasadiChain(Chain):
    """Compiled passes over ``T`` copies of one CasADi stage.

    Every method takes ``w`` flat ``(T*nw,)`` or as its free view ``(T, nw)`` (float64) and
    returns directions flat ``(T*nw,)``; states are ``(T+1, nx)``. Shapes and dtypes are
    checked on every call (about 0.1 us: the kernels do not check bounds, so a wrong shape
    would read outside the array); values are not (finite entries: :meth:`~moreauctl.Chain.check_params`).

    Attributes
    ----------
    kernels : module
        The generated module (names in :mod:`moreauctl.codegen.fused`).
    x0 : ndarray, shape (nx,)
    nx, nw : int
    njv : int
        Values stored per stage by the forward pass.
    store_jacobians : bool
        Whether the forward pass stores them (Algo 3), so the backward pass re-evaluates
        less of the stage; chosen when ``njv <= 2 (nx + nw)``, which keeps a gradient
        call's arrays within 3x the trajectory's.
    stored : {"jacobian", "transcendentals", "none"}
        What is stored: the Jacobian entries that vary with ``(w, x)`` (the backward pass is
        then multiply-adds), the stage's sin, cos, exp... values (the backward pass calls no
        libm function), or nothing.
    affine_w, affine_x, quadratic_h : bool
        Structure detected symbolically; the Moreau rule uses closed forms where they hold.
    dt : float or None
        The problem's time step (set by :func:`compile_chain`).
    functions : mapping of str to casadi.Function
        The per-stage CasADi Functions the kernels were generated from.
    """

    def __init__(self, kernels, functions: Mapping[str, ca.Function],
                 flags: Mapping[str, object], x0, horizon: int, params=None):
        self.kernels = kernels
        n_p = int(flags.get("NP", 0))
        P = np.zeros(0) if params is None else np.array(params, dtype=float).ravel()
        if P.shape != (n_p,):
            raise ValueError(f"params has shape {P.shape}; the stage takes (NP,) = ({n_p},)")
        #: run-time parameters of the stage (dt and the plant's), passed to every kernel
        self.params = P
        self.functions = dict(functions)
        self.flags = dict(flags)
        self.nx, self.nw = int(flags["NX"]), int(flags["NW"])
        self.njv = int(flags["NJV"])
        self.store_jacobians = bool(flags["STORE_JAC"])
        self.stored = str(flags["STORED"])
        self.affine_w = bool(flags["AFFINE_W"])
        self.affine_x = bool(flags["AFFINE_X"])
        self.quadratic_h = bool(flags["QUAD_H"])
        self.dt = None
        x0 = np.array(x0, dtype=float)
        x0.setflags(write=False)
        self.x0 = x0
        T = int(horizon)
        super().__init__(_Repeated(CasadiStage(functions, flags, P), T),
                         CasadiObjective(functions, flags), x0, Layout.homogeneous(T, self.nw))
        self._shape_w, self._shape_flat = (T, self.nw), (T * self.nw,)
        self._shape_X = (T + 1, self.nx)

    # -- helpers ------------------------------------------------------------------------
    def _W(self, w: np.ndarray, what: str = "w") -> np.ndarray:
        """``w`` as its ``(T, nw)`` view, after the cheap checks that keep the kernels (which
        do not check bounds) inside the array: a float64 ndarray of shape ``(T*nw,)`` or
        ``(T, nw)``. Validation of values (finite entries) is :meth:`check_params`'s."""
        shape = getattr(w, "shape", None)
        if shape == self._shape_w:
            W = w
        elif shape == self._shape_flat:
            W = w.reshape(self._shape_w)
        else:
            raise ValueError(f"{what} has shape {shape}; expected (T, nw) = {self._shape_w} "
                             f"or flat {self._shape_flat} (see check_params)")
        if w.dtype != _F64:
            raise TypeError(f"{what} must be a float64 array; got {w.dtype} (convert it with "
                            "chain.check_params)")
        return W

    def _X(self, X) -> np.ndarray:
        """States ``(T+1, nx)`` float64, checked like :meth:`_W`."""
        shape = getattr(X, "shape", None)
        if shape != self._shape_X:
            raise ValueError(f"X has shape {shape}; expected (T+1, nx) = {self._shape_X} "
                             "(the states of forward)")
        if X.dtype != _F64:
            raise TypeError(f"X must be a float64 array; got {X.dtype}")
        return X

    def _flat(self, w: np.ndarray) -> np.ndarray:
        """``w`` checked and flat ``(T*nw,)`` (the Python passes index it per stage)."""
        return self._W(w).reshape(self._shape_flat)

    def _jv(self, store: bool) -> np.ndarray:
        return np.empty((self.horizon if store else 0, self.njv))

    # -- passes -------------------------------------------------------------------------
    def forward(self, w, data=None):
        """``(cost, X)`` with ``X`` of shape ``(T+1, nx)``."""
        _no_data(data)
        X = np.empty(self._shape_X)
        return float(self.kernels.f_forward(self._W(w), self.x0, X, self.params)), X

    def objective(self, w, data=None) -> float:
        _no_data(data)
        return float(self.kernels.f_objective(self._W(w), self.x0, self.params))

    def gradient(self, w, X, data=None):
        """Algo 4 from the states of :meth:`forward`: ``(G (n,), lam0 (nx,))``."""
        _no_data(data)
        G = np.empty(self.layout.size)
        lam0 = np.empty(self.nx)
        self.kernels.f_backward_gradient(self._W(w), self._X(X), G.reshape(self._shape_w), lam0,
                                         self.params)
        return G, lam0

    def value_and_gradient(self, w, data=None):
        """``(cost, X, G, lam0)`` in one kernel call (at small ``T`` the per-call overhead
        dominates), storing the varying Jacobian entries when ``store_jacobians``."""
        _no_data(data)
        X = np.empty(self._shape_X)
        G = np.empty(self.layout.size)
        lam0 = np.empty(self.nx)
        cost = self.kernels.f_value_and_gradient(self._W(w), self.x0, X,
                                                 self._jv(self.store_jacobians),
                                                 G.reshape(self._shape_w), lam0, self.params)
        return float(cost), X, G, lam0

    def backward(self, w, X, data, spec: BackwardSpec) -> Backward:
        """The compiled Moreau/gradient pass when every rule of ``spec`` has a kernel code;
        otherwise the Python pass over the :class:`~moreauctl.codegen.CasadiStage` views."""
        _no_data(data)
        codes = spec.codes
        if codes is None:
            return super().backward(self._flat(w), self._X(X), data, spec)
        return self._backward_general(self._W(w), self._X(X), spec, codes, self._jv(False),
                                      False)

    def _backward_general(self, W, X, spec, codes, JV, use_jv) -> Backward:
        T = self.horizon
        G = np.empty(self.layout.size)
        lam0 = np.empty(self.nx)
        resid = np.empty((T + 1, 2))
        if _has_penalty_lines(spec, codes):
            pen_x, pen_w = spec.penalties(T)
            bad = self.kernels.f_backward_pen(
                W, X, JV, use_jv, float(spec.gam_h), spec.gam, spec.alp, pen_x, pen_w, codes,
                spec.inner.code, spec.inner.iters, spec.inner.tol, G.reshape(self._shape_w),
                lam0, self.params)
        else:
            bad = self.kernels.f_backward_moreau(
                W, X, JV, use_jv, float(spec.gam_h), spec.gam, spec.alp, codes,
                spec.inner.code, spec.inner.iters, spec.inner.tol, bool(spec.diagnostics),
                G.reshape(self._shape_w), lam0, resid, self.params)
        return Backward(G, lam0, None if bad < 0 else int(bad),
                        resid if spec.diagnostics else None)

    def forward_backward(self, w, data, spec: BackwardSpec):
        """``(cost, X, Backward)``. With the "paper" inner algorithm and no diagnostics (the
        common case) this is the fast path: the forward pass stores the stage values the
        first VJP of each stage needs, and the backward pass inlines the inner algorithm."""
        _no_data(data)
        codes = spec.codes
        if codes is None:
            return super().forward_backward(self._flat(w), data, spec)
        W = self._W(w)
        # the fast pass has the MBP/GBP lines only (it would read ALBP as MBP)
        only_mbp = not _has_penalty_lines(spec, codes)
        if spec.inner.name != "paper" or spec.diagnostics:
            cost, X = self.forward(W)
            return cost, X, self._backward_general(W, X, spec, codes, self._jv(False), False)
        k = self.kernels
        X = np.empty(self._shape_X)
        JV = self._jv(self.store_jacobians)
        if self.store_jacobians:
            cost = k.f_forward_jac(W, self.x0, X, JV, self.params)
        else:
            cost = k.f_forward(W, self.x0, X, self.params)
        if not only_mbp:   # the general pass, fed with the stored values like the fast one
            return float(cost), X, self._backward_general(W, X, spec, codes, JV,
                                                          self.store_jacobians)
        G = np.empty(self.layout.size)
        lam0 = np.empty(self.nx)
        bad = k.f_backward_moreau_paper(W, X, JV, self.store_jacobians, float(spec.gam_h),
                                        spec.gam, spec.alp, codes, G.reshape(self._shape_w),
                                        lam0, self.params)
        return float(cost), X, Backward(G, lam0, None if bad < 0 else int(bad))


def _has_penalty_lines(spec: BackwardSpec, codes) -> bool:
    """Whether the spec needs the IBP/ALBP lines of ``f_backward_pen`` (``codes`` reads an
    ALBP line without penalty as MBP)."""
    return any(c in (RULE_IBP, RULE_ALBP) for c in codes)


def compile_casadi_chain(stage: ca.Function, objective: ca.Function, x0,
                         horizon: int, params=None) -> CasadiChain:
    """Generate, compile (or load from the disk cache) the passes of the chain of
    ``horizon`` copies of ``stage``, ``h(phi(w_T, phi(w_{T-1}, ..., phi(w_1, x0))))``.

    ``stage`` is ``phi(w, x)``, or ``phi(w, x, p)`` with the values ``params`` of ``p``
    (run-time inputs of the kernels: another value reuses the compiled module)."""
    if (stage.n_in() == 3) != (params is not None):
        raise ValueError("give params exactly when the stage has a third input p")
    fns, flags = stage_primitives(stage, objective)
    scalar = {k: fns[k] for k in SCALAR_PRIMITIVES}
    arrays = {k: fns[k] for k in ARRAY_PRIMITIVES}
    consts = "\n".join(f"{k} = {v!r}" for k, v in {**flags, **KERNEL_CONSTANTS}.items())
    extra = consts + "\n\n" + inner_source() + "\n\n" + fused_source(flags)
    module = build_module(arrays, extra_source=extra, tag="chain", scalar_functions=scalar)
    return CasadiChain(module, fns, flags, x0, horizon, params)


_CHAINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def compile_chain(problem) -> CasadiChain:
    """The compiled chain of a :class:`~moreauctl.ControlProblem` (built once per problem
    object; ``problem.chain`` is an alias).

    Parameters
    ----------
    problem : ControlProblem
        Its ``stage`` (``phi(w, x)``), ``objective`` (``h(x)``), ``x0_chain`` and
        ``horizon`` define the chain.
    """
    try:
        return _CHAINS[problem]
    except KeyError:
        pass
    except TypeError:
        raise TypeError(f"compile_chain needs a ControlProblem; got {type(problem).__name__}") from None
    for attr in ("stage", "objective", "x0_chain", "horizon"):
        if not hasattr(problem, attr):
            raise TypeError(f"compile_chain needs a ControlProblem (with .{attr}); got "
                            f"{type(problem).__name__}")
    if getattr(problem, "runtime_params", False):
        # dt and the plant's parameters as run-time inputs: a problem with another dt or
        # parameter values reuses the compiled module
        chain = compile_casadi_chain(problem.stage_p, problem.objective, problem.x0_chain,
                                     problem.horizon, problem.stage_params)
    else:
        chain = compile_casadi_chain(problem.stage, problem.objective, problem.x0_chain,
                                     problem.horizon)
    # the time step, for what is defined per unit of time (e.g. the Moreau oracle's
    # gamma_time); compile_casadi_chain's chains have none
    chain.dt = getattr(problem, "dt", None)
    _CHAINS[problem] = chain
    return chain
