"""The chain of computations (Def. 1.1 of Roulet & Harchaoui): the protocols every oracle is
written against.

Notation (used in every module, docstring and test)
---------------------------------------------------
============  =======================================================================
``T``         number of stages (horizon of a control problem, depth of a network)
``w_t``       parameters of stage ``t``: a control (``nw`` entries) or a layer's weights
``x_t``       state after stage ``t``: a vector ``(nx,)`` for control, a mini-batch
              ``(batch, ...)`` of activations for a network; ``x_0`` is the initial state
``phi_t``     stage map ``x_t = phi_t(w_t, x_{t-1})``, ``t = 1..T``
``h``         objective of the last state, ``h(x_T)`` (for networks ``h(x_T; y)``)
``w``         all parameters as ONE flat float64 vector, shape ``(n,)``; a :class:`Layout`
              maps it to per-stage views; for a control chain the view is ``(T, nw)`` and
              row ``t`` (0-based) is the paper's ``w_{t+1}``
``X``         states ``x_0..x_T``: an array ``(T+1, nx)`` for control, a list for networks
``lam_t``     costate of ``x_t`` (gradient, or Moreau costate)
``g_t``       direction of ``w_t``; stacked flat like ``w``
``gamma_t``   step of the state line of the Moreau pass, ``alpha_t`` of the weight line
``data``      the data argument of every call: ``None`` for control, a mini-batch
              ``(inputs, labels)`` for a network
============  =======================================================================

Protocols
---------
- :class:`Stage`: ``forward(w_t, x) -> x_next``, ``vjp(w_t, x, lam) -> (gw, gx)``, the
  structure flags ``affine_w``/``affine_x`` (closed forms of the Moreau rule), and
  optionally ``hess_x``/``hess_w`` (Newton inner solver).
- :class:`Objective`: ``value(x, data)``, ``grad(x, data)``.
- :class:`Chain`: stages + objective + initial state, with the passes every oracle uses:
  ``objective``, ``forward``, ``value_and_gradient``, ``backward(spec)`` and
  ``forward_backward(spec)``. This class runs them as Python loops over the stages (a
  network has ~10 stages of BLAS-sized work, so that is fast enough);
  :class:`moreauctl.codegen.CasadiChain` runs the same passes as compiled loops over 10^5+
  homogeneous stages and keeps the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._validate import real_array
from .rules import BackwardSpec

__all__ = ["Layout", "Stage", "Objective", "Regularizer", "L2", "Chain", "Backward"]

Shape = Tuple[int, ...]


class Layout:
    """Flat float64 parameter vector ``w`` (n,) <-> per-stage parameters.

    Parameters
    ----------
    shapes : sequence over stages of sequences of shapes
        ``shapes[t]`` are the shapes of stage ``t``'s parameter arrays, e.g.
        ``((16, 64), (16,))`` for a dense layer's ``(W, b)``, ``((1,),)`` for a scalar
        control. Stage ``t`` owns ``w[offsets[t]:offsets[t+1]]``, its arrays stored one after
        the other in C order.
    dtype : numpy dtype, optional
        Floating type of the flat vector: float64 (default, every control chain) or float32
        (networks trained in single precision, ``nn.Classification(..., dtype="float32")``).
        :meth:`pack` converts to it, so every iterate, direction and optimizer state of a
        run follows it.

    Notes
    -----
    :meth:`homogeneous` builds the layout of a homogeneous control chain, whose :meth:`unpack`
    is the free view ``w.reshape(T, nw)`` and whose :meth:`pack` accepts ``(T, nw)``.
    """

    def __init__(self, shapes: Sequence[Sequence[Shape]], *, uniform: bool = False,
                 dtype=np.float64):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise ValueError(f"dtype must be float64 or float32; got {self.dtype}")
        self.shapes: Tuple[Tuple[Shape, ...], ...] = tuple(
            tuple(tuple(int(d) for d in s) for s in stage) for stage in shapes)
        sizes = [sum(int(np.prod(s)) for s in st) for st in self.shapes]
        self.sizes = np.array(sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.uniform = bool(uniform)

    @classmethod
    def homogeneous(cls, T: int, nw: int) -> "Layout":
        """``T`` stages with one ``(nw,)`` parameter each: ``unpack`` gives ``(T, nw)``."""
        return cls([((nw,),)] * T, uniform=True)

    @property
    def T(self) -> int:
        return len(self.shapes)

    @property
    def size(self) -> int:
        """``n``, the length of the flat vector."""
        return int(self.offsets[-1])

    def zeros(self) -> np.ndarray:
        return np.zeros(self.size, dtype=self.dtype)

    def segment(self, w: np.ndarray, t: int) -> np.ndarray:
        """Stage ``t``'s flat parameters, a view of ``w``."""
        return w[self.offsets[t]:self.offsets[t + 1]]

    def stage_arrays(self, segment: np.ndarray, t: int) -> Tuple[np.ndarray, ...]:
        """Stage ``t``'s parameter arrays (views) from its flat segment."""
        out, k = [], 0
        for s in self.shapes[t]:
            m = int(np.prod(s))
            out.append(segment[k:k + m].reshape(s))
            k += m
        return tuple(out)

    def unpack(self, w: np.ndarray):
        """Per-stage views of ``w``: ``(T, nw)`` for a uniform layout, else a list of ``T``
        tuples of arrays."""
        if self.uniform:
            return w.reshape(self.T, -1)
        return [self.stage_arrays(self.segment(w, t), t) for t in range(self.T)]

    def pack(self, params, what: str = "w") -> np.ndarray:
        """A new flat vector (of the layout's dtype) from per-stage parameters (the inverse
        of :meth:`unpack`), validated: shapes must match and entries be finite.

        Accepts the flat vector itself, ``(T, nw)`` (uniform layouts; also ``(T,)`` when
        ``nw == 1``) or a sequence of ``T`` tuples of arrays.
        """
        if not self.uniform and isinstance(params, (list, tuple)):
            flat = self._pack_nested(params, what)
        else:
            arr = _as_float_array(params, what)
            if arr.shape == (self.size,):
                flat = arr.astype(self.dtype, copy=True)
            elif self.uniform and arr.shape == (self.T, int(self.sizes[0])):
                flat = arr.reshape(-1).astype(self.dtype, copy=True)
            else:
                raise ValueError(f"{what} has shape {arr.shape}; expected {self.describe()}")
        _check_finite(flat, what)
        return flat

    def _pack_nested(self, params, what) -> np.ndarray:
        params = list(params)
        if len(params) != self.T:
            raise ValueError(f"{what} has {len(params)} stages; expected T = {self.T}")
        flat = np.empty(self.size, dtype=self.dtype)
        for t, (p, shapes) in enumerate(zip(params, self.shapes)):
            arrays = p if isinstance(p, (tuple, list)) else (p,)
            if len(arrays) != len(shapes):
                raise ValueError(f"{what}[{t}] has {len(arrays)} arrays; expected {len(shapes)} "
                                 f"with shapes {list(shapes)}")
            seg = self.segment(flat, t)
            k = 0
            for j, (a, s) in enumerate(zip(arrays, shapes)):
                arr = _as_float_array(a, f"{what}[{t}][{j}]")
                if arr.shape != s:
                    raise ValueError(f"{what}[{t}][{j}] has shape {arr.shape}; expected {s}")
                m = arr.size
                seg[k:k + m] = arr.ravel()
                k += m
        return flat

    def expand(self, per_stage: np.ndarray) -> np.ndarray:
        """Per-stage values ``(T,)`` -> one value per entry of ``w``, shape ``(n,)``."""
        return np.repeat(np.asarray(per_stage, dtype=float), self.sizes)

    def describe(self) -> str:
        if self.uniform:
            nw = int(self.sizes[0]) if self.T else 0
            return f"(T, nw) = ({self.T}, {nw})" + (f" or ({self.T},)" if nw == 1 else "")
        return f"{self.T} stages with parameter shapes {[list(s) for s in self.shapes]}"

    def __eq__(self, other):
        return (isinstance(other, Layout) and self.shapes == other.shapes
                and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.shapes, self.dtype.str))

    def __repr__(self):
        return f"Layout(n={self.size}, {self.describe()})"


