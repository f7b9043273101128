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
``IBP`` (regularized inversion, short paper Sec. 1)
    With ``f`` the line's map (``phi_t(w_t, .)``, ``phi_t(., x_{t-1})``, or ``h`` with
    ``lam = 1`` on line 2) and ``lam`` the incoming costate:
    ``R(f)(z, lam; c) = -argmin_y c/2 |f(z + y) - f(z) + lam|^2 + |y|^2 / 2``, the short
    paper's ``IBP(f)(z, lam) = -argmin_y |f(z+y) - f(z) + lam|^2 + gamma |y|^2`` with
    ``gamma = 1/c``. ``lam`` is a *displacement* of the line's output (``f(z) - lam`` is its
    target): the regularized inverse of target propagation. Closed form for a stage affine in
    the variable, ``(c J^T J + I)^{-1} c J^T lam``; ``c = inf`` is the unregularized inverse
    (the minimum-norm least-squares solution ``J^+ lam`` for an affine stage). For small
    ``c`` it tends to GBP (``c J^T lam``).
``ALBP`` (a line of the augmented-Lagrangian pass, Algo 8-9)
    Used by :mod:`moreauctl.oracles.auglag`, not selectable by name.
    ``-argmin_y c lam^T f(z + y) + p/2 |f(z + y) - f(z) + lam|^2 + |y|^2 / 2`` with the
    penalty ``p`` of the line (``BackwardSpec.pen_x``/``pen_w``): MBP when ``p = 0``, IBP
    (with step ``p``) when ``c = 0``; its objective line is MBP's.

Mixing rules per line gives the family of the short paper (e.g. ProxProp is GBP on lines
2 and 4 and IBP on line 5).

With the D.6 regularizer ``r_t`` (as :class:`~moreauctl.chain.StageRegularizer`, already
scaled) the weight subproblems read ``c (lam^T phi + r_t)`` (GBP, MBP),
``c (|phi - phi(w) + lam|^2/2 + r_t)`` (IBP) and ``c lam^T phi + p |..|^2/2 + (c + p) r_t``
(ALBP).

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

__all__ = ["RULE_GBP", "RULE_MBP", "RULE_IBP", "RULE_ALBP", "RULES", "INNER_PAPER",
           "INNER_GD", "INNER_NEWTON", "INNER_CG", "INNERS", "KIND_H", "KIND_X", "KIND_W",
           "LINES", "Inner", "Rule", "GBP", "MBP", "IBP",
           "ALBP", "BackwardSpec", "parse_rules", "prox_direction", "paper_step",
           "penalty_direction", "conjugate_gradient"]

# ---- codes shared with the generated kernels (moreauctl.codegen writes them out) ----
RULE_GBP = 0     #: gradient back-propagation: linearize the line
RULE_MBP = 1     #: Moreau back-propagation: gradient of the Moreau envelope (a prox)
RULE_IBP = 2     #: regularized inversion: a damped inverse of the line's map
RULE_ALBP = 3    #: augmented-Lagrangian line: MBP's linear term + IBP's penalty (Algo 9)
INNER_PAPER = 0  #: one Goldstein gradient step, then one Barzilai-Borwein step (E.2.1)
INNER_GD = 1     #: gradient steps with Armijo backtracking
INNER_NEWTON = 2  #: damped Newton with the exact Hessian, gradient fallback
INNER_CG = 3     #: conjugate gradient on the quadratic IBP/ALBP subproblems of affine lines
KIND_H = 0       #: subproblem ``c h(x + y) + |y|^2/2``
KIND_X = 1       #: subproblem ``c lam^T phi(w, x + y) + |y|^2/2``
KIND_W = 2       #: subproblem ``c lam^T phi(w + y, x) + |y|^2/2``

