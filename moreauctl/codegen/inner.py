"""Source of the array-form subproblem solvers of the Moreau rule, for one generated chain.

The fused passes (:mod:`moreauctl.codegen.fused`) solve the state and weight subproblems of
the "paper" inner algorithm inline, in scalar locals. Everything else the Moreau pass may
need works on small arrays and is emitted here, into the same generated module (so numba
compiles it with the chain's stage and caches it on disk):

``_sub_value(kind, c, w, x, lam, P, y, n, z, p, one)``
    ``F(y)`` of subproblem ``kind``
``_sub_grad(kind, c, w, x, lam, P, y, n, z, out)``
    ``grad F(y)`` into ``out[:n]``
``_sub_hess(kind, c, w, x, lam, P, y, n, z, H)``
    ``hess F(y)``, column-major
``_prox(kind, c, w, x, lam, P, n, F0, g0, inner, iters, tol, y, buf)``
    inner algorithms "gd" and "newton" (and "paper" for the objective's subproblem)
``_residual(kind, c, w, x, lam, P, y, n, buf)``
    ``|grad F(y)|``
``_prox_h(c, x, F0, g0, y, buf)``
    the objective's subproblem as the "paper" passes solve it

with ``F(y) = c f(base + y) + |y|^2/2`` and the kinds of :mod:`moreauctl.rules`
(``KIND_H``: ``f = h``, base ``x``; ``KIND_X``: ``f = lam^T phi(w, .)``, base ``x``;
``KIND_W``: ``f = lam^T phi(., x)``, base ``w``). ``grad env(c f)(base) = -y``.

The text expects, in the generated module: ``NX, NW, QUAD_H``, the codes of
:data:`moreauctl.rules.KERNEL_CONSTANTS`, and the array primitives ``_phi(w, x, P, out)``,
``_vjp_x(w, x, lam, P, out)``, ``_vjp_w(w, x, lam, P, out)``, ``_h(x, out)``, ``_h_grad(x, out)``,
``_h_hess(x, out)``, ``_hess_xx(w, x, lam, P, out)``, ``_hess_ww(w, x, lam, P, out)`` (``P``:
the stage's run-time parameters) (see
:func:`moreauctl.codegen.stages.stage_primitives`). Its plain-numpy twin is
:func:`moreauctl.rules.prox_direction`.
"""
from __future__ import annotations

__all__ = ["inner_source", "ARRAY_PRIMITIVES"]

#: Array-form stage primitives the solvers call.
ARRAY_PRIMITIVES = ("_phi", "_vjp_x", "_vjp_w", "_h", "_h_grad", "_h_hess", "_hess_xx",
                    "_hess_ww")

