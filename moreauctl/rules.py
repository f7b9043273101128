r"""Back-propagation rules, one per line of Algo 2, and the Moreau rule's inner algorithms.

The backward pass of Algo 2 (rescaled as in E.2.1) has three kinds of lines, each with a
step ``c`` and a *rule* ``R``::

    line 2 (objective)  lam_T     = R(h)(x_T; c = gam_h)
    line 4 (states)     lam_{t-1} = R(lam_t^T phi_t(w_t, .))(x_{t-1}; c = gam_t)
    line 5 (weights)    g_t       = R(lam_t^T phi_t(., x_{t-1}))(w_t; c = alp_t)

The rules (short paper, Sec. 3; long paper, Algo 1-5):

``GBP`` (gradient back-propagation)
    ``R(f)(z; c) = c grad f(z)``: the linearization.
``MBP`` (Moreau back-propagation)
    ``R(f)(z; c) = grad env(c f)(z) = -argmin_y c f(z + y) + |y|^2 / 2``, solved inexactly by
    an inner algorithm (:class:`Inner`); exact (and equal to GBP) when ``f`` is linear, as
    for a stage affine in the variable; one Newton step when ``f`` is quadratic; a closed
    form when the objective has ``moreau_grad`` or the stage ``moreau_grad_x``.

Mixing rules per line gives the family of the short paper (e.g. ProxProp is GBP on lines
2 and 4 and an inversion rule on line 5).

The integer codes below are shared with the generated kernels (the code generator writes
them into every generated module), so they are defined here and nowhere else. The
functions here are the plain-numpy implementation of each rule on one stage, for chains
whose stages are Python objects (network layers) and as the twin of the compiled kernels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import _validate as v

__all__ = ["RULE_GBP", "RULE_MBP", "RULE_IBP", "RULES", "INNER_PAPER", "INNER_GD",
           "INNER_NEWTON", "INNERS", "KIND_H", "KIND_X", "KIND_W", "LINES", "Inner", "Rule",
           "GBP", "MBP", "BackwardSpec", "parse_rules", "prox_direction", "paper_step"]

# ---- codes shared with the generated kernels (moreauctl.codegen writes them out) ----
RULE_GBP = 0     #: gradient back-propagation: linearize the line
RULE_MBP = 1     #: Moreau back-propagation: gradient of the Moreau envelope (a prox)
RULE_IBP = 2     #: regularized inversion (reserved; see issue 11)
INNER_PAPER = 0  #: one Goldstein gradient step, then one Barzilai-Borwein step (E.2.1)
INNER_GD = 1     #: gradient steps with Armijo backtracking
INNER_NEWTON = 2  #: damped Newton with the exact Hessian, gradient fallback
KIND_H = 0       #: subproblem  c h(x + y)             + |y|^2/2
KIND_X = 1       #: subproblem  c lam^T phi(w, x + y)  + |y|^2/2
KIND_W = 2       #: subproblem  c lam^T phi(w + y, x)  + |y|^2/2

INNERS = {"paper": INNER_PAPER, "gd": INNER_GD, "newton": INNER_NEWTON}
#: Lines of Algo 2, in the order of a 3-sequence of rules. "controls" is accepted for
#: "weights" (the control-theory name).
LINES = ("objective", "states", "weights")
_LINE_ALIASES = {"controls": "weights"}

#: Codes the generated kernels understand, by module-level constant name.
KERNEL_CONSTANTS = {name: globals()[name] for name in (
    "RULE_GBP", "RULE_MBP", "RULE_IBP", "INNER_PAPER", "INNER_GD", "INNER_NEWTON",
    "KIND_H", "KIND_X", "KIND_W")}


# ---------------------------------------------------------------------------------------
# inner algorithms on  F(y) = c f(z + y) + |y|^2/2, from y = 0
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inner:
    """Inner algorithm ``A`` of the Moreau rule.

    Parameters
    ----------
    name : {"paper", "gd", "newton"}
        ``"paper"``: one gradient step with a Goldstein line search, then one
        Barzilai-Borwein step (E.2.1). ``"gd"``: up to ``iters`` gradient steps with Armijo
        backtracking. ``"newton"``: damped Newton with the exact Hessian (a gradient step
        where it is not positive definite).
    iters : int
        Iteration cap of ``"gd"`` and ``"newton"``.
    tol : float
        They stop when ``|grad F(y)| <= tol |grad F(0)|`` (relative: costates of long
        chains with geometric steps differ by orders of magnitude).
    """

    name: str = "paper"
    iters: int = 20
    tol: float = 1e-10

    def __post_init__(self):
        v.choice("inner algorithm", self.name, INNERS)
        object.__setattr__(self, "iters", v.positive_int("inner_iters", self.iters))
        object.__setattr__(self, "tol", v.nonnegative_number("inner_tol", self.tol))

    @property
    def code(self) -> int:
        return INNERS[self.name]


def paper_step(F, grad, F0: float, g0: np.ndarray) -> np.ndarray:
    """E.2.1's inner algorithm: returns ``y`` after one Goldstein gradient step from 0 and one
    Barzilai-Borwein step. Same constants and order as the compiled kernels (trial steps
    bracket from 1, at most 30 trials, Goldstein constants 1/4 and 3/4)."""
    gg = float(np.vdot(g0, g0))
    if not (math.isfinite(gg) and math.isfinite(F0)):
        return np.full_like(g0, np.nan)
    if gg == 0.0:
        return np.zeros_like(g0)
    lo, hi, s, s_ok = 0.0, math.inf, 1.0, 0.0
    for _ in range(30):
        Fs = F(-s * g0)
        if not (Fs <= F0 - 0.25 * s * gg):   # too long (or NaN): shrink
            hi = s
            s = 0.5 * (lo + hi)
        elif Fs < F0 - 0.75 * s * gg:        # too short: grow
            s_ok = lo = s
            s = 2.0 * s if hi == math.inf else 0.5 * (lo + hi)
        else:
            s_ok = s
            break
    if s_ok == 0.0:
        return np.zeros_like(g0)
    y1 = -s_ok * g0
    g1 = grad(y1)
    sy = float(np.vdot(y1, g1 - g0))
    bb = float(np.vdot(y1, y1)) / sy if (sy > 0.0 and math.isfinite(sy)) else 0.0
    return y1 - bb * g1


def _descent(F, grad, F0, g0, inner: Inner, hess=None) -> np.ndarray:
    """``"gd"`` and ``"newton"``: the same iteration as the compiled ``_prox``."""
    if inner.name == "newton" and hess is None:
        raise ValueError("inner='newton' needs the subproblem's Hessian; this stage does not "
                         "provide hess_x/hess_w (use inner='gd' or 'paper')")
    y = np.zeros_like(g0)
    g = g0
    Fy = F0
    gn0 = math.sqrt(float(np.vdot(g0, g0)))
    for it in range(inner.iters):
        if it > 0:
            g = grad(y)
        gn = math.sqrt(float(np.vdot(g, g)))
        if not (gn > inner.tol * gn0):
            break
        d = None
        if inner.name == "newton":
            H = hess(y)
            try:
                L = np.linalg.cholesky(H)
                d = -np.linalg.solve(L.T, np.linalg.solve(L, g.ravel())).reshape(g.shape)
            except np.linalg.LinAlgError:
                d = None
        if d is None:
            d = -g
        slope = float(np.vdot(g, d))
        s, accepted = 1.0, False
        for _ in range(50):
            Fs = F(y + s * d)
            if Fs <= Fy + 1e-4 * s * slope:
                accepted = True
                break
            s *= 0.5
        if not accepted:
            break
        Fy = Fs
        y = y + s * d
    return y


def prox_direction(f, grad_f, z, c: float, inner: Inner, *, f_z: Optional[float] = None,
                   grad_z: Optional[np.ndarray] = None, hess_f=None) -> np.ndarray:
    """``grad env(c f)(z) = -argmin_y c f(z + y) + |y|^2/2``, solved by ``inner``.

    Parameters
    ----------
    f, grad_f : callables
        ``f(z') -> float`` and its gradient, shaped like ``z``.
    z : ndarray, any shape
    c : float
        Step ``> 0``.
    f_z, grad_z : optional
        ``f(z)`` and ``grad f(z)`` if the caller has them (saves two evaluations).
    hess_f : callable, optional
        ``hess_f(z') -> (n, n)`` dense Hessian, for ``inner.name == "newton"``.

    Returns
    -------
    ndarray, shaped like ``z``
        NaN everywhere when the subproblem is undefined at its start point.
    """
    F0 = c * (f(z) if f_z is None else f_z)
    g0 = c * (grad_f(z) if grad_z is None else grad_z)
    if not (math.isfinite(F0) and math.isfinite(float(np.vdot(g0, g0)))):
        return np.full_like(g0, np.nan, dtype=float)
    F = lambda y: c * f(z + y) + 0.5 * float(np.vdot(y, y))  # noqa: E731
    G = lambda y: c * grad_f(z + y) + y  # noqa: E731
    if inner.name == "paper":
        return -paper_step(F, G, F0, g0)
    H = None
    if hess_f is not None:
        n = g0.size
        H = lambda y: c * hess_f(z + y) + np.eye(n)  # noqa: E731
    return -_descent(F, G, F0, g0, inner, H)


# ---------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------

def _grad_w(stage, w, x, lam, x_next):
    """``dphi/dw^T lam`` at the pass's own point: with its output ``x_next`` known, a stage
    can skip recomputing its forward map (``Stage.vjp_with_output``)."""
    if x_next is None:
        return stage.vjp_w(w, x, lam)
    return stage.vjp_with_output(w, x, x_next, lam, need_x=False)[0]


def _grad_x(stage, w, x, lam, x_next):
    """``dphi/dx^T lam`` at the pass's own point (see :func:`_grad_w`)."""
    if x_next is None:
        return stage.vjp_x(w, x, lam)
    return stage.vjp_with_output(w, x, x_next, lam, need_w=False)[1]


_ONE_NEWTON_STEP = Inner("newton", iters=1, tol=0.0)


class Rule:
    """A back-propagation rule: what each line of Algo 2 computes.

    Subclasses implement the three lines on one stage (plain numpy, any state shape);
    ``code`` is the rule's number in the generated kernels (None if no kernel knows it, in
    which case compiled chains run this Python implementation stage by stage).
    """

    name: str = ""
    code: Optional[int] = None

    def objective(self, h, x, data, c: float, inner: Inner) -> np.ndarray:
        raise NotImplementedError

    def states(self, stage, w, x, lam, c: float, inner: Inner, x_next=None) -> np.ndarray:
        raise NotImplementedError

    def weights(self, stage, w, x, lam, c: float, inner: Inner, x_next=None,
                reg=None) -> np.ndarray:
        """``reg``: the stage's regularizer ``r_t`` (D.6; see
        :class:`moreauctl.chain.Regularizer`), part of the weight line's function, or None."""
        raise NotImplementedError

    def __repr__(self):
        return self.name.upper()


class _GBP(Rule):
    """Gradient back-propagation: ``c grad f``."""

    name, code = "gbp", RULE_GBP

    def objective(self, h, x, data, c, inner):
        return c * h.grad(x, data)

    def states(self, stage, w, x, lam, c, inner, x_next=None):
        return c * _grad_x(stage, w, x, lam, x_next)

    def weights(self, stage, w, x, lam, c, inner, x_next=None, reg=None):
        g = _grad_w(stage, w, x, lam, x_next)
        return c * (g if reg is None else g + reg.grad(w))


class _MBP(Rule):
    """Moreau back-propagation: ``grad env(c f)``; closed forms where the stage is affine in
    the variable (then it equals GBP) or the objective has its own ``prox``."""

    name, code = "mbp", RULE_MBP

    def objective(self, h, x, data, c, inner):
        if hasattr(h, "moreau_grad"):
            return h.moreau_grad(x, data, c)
        hess = getattr(h, "hess", None)
        if hess is not None and getattr(h, "quadratic", False):
            inner = _ONE_NEWTON_STEP  # exact for a quadratic h, whatever the inner algorithm
        return prox_direction(lambda z: h.value(z, data), lambda z: h.grad(z, data), x, c,
                              inner, hess_f=None if hess is None else (lambda z: hess(z, data)))

    def states(self, stage, w, x, lam, c, inner, x_next=None):
        if stage.affine_x:
            return c * stage.vjp_x(w, x, lam)
        closed = getattr(stage, "moreau_grad_x", None)
        if closed is not None:  # the stage solves its state subproblem exactly
            return closed(w, x, lam, c)
        hess = getattr(stage, "hess_x", None)
        return prox_direction(
            lambda z: float(np.vdot(lam, stage.forward(w, z))),
            lambda z: stage.vjp_x(w, z, lam), x, c, inner,
            f_z=None if x_next is None else float(np.vdot(lam, x_next)),
            grad_z=None if x_next is None else _grad_x(stage, w, x, lam, x_next),
            hess_f=None if hess is None else (lambda z: hess(w, z, lam)))

    def weights(self, stage, w, x, lam, c, inner, x_next=None, reg=None):
        if stage.affine_w and reg is None:
            return c * stage.vjp_w(w, x, lam)
        if stage.affine_w and reg.has_prox:
            # lam^T phi(., x) is linear with gradient B^T lam: the subproblem's solution is
            # u = prox_{c r}(w - c B^T lam), and grad env = w - u (D.6, exact)
            return w - reg.prox(w - c * stage.vjp_w(w, x, lam), c)
        own = getattr(stage, "moreau_grad_w", None)
        if own is not None:  # the stage's own (cheaper or exact) solve, when it has one here
            g = own(w, x, lam, c, inner, x_next, reg)
            if g is not None:
                return g
        hess = getattr(stage, "hess_w", None)
        g_z = None if x_next is None else _grad_w(stage, w, x, lam, x_next)
        if reg is None:
            f = lambda z: float(np.vdot(lam, stage.forward(z, x)))  # noqa: E731
            grad = lambda z: stage.vjp_w(z, x, lam)  # noqa: E731
            f_z = None if x_next is None else float(np.vdot(lam, x_next))
        else:
            f = lambda z: float(np.vdot(lam, stage.forward(z, x))) + reg.value(z)  # noqa: E731
            grad = lambda z: stage.vjp_w(z, x, lam) + reg.grad(z)  # noqa: E731
            f_z = None if x_next is None else float(np.vdot(lam, x_next)) + reg.value(w)
            g_z = None if g_z is None else g_z + reg.grad(w)
            if hess is not None:
                hess_phi, hess_r = hess, reg.hess
                hess = None if reg.hess(w) is None else (  # noqa: E731
                    lambda z, x_, lam_: hess_phi(z, x_, lam_) + hess_r(z))
        return prox_direction(f, grad, w, c, inner, f_z=f_z, grad_z=g_z,
                              hess_f=None if hess is None else (lambda z: hess(z, x, lam)))


GBP = _GBP()
MBP = _MBP()
#: rules by name (a new rule registers itself here)
RULES = {"gbp": GBP, "mbp": MBP}


def parse_rules(rules) -> tuple:
    """``"mbp"``, a 3-sequence or a ``{line: rule}`` dict -> 3 :class:`Rule` objects for the
    lines objective, states, weights (missing dict entries are MBP)."""
    if isinstance(rules, (str, Rule)):
        names = [rules] * 3
    elif isinstance(rules, dict):
        keys = {_LINE_ALIASES.get(k, k): r for k, r in rules.items()}
        unknown = set(keys) - set(LINES)
        if unknown:
            raise ValueError(f"unknown line(s) {sorted(unknown)} in rules; use {list(LINES)}")
        names = [keys.get(k, "mbp") for k in LINES]
    else:
        names = list(rules)
        if len(names) != 3:
            raise ValueError(f"rules needs 3 entries ({', '.join(LINES)}); got {len(names)}")
    out = []
    for line, r in zip(LINES, names):
        if isinstance(r, Rule):
            out.append(r)
            continue
        if r == "ibp" and "ibp" not in RULES:
            raise ValueError(f"rule 'ibp' (regularized inversion) for the {line} line is not "
                             f"available yet; choose one of {sorted(RULES)}")
        if r not in RULES:
            raise ValueError(f"unknown rule {r!r} for the {line} line; choose one of {sorted(RULES)}")
        out.append(RULES[r])
    return tuple(out)


@dataclass(frozen=True, eq=False)
class BackwardSpec:
    """What a backward pass computes: a rule and steps per line, and the inner algorithm.

    Attributes
    ----------
    rules : tuple of 3 Rule
        Objective, states, weights.
    gam_h : float
        Step of the objective line.
    gam, alp : ndarray, shape (T,)
        Steps of the state and weight lines; row ``t`` is the paper's stage ``t+1``.
    inner : Inner
    diagnostics : bool
        Also report each subproblem's optimality residual and the costates.
    reg_scale : ndarray, shape (T,), optional
        Factor of each stage's regularizer ``r_t`` (D.6) in its weight line: the paper's
        ``gamma_t`` in the rescaled recursion (see
        :class:`moreauctl.chain.StageRegularizer`); 1 if None.
    """

    rules: tuple
    gam_h: float
    gam: np.ndarray
    alp: np.ndarray
    inner: Inner = field(default_factory=Inner)
    diagnostics: bool = False
    reg_scale: Optional[np.ndarray] = None

    @property
    def codes(self) -> Optional[np.ndarray]:
        """The rules' kernel codes (int64, (3,)), or None if a rule has no kernel."""
        c = [r.code for r in self.rules]
        return None if any(x is None for x in c) else np.array(c, dtype=np.int64)