#: Inner algorithms of the Moreau rule by name (:class:`~moreauctl.rules.Inner`), with their
#: kernel codes.
INNERS = {"paper": INNER_PAPER, "gd": INNER_GD, "newton": INNER_NEWTON, "cg": INNER_CG}
#: Lines of Algo 2, in the order of a 3-sequence of rules. "controls" is accepted for
#: "weights" (the control-theory name).
LINES = ("objective", "states", "weights")
_LINE_ALIASES = {"controls": "weights"}

#: Codes the generated kernels understand, by module-level constant name.
KERNEL_CONSTANTS = {name: globals()[name] for name in (
    "RULE_GBP", "RULE_MBP", "RULE_IBP", "RULE_ALBP", "INNER_PAPER", "INNER_GD",
    "INNER_NEWTON", "INNER_CG", "KIND_H", "KIND_X", "KIND_W")}


# ---------------------------------------------------------------------------------------
# inner algorithms on  F(y) = c f(z + y) + |y|^2/2, from y = 0
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Inner:
    """Inner algorithm ``A`` of the Moreau rule.

    Parameters
    ----------
    name : {"paper", "gd", "newton", "cg"}
        ``"paper"``: one gradient step with a Goldstein line search, then one
        Barzilai-Borwein step (E.2.1). ``"gd"``: up to ``iters`` gradient steps with Armijo
        backtracking. ``"newton"``: damped Newton with the exact Hessian (a gradient step
        where it is not positive definite). ``"cg"``: up to ``iters`` conjugate-gradient
        steps on the quadratic subproblem of an IBP/ALBP line of a stage affine in the
        variable (matrix-free, instead of the closed form; the other lines use ``"paper"``).
    iters : int
        Iteration cap of ``"gd"``, ``"newton"`` and ``"cg"``.
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


def _descent(F, grad, F0, g0, inner: Inner, hess=None, stall: bool = False) -> np.ndarray:
    """``"gd"`` and ``"newton"``: the same iteration as the compiled ``_prox``. With
    ``stall`` (the plain inverse's Gauss-Newton) it also stops when the predicted decrease
    ``-<g, d>`` is below the rounding of ``F`` (no line search can then succeed), as the
    compiled scalar loop does."""
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
        if stall and not (-slope > 1e-15 * abs(Fy)):
            break
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
    if inner.name in ("paper", "cg"):  # "cg" is for the quadratic IBP/ALBP lines only
        return -paper_step(F, G, F0, g0)
    H = None
    if hess_f is not None:
        n = g0.size
        H = lambda y: c * hess_f(z + y) + np.eye(n)  # noqa: E731
    return -_descent(F, G, F0, g0, inner, H)


def conjugate_gradient(matvec, b: np.ndarray, iters: int, tol: float) -> np.ndarray:
    """Solve ``A y = b`` for a symmetric positive definite operator by conjugate gradient
    from ``y = 0``: at most ``iters`` steps, stopping when ``|r| <= tol |b|``.

    Parameters
    ----------
    matvec : callable
        ``v -> A v``, shaped like ``b``.
    b : ndarray, any shape

    Returns
    -------
    ndarray, shaped like ``b``
    """
    y = np.zeros_like(b, dtype=float)
    r = np.array(b, dtype=float)
    d = r.copy()
    rr = float(np.vdot(r, r))
    stop = (tol ** 2) * rr
    for _ in range(iters):
        if not rr > stop:
            break
        Ad = matvec(d)
        dAd = float(np.vdot(d, Ad))
        if not dAd > 0.0:
            break
        s = rr / dAd
        y += s * d
        r -= s * Ad
        rr_new = float(np.vdot(r, r))
        d = r + (rr_new / rr) * d
        rr = rr_new
    return y


#: relative damping of the Gauss-Newton steps of the plain inverse (IBP with c = inf)
_GN_DAMPING = 1e-12


def _jacobian(vjp, z, out_shape) -> np.ndarray:
    """The Jacobian ``(m, n)`` of a map at ``z`` from ``m`` VJPs with unit vectors
    (``m`` = number of outputs; cheap for control stages)."""
    m = int(np.prod(out_shape))
    J = np.empty((m, z.size))
    e = np.zeros(m)
    for i in range(m):
        e[i] = 1.0
        J[i] = np.ravel(vjp(z, e.reshape(out_shape)))
        e[i] = 0.0
    return J


def _penalty_subproblem(f, vjp, z, lam, tgt, c, p, reg):
    """``F`` and ``grad F`` of :func:`penalty_direction`'s subproblem."""
    inv = math.isinf(p)
    if inv and (c != 0.0 or reg is not None):
        raise ValueError("the unregularized inverse (p = inf) has no linear term and no "
                         "regularizer")
    pp, q = (1.0, 0.0) if inv else (float(p), 1.0)
    rc = c + p

    def F(y):
        fy = f(z + y)
        r = fy - tgt
        v = 0.5 * pp * float(np.vdot(r, r)) + 0.5 * q * float(np.vdot(y, y))
        if c:
            v += c * float(np.vdot(lam, fy))
        if reg is not None:
            v += rc * reg.value(z + y)
        return v

    def G(y):
        u = pp * (f(z + y) - tgt)
        if c:
            u = u + c * lam
        g = np.reshape(vjp(z + y, u), z.shape) + q * y
        if reg is not None:
            g = g + rc * np.reshape(reg.grad(z + y), z.shape)
        return g

    return F, G


def penalty_residual(out, f, vjp, z, lam, f_z, c: float, p: float, reg=None, **_) -> float:
    """``|grad F(y)|`` of :func:`penalty_direction`'s subproblem at ``y = -out``."""
    _, G = _penalty_subproblem(f, vjp, z, lam, f_z - lam, c, p, reg)
    return float(np.linalg.norm(G(-np.reshape(out, np.shape(z)))))


def penalty_direction(f, vjp, z, lam, f_z, c: float, p: float, inner: Inner, *,
                      affine: bool = False, jvp=None, hess=None, reg=None,
                      normal_solve=None) -> np.ndarray:
    """The IBP/ALBP line: ``-argmin_y F(y)`` with

    ``F(y) = c lam^T f(z + y) + p/2 |f(z + y) - f(z) + lam|^2 + (c + p) r(z + y) + |y|^2/2``

    (``c = 0``: IBP with step ``p``; ``p = 0`` is MBP, see :func:`prox_direction`). With
    ``p = inf`` (and ``c = 0``, no ``r``) it is the unregularized inverse
    ``-argmin_y |f(z + y) - f(z) + lam|^2 / 2``, the minimum-norm one for an affine map.

    Parameters
    ----------
    f : callable
        ``f(z') -> ndarray`` shaped like ``lam``.
    vjp : callable
        ``vjp(z', u) = df(z')^T u``, shaped like ``z``.
    z, lam : ndarray
    f_z : ndarray
        ``f(z)``.
    c, p : float
        Coefficients of the linear and the penalty term (``>= 0``).
    inner : Inner
        Inner algorithm when ``f`` is not affine (``"cg"`` acts as ``"paper"`` there); for
        the plain inverse ``"newton"`` takes Gauss-Newton steps (``J^T J`` with a relative
        damping of 1e-12).
    affine : bool
        ``f`` affine: the subproblem is quadratic (with a quadratic ``r``), solved in closed
        form (dense ``J`` from VJPs, or ``normal_solve``) or by conjugate gradient
        (``inner.name == "cg"``, matrix-free).
    jvp : callable, optional
        ``jvp(z', v) = df(z') v`` (conjugate gradient); default for an affine ``f``:
        ``f(v) - f(0)``.
    hess : callable, optional
        ``hess(z', u) -> (n, n)``: Hessian of ``u^T f`` (inner ``"newton"``).
    reg : StageRegularizer, optional
    normal_solve : callable, optional
        ``normal_solve(rhs, a, b)`` solving ``(a J^T J + b I) y = rhs`` (a closed form the
        stage offers, e.g. a dense layer's ``(A^T A + beta I)^{-1}``); used without ``r``.

    Returns
    -------
    ndarray, shaped like ``z``
    """
    inv = math.isinf(p)
    pp, q = (1.0, 0.0) if inv else (float(p), 1.0)
    rc = c + p
    tgt = f_z - lam
    F, G = _penalty_subproblem(f, vjp, z, lam, tgt, c, p, reg)
    g0 = G(np.zeros_like(z))
    if not math.isfinite(float(np.vdot(g0, g0))):
        return np.full_like(z, np.nan, dtype=float)
    if affine:
        if inner.name == "cg":
            if jvp is None:
                f0 = f(np.zeros_like(z))
                jv = lambda v: f(v) - f0  # noqa: E731  (exact for an affine f)
            else:
                jv = lambda v: jvp(z, v)  # noqa: E731
            gr0 = None if reg is None else np.reshape(reg.grad(z), z.shape)

            def A(v):
                out = pp * np.reshape(vjp(z, jv(v)), z.shape) + q * v
                if reg is not None:  # exact for a quadratic r
                    out = out + rc * (np.reshape(reg.grad(z + v), z.shape) - gr0)
                return out
            return -conjugate_gradient(A, -g0, inner.iters, inner.tol)
        if normal_solve is not None and reg is None:
            return -np.reshape(normal_solve(-g0, pp, q), z.shape)
        J = _jacobian(vjp, z, np.shape(lam))
        if inv:  # minimum-norm least squares
            return np.reshape(np.linalg.lstsq(J, np.ravel(lam), rcond=None)[0], z.shape)
        H = pp * (J.T @ J) + q * np.eye(z.size)
        if reg is not None:
            Hr = reg.hess(z)
            if Hr is None:
                raise ValueError("an IBP/ALBP weight line with a regularizer needs its Hessian "
                                 "(a quadratic r, e.g. L2) for the closed form")
            H = H + rc * Hr
        return -np.reshape(np.linalg.solve(H, -np.ravel(g0)), z.shape)
    H = None
    if inv:
        def H(y):
            # the plain inverse: Gauss-Newton (J^T J, positive semidefinite) with a damping
            # 1e-12 trace/n that keeps it definite where J is rank-deficient (the step is then
            # the minimum-norm one, to that precision)
            Jy = _jacobian(vjp, z + y, np.shape(lam))
            JJ = Jy.T @ Jy
            return JJ + _GN_DAMPING * max(np.trace(JJ) / z.size, 1e-300) * np.eye(z.size)
    elif hess is not None:
        def H(y):
            zy = z + y
            fy = f(zy)
            u = pp * (fy - tgt) + (c * lam if c else 0.0)
            Jy = _jacobian(vjp, zy, np.shape(lam))
            out = pp * (Jy.T @ Jy) + hess(zy, u) + q * np.eye(z.size)
            if reg is not None:
                out = out + rc * reg.hess(zy)
            return out
    F0 = F(np.zeros_like(z))
    if inner.name in ("paper", "cg"):
        return -paper_step(F, G, F0, g0)
    return -_descent(F, G, F0, g0, inner, H, stall=inv)


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


def _stage_line(stage, w, x, lam, line: str, x_next):
    """The callables of :func:`penalty_direction` for a state (``"x"``) or weight
    (``"w"``) line of ``stage``."""
    if line == "x":
        f = lambda z: stage.forward(w, z)  # noqa: E731
        vjp = lambda z, u: stage.vjp_x(w, z, u)  # noqa: E731
        jvp = getattr(stage, "jvp_x", None)
        hess = getattr(stage, "hess_x", None)
        return dict(f=f, vjp=vjp, z=x, f_z=stage.forward(w, x) if x_next is None else x_next,
                    affine=stage.affine_x,
                    jvp=None if jvp is None else (lambda z, v: jvp(w, z, v)),
                    hess=None if hess is None else (lambda z, u: hess(w, z, u)))
    f = lambda z: stage.forward(z, x)  # noqa: E731
    vjp = lambda z, u: stage.vjp_w(z, x, u)  # noqa: E731
    jvp = getattr(stage, "jvp_w", None)
    hess = getattr(stage, "hess_w", None)
    ns = getattr(stage, "normal_solve_w", None)
    return dict(f=f, vjp=vjp, z=w, f_z=stage.forward(w, x) if x_next is None else x_next,
                affine=stage.affine_w,
                jvp=None if jvp is None else (lambda z, v: jvp(z, x, v)),
                hess=None if hess is None else (lambda z, u: hess(z, x, u)),
                normal_solve=None if ns is None else (lambda rhs, a, b: ns(w, x, rhs, a, b)))


def _objective_line(h, x, data):
    """:func:`penalty_direction`'s callables for the objective line (``f = h``, a (1,)
    output, ``lam = 1``)."""
    hess = getattr(h, "hess", None)
    return dict(f=lambda z: np.array([h.value(z, data)]),
                vjp=lambda z, u: u[0] * h.grad(z, data), z=x,
                f_z=np.array([h.value(x, data)]), affine=False,
                hess=None if hess is None else (lambda z, u: u[0] * hess(z, data)))


class _IBP(Rule):
    """Regularized inversion: ``-argmin_y c/2 |f(z + y) - f(z) + lam|^2 + |y|^2/2`` (the
    short paper's IBP with ``gamma = 1/c``); ``c = inf`` is the plain inverse."""

    name, code = "ibp", RULE_IBP

    def objective(self, h, x, data, c, inner):
        return penalty_direction(lam=np.ones(1), c=0.0, p=c, inner=inner,
                                 **_objective_line(h, x, data))

    def states(self, stage, w, x, lam, c, inner, x_next=None):
        return penalty_direction(lam=lam, c=0.0, p=c, inner=inner,
                                 **_stage_line(stage, w, x, lam, "x", x_next))

    def weights(self, stage, w, x, lam, c, inner, x_next=None, reg=None):
        return penalty_direction(lam=lam, c=0.0, p=c, inner=inner, reg=reg,
                                 **_stage_line(stage, w, x, lam, "w", x_next))

    def objective_residual(self, h, x, data, out, c):
        """``|grad F|`` of the line's subproblem at its solution (diagnostics)."""
        return penalty_residual(out, lam=np.ones(1), c=0.0, p=c, **_objective_line(h, x, data))

    def states_residual(self, stage, w, x, lam, out, c, x_next=None, pen=0.0):
        return penalty_residual(out, lam=lam, c=0.0, p=c,
                                **_stage_line(stage, w, x, lam, "x", x_next))

    def weights_residual(self, stage, w, x, lam, out, c, x_next=None, reg=None, pen=0.0):
        return penalty_residual(out, lam=lam, c=0.0, p=c, reg=reg,
                                **_stage_line(stage, w, x, lam, "w", x_next))


class _ALBP(Rule):
    """The augmented-Lagrangian line (Algo 9): ``c`` is the step of the linear term, ``pen``
    the penalty's; MBP when ``pen = 0``, IBP with step ``pen`` when ``c = 0``."""

    name, code = "albp", RULE_ALBP

    def objective(self, h, x, data, c, inner):
        return MBP.objective(h, x, data, c, inner)

    def states(self, stage, w, x, lam, c, inner, x_next=None, pen=0.0):
        if pen == 0.0:
            return MBP.states(stage, w, x, lam, c, inner, x_next)
        if c == 0.0:
            return IBP.states(stage, w, x, lam, pen, inner, x_next)
        return penalty_direction(lam=lam, c=c, p=pen, inner=inner,
                                 **_stage_line(stage, w, x, lam, "x", x_next))

    def weights(self, stage, w, x, lam, c, inner, x_next=None, reg=None, pen=0.0):
        if pen == 0.0:
            return MBP.weights(stage, w, x, lam, c, inner, x_next, reg)
        if c == 0.0:
            return IBP.weights(stage, w, x, lam, pen, inner, x_next, reg)
        return penalty_direction(lam=lam, c=c, p=pen, inner=inner, reg=reg,
                                 **_stage_line(stage, w, x, lam, "w", x_next))

    def states_residual(self, stage, w, x, lam, out, c, x_next=None, pen=0.0):
        return penalty_residual(out, lam=lam, c=c, p=pen,
                                **_stage_line(stage, w, x, lam, "x", x_next))

    def weights_residual(self, stage, w, x, lam, out, c, x_next=None, reg=None, pen=0.0):
        return penalty_residual(out, lam=lam, c=c, p=pen, reg=reg,
                                **_stage_line(stage, w, x, lam, "w", x_next))


GBP = _GBP()
MBP = _MBP()
IBP = _IBP()
ALBP = _ALBP()
#: rules by name (a new rule registers itself here); ALBP needs the penalties of the
#: augmented-Lagrangian oracle, so it is not selectable by name
RULES = {"gbp": GBP, "mbp": MBP, "ibp": IBP}


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
    pen_x, pen_w : ndarray, shape (T,), optional
        Penalty steps of the ALBP state and weight lines (the augmented-Lagrangian pass);
        None for the other rules.
    """

    rules: tuple
    gam_h: float
    gam: np.ndarray
    alp: np.ndarray
    inner: Inner = field(default_factory=Inner)
    diagnostics: bool = False
    reg_scale: Optional[np.ndarray] = None
    pen_x: Optional[np.ndarray] = None
    pen_w: Optional[np.ndarray] = None

    @property
    def codes(self) -> Optional[np.ndarray]:
        """The rules' kernel codes (int64, (3,)), or None where the compiled passes do not
        cover the spec (the chain then runs the Python pass): a rule without a code, the
        inner algorithm "cg" (the quadratic lines of networks), and, for IBP/ALBP lines,
        anything but the closed forms of affine lines, the "paper" inner algorithm and
        Gauss-Newton ("newton") on plain inverses: IBP on the objective line, diagnostics,
        "gd", Newton on a regularized inverse."""
        c = [r.code for r in self.rules]
        if any(x is None for x in c) or self.inner.name == "cg":
            return None
        # ALBP lines without penalty are MBP lines (and its objective line always is): the
        # kernels then run them as such (the fast pass included)
        if c[0] == RULE_ALBP:
            c[0] = RULE_MBP
        for k, pen in ((1, self.pen_x), (2, self.pen_w)):
            if c[k] == RULE_ALBP and (pen is None or not np.any(pen)):
                c[k] = RULE_MBP
        pen = [x in (RULE_IBP, RULE_ALBP) for x in c]
        if pen[0] and c[0] == RULE_IBP:
            return None
        if any(pen[1:]):
            if self.diagnostics or self.inner.name == "gd":
                return None
            if self.inner.name == "newton" and not self._plain_inverses():
                return None
        return np.array(c, dtype=np.int64)

    def _plain_inverses(self) -> bool:
        """Every IBP/ALBP state and weight line is a plain inverse (penalty inf)."""
        for rule, step, pen in ((self.rules[1], self.gam, self.pen_x),
                                (self.rules[2], self.alp, self.pen_w)):
            if rule.code == RULE_IBP and not np.all(np.isinf(step)):
                return False
            if rule.code == RULE_ALBP and pen is not None and not np.all(
                    (pen == 0.0) | np.isinf(pen)):
                return False
        return True

    def penalties(self, T: int):
        """``(pen_x, pen_w)`` as arrays (zeros when not set), shape (T,) each."""
        z = None
        if self.pen_x is None or self.pen_w is None:
            z = np.zeros(T)
        return (z if self.pen_x is None else self.pen_x), (z if self.pen_w is None else self.pen_w)