_SOURCE = '''
from moreauctl._kernels.linalg import cholesky_solve as _cholesky_solve
from moreauctl._kernels.linalg import dot as _dot


@_jit
def _sub_value(kind, c, w, x, lam, P, y, n, z, p, one):
    """F(y) of the subproblem `kind`. z, p, one: scratch."""
    sq = 0.0
    for i in range(n):
        sq += y[i] * y[i]
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _h(z, one)
        v = one[0]
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _phi(w, z, P, p)
        v = 0.0
        for i in range(NX):
            v += lam[i] * p[i]
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _phi(z, x, P, p)
        v = 0.0
        for i in range(NX):
            v += lam[i] * p[i]
    return c * v + 0.5 * sq


@_jit
def _sub_grad(kind, c, w, x, lam, P, y, n, z, out):
    """grad F(y) of the subproblem `kind` into out[:n]."""
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _h_grad(z, out)
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _vjp_x(w, z, lam, P, out)
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _vjp_w(z, x, lam, P, out)
    for i in range(n):
        out[i] = c * out[i] + y[i]


@_jit
def _sub_hess(kind, c, w, x, lam, P, y, n, z, H):
    """Hessian of the subproblem `kind` at y into H[:n*n] (column-major)."""
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _h_hess(z, H)
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _hess_xx(w, z, lam, P, H)
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _hess_ww(z, x, lam, P, H)
    for k in range(n * n):
        H[k] *= c
    for i in range(n):
        H[i * n + i] += 1.0


@_jit_inline
def _goldstein(Fs, F0, s, gg, lo, hi, s_ok):
    """One decision of E.2.1's Goldstein search on the trial step s (constants 1/4, 3/4;
    the bracket [lo, hi] grows from 1): returns (lo, hi, next s, last acceptable s, done).
    Shared with the IBP/ALBP lines of :mod:`moreauctl.codegen.fused`."""
    if not (Fs <= F0 - 0.25 * s * gg):      # too long (or NaN): shrink
        return lo, s, 0.5 * (lo + s), s_ok, False
    if Fs < F0 - 0.75 * s * gg:             # too short: grow
        return s, hi, (2.0 * s if hi == np.inf else 0.5 * (s + hi)), s, False
    return lo, hi, s, s, True


@_jit_inline
def _paper_prox_h(c, x, F0, g0, out, z, p, g1):
    """Inner algorithm "paper" (E.2.1) on the objective's subproblem c h(x + y) + |y|^2/2:
    one gradient step from y = 0 with a Goldstein line search (trial steps bracket from 1),
    then one Barzilai-Borwein step. Writes grad env = -y into out[:NX]. The state and
    weight subproblems use the scalar twin emitted by moreauctl.codegen.fused."""
    gg = 0.0
    for i in range(NX):
        gg += g0[i] * g0[i]
    if not (math.isfinite(gg) and math.isfinite(F0)):
        for i in range(NX):
            out[i] = np.nan
        return
    if gg == 0.0:
        for i in range(NX):
            out[i] = 0.0
        return
    lo = 0.0
    hi = np.inf
    s = 1.0
    s_ok = 0.0
    for _ in range(30):
        sq = 0.0
        for i in range(NX):
            yi = -s * g0[i]
            z[i] = x[i] + yi
            sq += yi * yi
        _h(z, p)
        Fs = c * p[0] + 0.5 * sq
        lo, hi, s, s_ok, done = _goldstein(Fs, F0, s, gg, lo, hi, s_ok)
        if done:
            break
    if s_ok == 0.0:
        for i in range(NX):
            out[i] = 0.0
        return
    for i in range(NX):
        z[i] = x[i] - s_ok * g0[i]
    _h_grad(z, g1)
    sy = 0.0
    ss = 0.0
    for i in range(NX):
        yi = -s_ok * g0[i]
        g1[i] = c * g1[i] + yi
        sy += yi * (g1[i] - g0[i])
        ss += yi * yi
    bb = ss / sy if (sy > 0.0 and math.isfinite(sy)) else 0.0
    for i in range(NX):
        out[i] = s_ok * g0[i] + bb * g1[i]     # -(y1 - bb g1)


@_jit
def _prox(kind, c, w, x, lam, P, n, F0, g0, inner, iters, tol, y, buf):
    """Approximately solve min_y F(y) from y = 0 with the inner algorithm `inner` ("gd" or
    "newton"; "paper" only for KIND_H: the state and weight lines inline it).

    F0 = F(0) and g0 = grad F(0) (n,) are given. The solution goes to y[:n]. buf is
    scratch of shape (10, m*m), m = max(NX, NW) (rows 6 and 7: a Hessian and its factor).
    """
    d = buf[0]
    g = buf[1]
    yt = buf[2]
    z = buf[3]
    p = buf[4]
    one = buf[5]
    H = buf[6]
    L = buf[7]
    for i in range(n):
        y[i] = 0.0
        g[i] = g0[i]
    Fy = F0
    g0n = _dot(g, g, n)
    if not math.isfinite(g0n) or not math.isfinite(F0):
        # undefined at its start point (e.g. an infinite derivative): a non-finite
        # solution, so the run ends naming this stage
        for i in range(n):
            y[i] = np.nan
        return
    if inner == INNER_PAPER:
        _paper_prox_h(c, x, F0, g0, y, z, p, d)
        for i in range(n):
            y[i] = -y[i]
        return
    # relative tolerance: |grad F(0)| scales with c |lam|, which spans orders of
    # magnitude along a long chain with geometric steps
    gn0 = math.sqrt(g0n)
    for it in range(iters):
        if it > 0:
            _sub_grad(kind, c, w, x, lam, P, y, n, z, g)
        gn = math.sqrt(_dot(g, g, n))
        if not (gn > tol * gn0):  # also stops on NaN, reported by the caller
            break
        used_newton = False
        if inner == INNER_NEWTON:
            _sub_hess(kind, c, w, x, lam, P, y, n, z, H)
            for i in range(n):
                yt[i] = -g[i]
            used_newton = _cholesky_solve(H, n, yt, d, L)
        if not used_newton:
            for i in range(n):
                d[i] = -g[i]
        slope = _dot(g, d, n)
        s = 1.0
        accepted = False
        for _ in range(50):
            for i in range(n):
                yt[i] = y[i] + s * d[i]
            Fs = _sub_value(kind, c, w, x, lam, P, yt, n, z, p, one)
            if Fs <= Fy + 1e-4 * s * slope:
                accepted = True
                break
            s *= 0.5
        if not accepted:
            break
        Fy = Fs
        for i in range(n):
            y[i] = yt[i]


@_jit
def _residual(kind, c, w, x, lam, P, y, n, buf):
    """|grad F(y)|: optimality residual of an inner solution."""
    r = buf[8]
    _sub_grad(kind, c, w, x, lam, P, y, n, buf[3], r)
    return math.sqrt(_dot(r, r, n))


@_jit
def _prox_h(c, x, F0, g0, y, buf):
    """The objective's subproblem c h(x + y) + |y|^2/2 as the "paper" passes solve it: one
    Newton step when h is quadratic (exact: the line search accepts the unit step), the
    "paper" algorithm otherwise; the same numbers as _prox(KIND_H, ...) with those inner
    algorithms. Written for KIND_H alone so that the "paper" passes compile no stage
    Hessian (_prox compiles all three kinds: it doubled the cart-pole's uncached start)."""
    n = NX
    d = buf[0]
    g = buf[1]
    yt = buf[2]
    z = buf[3]
    p = buf[4]
    one = buf[5]
    H = buf[6]
    L = buf[7]
    for i in range(n):
        y[i] = 0.0
        g[i] = g0[i]
    g0n = _dot(g, g, n)
    if not math.isfinite(g0n) or not math.isfinite(F0):
        for i in range(n):
            y[i] = np.nan
        return
    if not QUAD_H:
        _paper_prox_h(c, x, F0, g0, y, z, p, d)
        for i in range(n):
            y[i] = -y[i]
        return
    if not (g0n > 0.0):
        return
    for i in range(n):
        z[i] = x[i]
    _h_hess(z, H)
    for k in range(n * n):
        H[k] *= c
    for i in range(n):
        H[i * n + i] += 1.0
    for i in range(n):
        yt[i] = -g[i]
    if not _cholesky_solve(H, n, yt, d, L):
        for i in range(n):
            d[i] = -g[i]
    slope = _dot(g, d, n)
    s = 1.0
    for _ in range(50):
        sq = 0.0
        for i in range(n):
            yt[i] = s * d[i]
            sq += yt[i] * yt[i]
        for i in range(n):
            z[i] = x[i] + yt[i]
        _h(z, one)
        Fs = c * one[0] + 0.5 * sq
        if Fs <= F0 + 1e-4 * s * slope:
            for i in range(n):
                y[i] = yt[i]
            return
        s *= 0.5
'''


def inner_source() -> str:
    """The solvers' source text (see the module docstring for what it expects in scope)."""
    return _SOURCE.lstrip("\n")