def _as_float_array(a, what) -> np.ndarray:
    return real_array(what, a)  # complex values refused, not silently made real


def _check_finite(flat: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"{what} must have finite entries; found "
                         f"{int(np.sum(~np.isfinite(flat)))} non-finite")


class Stage:
    """One stage ``x_t = phi_t(w_t, x_{t-1})``; ``w_t`` is the stage's flat parameter segment.

    Subclasses implement :meth:`forward` and :meth:`vjp` (and may override ``vjp_w`` /
    ``vjp_x`` when one half is cheaper alone, and :meth:`vjp_with_output` when knowing the
    output ``y = phi(w, x)`` saves work, as for a layer whose activation's derivative is a
    function of its output). A stage may also define

    - ``hess_x(w, x, lam) -> (m, m)`` and ``hess_w(w, x, lam) -> (nw, nw)``: Hessians of
      ``lam^T phi`` (the Newton inner solver of the Moreau rule);
    - ``moreau_grad_x(w, x, lam, c)``: a closed form of the state line's
      ``grad env(c lam^T phi(w, .))(x)`` (the Moreau rule uses it instead of the inner
      algorithm; e.g. an element-wise ReLU);
    - ``moreau_grad_w(w, x, lam, c, inner, x_next, reg)``: the stage's own solve of the weight
      line's ``grad env(c (lam^T phi(., x) + r))(w)`` (exact or cheaper, e.g. in a subspace),
      or None to let the rule's inner algorithm run (e.g. a dense layer's reduced solve);
    - ``prox_w``, ``prox_x``...: closed forms for rules that need them (later oracles).

    Attributes
    ----------
    param_shapes : tuple of shapes
        Shapes of the stage's parameter arrays (their sizes add up to ``nw``).
    affine_w, affine_x : bool
        ``phi`` affine in ``w`` (resp. ``x``): the Moreau rule on that line is then exact
        and equal to the gradient rule.
    """

    param_shapes: Tuple[Shape, ...] = ()
    affine_w: bool = False
    affine_x: bool = False

    @property
    def nw(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes)

    def forward(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``phi(w, x)``."""
        raise NotImplementedError

    def vjp(self, w: np.ndarray, x: np.ndarray, lam: np.ndarray):
        """``(dphi/dw^T lam, dphi/dx^T lam)``: shapes ``(nw,)`` and that of ``x``."""
        raise NotImplementedError

    def vjp_with_output(self, w: np.ndarray, x: np.ndarray, y: np.ndarray, lam: np.ndarray,
                        out: Optional[np.ndarray] = None, need_x: bool = True,
                        need_w: bool = True):
        """:meth:`~moreauctl.Stage.vjp` when the caller also has ``y = phi(w, x)`` (the gradient pass stores
        every state; the rules' lines get it as ``x_next``).

        ``out`` (flat ``(nw,)``, optional): where the caller will store ``gw``; a stage may
        write ``gw`` there and return ``out`` itself (the caller then skips a copy).
        ``need_x=False`` / ``need_w=False``: the caller does not need ``gx`` (e.g. the
        costate of a network's inputs) / ``gw`` (a state line); a stage may skip that
        product and return None for it. The default ignores ``y``, ``out`` and the flags."""
        return self.vjp(w, x, lam)

    def vjp_w(self, w, x, lam) -> np.ndarray:
        return self.vjp(w, x, lam)[0]

    def vjp_x(self, w, x, lam) -> np.ndarray:
        return self.vjp(w, x, lam)[1]


class Objective:
    """The objective ``h(x_T; data)``.

    Subclasses implement :meth:`value` and :meth:`grad`; they may define
    ``hess(x, data) -> (m, m)`` (Newton inner solver) or ``moreau_grad(x, data, c)`` (a
    closed form of ``grad env(c h)``).
    """

    def value(self, x: np.ndarray, data: Any) -> float:
        """``h(x; data)`` at a last state ``x`` (``(nx,)``, or a batch for a network)."""
        raise NotImplementedError

    def grad(self, x: np.ndarray, data: Any) -> np.ndarray:
        """``grad h(x; data)``, shaped like ``x``."""
        raise NotImplementedError


class Regularizer:
    """A decomposable regularization ``r(w) = sum_t r_t(w_t)`` added to the objective (D.6):
    the chain minimizes ``h(f(w, x0)) + r(w)``. It enters the gradient (``+ grad r_t``) and
    every weight line of Algo 2: the Moreau rule's weight subproblem becomes
    ``argmin_v alpha_t (lam_t^T phi_t(v, x_{t-1}) + r_t(v)) + |v - w_t|^2/2``.

    Subclasses implement ``value(w_t, t)`` and ``grad(w_t, t)``, and may implement
    ``prox(z, t, c) = argmin_u c r_t(u) + |u - z|^2/2`` (a closed form for stages affine in
    ``w``) and ``hess(w_t, t)`` (the Newton inner solver).
    """

    def value(self, w: np.ndarray, t: int) -> float:
        raise NotImplementedError

    def grad(self, w: np.ndarray, t: int) -> np.ndarray:
        raise NotImplementedError

    def at(self, t: int, scale: float = 1.0) -> "StageRegularizer":
        """``scale * r_t`` alone (what the per-line rules receive)."""
        return StageRegularizer(self, t, float(scale))


@dataclass(frozen=True)
class StageRegularizer:
    """``s r_t`` of one stage: ``value(w_t)``, ``grad(w_t)``, ``prox(z, c)``, ``hess(w_t)``.

    The scale ``s`` is the paper's ``gamma_t`` when a backward pass runs Algo 2's rescaled
    recursion (E.2.1): there the costate is ``lamhat_t = gamma_t lam_t`` and the step
    ``alp_t = alpha_t / gamma_t``, so the weight line's ``alpha_t (lam_t^T phi_t + r_t)`` reads
    ``alp_t (lamhat_t^T phi_t + gamma_t r_t)``.
    """

    reg: Regularizer
    t: int
    scale: float = 1.0

    def value(self, w):
        return self.scale * self.reg.value(w, self.t)

    def grad(self, w):
        return self.scale * self.reg.grad(w, self.t)

    @property
    def has_prox(self) -> bool:
        return hasattr(self.reg, "prox")

    def hess(self, w):
        """Dense Hessian of ``s r_t`` (None if the regularizer has none)."""
        h = getattr(self.reg, "hess", None)
        return None if h is None else self.scale * h(w, self.t)

    def prox(self, z, c):
        """``argmin_u c s r_t(u) + |u - z|^2 / 2``."""
        return self.reg.prox(z, self.t, c * self.scale)


class L2(Regularizer):
    """Layer-wise weight decay ``r_t(w_t) = mu_t / 2 |w_t|^2`` (the paper's E.1.2 setting with
    ``mu = 1e-6``).

    Parameters
    ----------
    mu : float or array_like, shape (T,)
        ``mu_t >= 0`` per stage (a float for every stage).
    mask : callable, optional
        ``mask(t) -> ndarray of 0/1`` shaped like ``w_t``: which entries are decayed (e.g.
        weights but not biases); all of them by default.
    """

    def __init__(self, mu, mask: Optional[Callable[[int], np.ndarray]] = None):
        mu_arr = np.asarray(mu, dtype=float)
        if mu_arr.ndim > 1 or not np.all(np.isfinite(mu_arr)) or np.any(mu_arr < 0):
            raise ValueError(f"mu must be a finite number >= 0 or a (T,) array of them; got {mu!r}")
        self.mu = mu_arr
        self.mask = mask

    def _mu(self, t) -> float:
        return float(self.mu) if self.mu.ndim == 0 else float(self.mu[t])

    def _m(self, w, t):
        return w if self.mask is None else w * self.mask(t)

    def value(self, w, t):
        m = self._m(w, t)
        return 0.5 * self._mu(t) * float(np.vdot(m, m))

    def grad(self, w, t):
        return self._mu(t) * self._m(w, t)

    def hess(self, w, t):
        m = np.ones(w.size) if self.mask is None else np.ravel(self.mask(t)).astype(float)
        return np.diag(self._mu(t) * m)

    def prox(self, z, t, c):
        shrink = 1.0 / (1.0 + c * self._mu(t))
        if self.mask is None:
            return shrink * z
        m = self.mask(t)
        return np.where(m != 0, shrink * z, z)


@dataclass(frozen=True)
class Backward:
    """Output of a backward pass.

    Attributes
    ----------
    direction : ndarray, shape (n,)
        ``g_t`` of every stage, flat like ``w``.
    lam0 : ndarray or None
        Costate of ``x_0`` (None when the chain's ``input_costate`` is False).
    failed_stage : int or None
        Row ``t`` (0-based) of the first stage whose output was not finite; ``T`` for the
        objective's line; None when every value is finite.
    residuals : ndarray, shape (T+1, 2), optional
        With ``spec.diagnostics``: ``|grad F|`` of each subproblem at its solution, column 0
        for the state line (row ``T``: the objective's), column 1 for the weight line; NaN
        where a line used a closed form.
    costates : list, optional
        With ``spec.diagnostics`` (Python passes): ``lam_0..lam_T``.
    """

    direction: np.ndarray
    lam0: np.ndarray
    failed_stage: Optional[int] = None
    residuals: Optional[np.ndarray] = None
    costates: Optional[list] = None


class Chain:
    """Stages, objective and initial state; the passes run as Python loops over stages.

    Parameters
    ----------
    stages : sequence of Stage
    h : Objective
    x0 : ndarray or callable
        The initial state, or ``x0(data) -> x_0`` when it comes from the data (a network's
        inputs).
    layout : Layout, optional
        Default: from each stage's ``param_shapes``.
    regularizer : Regularizer, optional
        ``r(w) = sum_t r_t(w_t)`` added to the objective (D.6), e.g. :class:`~moreauctl.chain.L2`.
    input_costate : bool
        Whether the passes compute ``lam_0``, the costate of ``x_0`` (default True). A
        network's ``x_0`` is its data, whose costate nobody uses: with False the gradient
        pass skips stage 1's ``dphi/dx^T lam`` product and the Moreau pass its first state
        subproblem, and both report ``lam0 = None``.
    """

    def __init__(self, stages: Sequence[Stage], h: Objective,
                 x0: Union[np.ndarray, Callable[[Any], np.ndarray], None] = None,
                 layout: Optional[Layout] = None, regularizer: Optional[Regularizer] = None,
                 input_costate: bool = True):
        self.input_costate = bool(input_costate)
        self.stages = stages if isinstance(stages, Sequence) else list(stages)
        if not self.stages:
            raise ValueError("a chain needs at least one stage")
        self.h = h
        self._x0 = x0
        self.regularizer = regularizer
        self.layout = layout or Layout([st.param_shapes for st in self.stages])
        if self.layout.T != len(self.stages):
            raise ValueError(f"layout has {self.layout.T} stages; the chain has {len(self.stages)}")

    @property
    def horizon(self) -> int:
        """``T``."""
        return len(self.stages)

    # -- the data argument ------------------------------------------------------------
    def initial_state(self, data=None) -> np.ndarray:
        """``x_0`` for this data (the fixed initial state of a control chain)."""
        x0 = self._x0
        if callable(x0):
            return x0(data)
        if x0 is None:
            raise ValueError("this chain has no initial state: pass x0= (an array, or a "
                             "callable of the data)")
        return x0

    def check_params(self, w, what: str = "w") -> np.ndarray:
        """A new flat float64 copy of ``w`` (flat or per-stage), validated by the layout."""
        return self.layout.pack(w, what)

    def _flat(self, w) -> np.ndarray:
        """The passes take ``w`` flat ``(n,)`` of the layout's dtype (float64, or float32 for
        a network trained in single precision; cheap check: a wrong shape would otherwise
        give each stage a wrong slice, silently)."""
        dt = self.layout.dtype
        if getattr(w, "shape", None) != (self.layout.size,) or w.dtype != dt:
            raise ValueError(f"w must be a flat {dt} array of shape ({self.layout.size},); "
                             f"got {type(w).__name__} of shape {getattr(w, 'shape', None)} "
                             f"and dtype {getattr(w, 'dtype', None)} (convert per-stage "
                             "parameters with check_params)")
        return w

    # -- passes -----------------------------------------------------------------------
    def forward(self, w: np.ndarray, data=None):
        """States and cost.

        Returns
        -------
        cost : float
        X : list of T+1 states
        """
        w = self._flat(w)
        x = self.initial_state(data)
        X = [x]
        for t, st in enumerate(self.stages):
            x = st.forward(self.layout.segment(w, t), x)
            X.append(x)
        return float(self.h.value(x, data)) + self._r(w), X

    def objective(self, w: np.ndarray, data=None) -> float:
        """``h(f(w, x_0); data)``."""
        w = self._flat(w)
        x = self.initial_state(data)
        for t, st in enumerate(self.stages):
            x = st.forward(self.layout.segment(w, t), x)
        return float(self.h.value(x, data)) + self._r(w)

    def _r(self, w) -> float:
        """``r(w)`` (0 without a regularizer)."""
        reg = self.regularizer
        if reg is None:
            return 0.0
        return float(sum(reg.value(self.layout.segment(w, t), t) for t in range(self.horizon)))

    def _reg_at(self, t, scale=1.0):
        return None if self.regularizer is None else self.regularizer.at(t, scale)

    def gradient(self, w: np.ndarray, X, data=None):
        """Gradient back-propagation (Algo 4) from the states of :meth:`forward`.

        Returns
        -------
        G : ndarray, shape (n,), of ``w``'s dtype
        lam0 : costate of ``x_0`` (None when ``input_costate`` is False)
        """
        w = self._flat(w)
        if len(X) != self.horizon + 1:
            raise ValueError(f"X has {len(X)} states; expected T+1 = {self.horizon + 1}")
        G = np.empty(self.layout.size, dtype=w.dtype)
        lam = self.h.grad(X[-1], data)
        for t in range(self.horizon - 1, -1, -1):
            wt = self.layout.segment(w, t)
            seg = self.layout.segment(G, t)
            gw, lam = self.stages[t].vjp_with_output(wt, X[t], X[t + 1], lam, out=seg,
                                                     need_x=t > 0 or self.input_costate)
            if gw is not seg:
                seg[:] = np.ravel(gw)
            if self.regularizer is not None:
                seg += np.ravel(self.regularizer.grad(wt, t))
        return G, lam

    def value_and_gradient(self, w: np.ndarray, data=None):
        """``(cost, X, G, lam0)``: one forward and one backward pass (Algo 3-4)."""
        cost, X = self.forward(w, data)
        G, lam0 = self.gradient(w, X, data)
        return cost, X, G, lam0

    def backward(self, w: np.ndarray, X, data, spec: BackwardSpec) -> Backward:
        """Backward pass of Algo 2 with a rule and a step per line (see
        :mod:`moreauctl.rules`): ``lam_T = R_2(h)(x_T)``, then for ``t = T..1``
        ``g_t = R_5(...)(w_t)`` and ``lam_{t-1} = R_4(...)(x_{t-1})``, stopping at the first
        stage whose output is not finite."""
        w = self._flat(w)
        o_rule, x_rule, w_rule = spec.rules
        T = self.horizon
        if len(X) != T + 1:
            raise ValueError(f"X has {len(X)} states; expected T+1 = {T + 1}")
        # every entry is written below, or set to NaN on an early return (_unfinished)
        G = np.empty(self.layout.size, dtype=w.dtype)
        lam = o_rule.objective(self.h, X[T], data, spec.gam_h, spec.inner)
        lams = [None] * (T + 1) if spec.diagnostics else None
        resid = np.full((T + 1, 2), np.nan) if spec.diagnostics else None
        if not _finite(lam):
            return Backward(self._unfinished(G, T), lam, T, resid, lams)
        if spec.diagnostics:
            lams[T] = lam
            if o_rule.name == "mbp":
                y = -lam
                resid[T, 0] = np.linalg.norm(spec.gam_h * self.h.grad(X[T] + y, data) + y)
            elif hasattr(o_rule, "objective_residual"):
                resid[T, 0] = o_rule.objective_residual(self.h, X[T], data, lam, spec.gam_h)
        # the ALBP lines' penalty steps (only that rule takes them)
        pen_x, pen_w = spec.pen_x, spec.pen_w
        for t in range(T - 1, -1, -1):
            st, wt = self.stages[t], self.layout.segment(w, t)
            reg = self._reg_at(t, 1.0 if spec.reg_scale is None else spec.reg_scale[t])
            kw_x = {} if pen_x is None else {"pen": float(pen_x[t])}
            kw_w = {} if pen_w is None else {"pen": float(pen_w[t])}
            g = w_rule.weights(st, wt, X[t], lam, float(spec.alp[t]), spec.inner, X[t + 1], reg,
                               **kw_w)
            lam_prev = None
            if t > 0 or self.input_costate:
                lam_prev = x_rule.states(st, wt, X[t], lam, float(spec.gam[t]), spec.inner,
                                         X[t + 1], **kw_x)
            self.layout.segment(G, t)[:] = np.ravel(g)
            if not (_finite(g) and (lam_prev is None or _finite(lam_prev))):
                return Backward(self._unfinished(G, t), lam_prev, t, resid, lams)
            lam_t, lam = lam, lam_prev
            if spec.diagnostics:
                lams[t] = lam
                resid[t] = _residuals(st, wt, X[t], lam_t, g, lam, float(spec.alp[t]),
                                      float(spec.gam[t]), spec, reg, X[t + 1], kw_x, kw_w)
        return Backward(G, lam, None, resid, lams)

    def _unfinished(self, G, t):
        """``G`` with the stages the pass did not reach (rows ``< t``) set to NaN."""
        G[:self.layout.offsets[t]] = np.nan
        return G

    def forward_backward(self, w: np.ndarray, data, spec: BackwardSpec):
        """``(cost, X, Backward)``: :meth:`forward` then :meth:`backward`."""
        cost, X = self.forward(w, data)
        return cost, X, self.backward(w, X, data, spec)

    def __repr__(self):
        return f"{type(self).__name__}(T={self.horizon}, n={self.layout.size})"


def _residuals(st, w, x, lam, g, lam_prev, c_w, c_x, spec, reg=None, x_next=None, kw_x=None,
               kw_w=None) -> Tuple[float, float]:
    """``|grad F(y)|`` of the state and weight subproblems of one stage at the pass's
    solutions ``y = -lam_prev`` and ``y = -g`` (NaN for lines that solved no subproblem)."""
    _, x_rule, w_rule = spec.rules
    rx = rw = math.nan
    if hasattr(x_rule, "states_residual") and lam_prev is not None:
        rx = x_rule.states_residual(st, w, x, lam, lam_prev, c_x, x_next, **(kw_x or {}))
    if hasattr(w_rule, "weights_residual"):
        rw = w_rule.weights_residual(st, w, x, lam, g, c_w, x_next, reg, **(kw_w or {}))
    if x_rule.name == "mbp" and not st.affine_x and lam_prev is not None:
        y = -lam_prev
        rx = float(np.linalg.norm(c_x * st.vjp_x(w, x + y, lam) + y))
    if w_rule.name == "mbp" and (not st.affine_w or reg is not None):
        y = -np.ravel(g)
        gr = np.ravel(st.vjp_w(w + y, x, lam))
        if reg is not None:
            gr = gr + np.ravel(reg.grad(w + y))
        rw = float(np.linalg.norm(c_w * gr + y))
    return rx, rw


def _finite(a) -> bool:
    # a finite sum proves every entry finite (cheaper than np.isfinite on big arrays); an
    # overflowing sum of finite entries only sends us to the exact check
    s = float(np.sum(a))
    return math.isfinite(s) or bool(np.all(np.isfinite(a)))
