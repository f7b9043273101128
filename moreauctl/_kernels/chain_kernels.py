# Loop kernels of a chain of computations (Roulet & Harchaoui, Def. 1.1).
#
# This file is NOT imported on its own. The code generator appends it to a generated module
# that defines, before this text:
#
#   NX, NW                     state and control sizes (compile-time ints)
#   AFFINE_W, AFFINE_X, QUAD_H phi affine in w / in x, h quadratic (compile-time bools)
#   _phi(w, x, out)            out[:] = phi(w, x)                        (NX,)
#   _vjp(w, x, lam, gw, gx)    gw = dphi/dw^T lam (NW,), gx = dphi/dx^T lam (NX,)
#   _vjp_w(w, x, lam, gw)      gw only
#   _vjp_x(w, x, lam, gx)      gx only
#   _h(x, out)                 out[0] = h(x)
#   _h_grad(x, out)            out = grad h(x)                            (NX,)
#   _h_hess(x, out)            out = hess h(x), column-major               (NX*NX,)
#   _hess_xx(w, x, lam, out)   d2 (lam^T phi)/dx2, column-major            (NX*NX,)
#   _hess_ww(w, x, lam, out)   d2 (lam^T phi)/dw2, column-major            (NW*NW,)
#   NJV, STORE_JAC             values stored per stage by the forward pass; whether to store
#   _phi_jac(w, x, out, jv)    out = phi(w, x), jv = the stage's stored values (NJV,): its
#                              varying Jacobian entries, or its transcendental values
#   _vjp_jac(w, x, jv, lam, gw, gx)  the VJPs of _vjp, reading jv instead of re-evaluating
#
# Shapes: w (T, NW) controls, X (T+1, NX) states, row t of w drives X[t] -> X[t+1]
# (row t is the paper's stage t+1). Everything is float64. Nothing here allocates per stage.
import math

import numpy as np

from moreauctl._config import jit as _jit
from moreauctl._config import jit_inline as _jit_inline

# Codes shared with moreauctl/oracles/moreau.py
RULE_GBP = 0   # gradient back-propagation: linearize the stage
RULE_MBP = 1   # Moreau back-propagation: prox of the stage
INNER_PAPER = 0   # one Goldstein gradient step, then one Barzilai-Borwein step (E.2.1)
INNER_GD = 1      # gradient steps with Armijo backtracking
INNER_NEWTON = 2  # damped Newton with exact Hessian, gradient fallback
KIND_H = 0        # subproblem  c h(x + y)             + |y|^2/2
KIND_X = 1        # subproblem  c lam^T phi(w, x + y)  + |y|^2/2
KIND_W = 2        # subproblem  c lam^T phi(w + y, x)  + |y|^2/2


@_jit
def forward(w, x0, X):
    """Forward pass (Algo 3 without storing Jacobians): fill X (T+1, NX), return h(x_T)."""
    T = w.shape[0]
    for i in range(NX):
        X[0, i] = x0[i]
    for t in range(T):
        _phi(w[t], X[t], X[t + 1])
    out = np.empty(1)
    _h(X[T], out)
    return out[0]


@_jit
def objective(w, x0):
    """h(f(w, x0)) with O(NX) memory (for line searches): nothing is stored."""
    T = w.shape[0]
    a = x0.copy()
    b = np.empty(NX)
    for t in range(T):
        _phi(w[t], a, b)
        a, b = b, a
    out = np.empty(1)
    _h(a, out)
    return out[0]


@_jit
def backward_gradient(w, X, G, lam0):
    """Backward pass of gradient back-propagation (Algo 4) with mu = grad h(x_T).

    Fills G (T, NW) with g_t = dphi_t/dw^T lam_t and lam0 (NX,) with lam_0 = df/dx0^T mu.
    """
    T = w.shape[0]
    lam = np.empty(NX)
    nxt = np.empty(NX)
    _h_grad(X[T], lam)
    for t in range(T - 1, -1, -1):
        _vjp(w[t], X[t], lam, G[t], nxt)
        lam, nxt = nxt, lam
    for i in range(NX):
        lam0[i] = lam[i]


@_jit
def forward_jac(w, x0, X, JV):
    """Forward pass of Algo 3 that also stores the varying Jacobian entries of each stage:
    fills X (T+1, NX) and JV (T, NJV), returns h(x_T)."""
    T = w.shape[0]
    for i in range(NX):
        X[0, i] = x0[i]
    for t in range(T):
        _phi_jac(w[t], X[t], X[t + 1], JV[t])
    out = np.empty(1)
    _h(X[T], out)
    return out[0]


@_jit
def backward_gradient_jac(w, JV, X, G, lam0):
    """Backward pass of Algo 4 from the values stored by `forward_jac` (Jacobian entries:
    only multiplications and additions per stage; transcendental values: no libm call)."""
    T = JV.shape[0]
    lam = np.empty(NX)
    nxt = np.empty(NX)
    _h_grad(X[T], lam)
    for t in range(T - 1, -1, -1):
        _vjp_jac(w[t], X[t], JV[t], lam, G[t], nxt)
        lam, nxt = nxt, lam
    for i in range(NX):
        lam0[i] = lam[i]


# ---------------------------------------------------------------------------------------
# Moreau back-propagation (Algo 1-2, rescaled as in E.2.1)
#
#   lam_T     = grad env(gam_h h)(x_T)
#   lam_{t-1} = grad env(gam_t lam_t^T phi_t(w_t, .))(x_{t-1})
#   g_t       = grad env(alp_t lam_t^T phi_t(., x_{t-1}))(w_t)
#
# with grad env(F)(z) = -argmin_y F(z + y) + |y|^2/2. Each line can instead use the
# gradient rule (GBP), which is the linearization of the same formula:
#   lam_T = gam_h grad h,  lam_{t-1} = gam_t dphi/dx^T lam_t,  g_t = alp_t dphi/dw^T lam_t.
# ---------------------------------------------------------------------------------------


@_jit
def _sub_value(kind, c, w, x, lam, y, n, z, p, one):
    """Value of the subproblem `kind` at y (see KIND_*). z, p, one are scratch buffers."""
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
        _phi(w, z, p)
        v = 0.0
        for i in range(NX):
            v += lam[i] * p[i]
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _phi(z, x, p)
        v = 0.0
        for i in range(NX):
            v += lam[i] * p[i]
    return c * v + 0.5 * sq


@_jit
def _sub_grad(kind, c, w, x, lam, y, n, z, out):
    """Gradient of the subproblem `kind` at y into out[:n]."""
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _h_grad(z, out)
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _vjp_x(w, z, lam, out)
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _vjp_w(z, x, lam, out)
    for i in range(n):
        out[i] = c * out[i] + y[i]


@_jit
def _sub_hess(kind, c, w, x, lam, y, n, z, H):
    """Hessian of the subproblem `kind` at y into H[:n*n] (column-major)."""
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _h_hess(z, H)
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] + y[i]
        _hess_xx(w, z, lam, H)
    else:
        for i in range(NW):
            z[i] = w[i] + y[i]
        _hess_ww(z, x, lam, H)
    for k in range(n * n):
        H[k] *= c
    for i in range(n):
        H[i * n + i] += 1.0


@_jit
def _cholesky_solve(H, n, b, out, L):
    """Solve H out = b for symmetric H (n*n, column-major) by Cholesky; False if H is not
    positive definite (then out is untouched)."""
    for j in range(n):
        s = H[j * n + j]
        for k in range(j):
            s -= L[j * n + k] * L[j * n + k]
        if not (s > 0.0):
            return False
        L[j * n + j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = H[j * n + i]
            for k in range(j):
                s -= L[i * n + k] * L[j * n + k]
            L[i * n + j] = s / L[j * n + j]
    # L is stored row-major: L[i*n+k] = L_ik. Forward then backward substitution.
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i * n + k] * out[k]
        out[i] = s / L[i * n + i]
    for i in range(n - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, n):
            s -= L[k * n + i] * out[k]
        out[i] = s / L[i * n + i]
    return True


@_jit
def _dot(a, b, n):
    s = 0.0
    for i in range(n):
        s += a[i] * b[i]
    return s


@_jit
def _prox(kind, c, w, x, lam, n, F0, g0, inner, iters, tol, y, buf):
    """Approximately solve min_y F(y) = c f(base + y) + |y|^2/2 from y = 0.

    F0 = F(0) and g0 = grad F(0) (n,) are given (the caller has them for free). The solution
    is written to y[:n]; grad env(c f)(base) = -y. buf is scratch of shape (10, m*m) with
    m = max(NX, NW) (rows 6 and 7 hold a Hessian and its Cholesky factor).
    Returns the number of function + gradient evaluations used (for diagnostics; the
    "paper" algorithm is delegated to :func:`_paper_prox`).
    """
    d = buf[0]
    g = buf[1]
    yt = buf[2]
    z = buf[3]
    p = buf[4]
    one = buf[5]
    H = buf[6]
    L = buf[7]
    evals = 0
    for i in range(n):
        y[i] = 0.0
        g[i] = g0[i]
    Fy = F0
    g0n = _dot(g, g, n)
    if not math.isfinite(g0n) or not math.isfinite(F0):
        # The subproblem is undefined at its start point (e.g. an infinite derivative):
        # report it as a non-finite solution so the run ends naming this stage.
        for i in range(n):
            y[i] = np.nan
        return evals
    if inner == INNER_PAPER:
        _paper_prox(kind, c, w, x, lam, n, F0, g0, y, z, p, d)
        for i in range(n):
            y[i] = -y[i]
        return 2
    # The tolerance is relative to |grad F(0)|, which scales with c |lam|: long chains with
    # geometric steps have costates of wildly different sizes, so an absolute one would
    # stop at once near the start of the chain.
    gn0 = math.sqrt(g0n)
    for it in range(iters):
        if it > 0:
            _sub_grad(kind, c, w, x, lam, y, n, z, g)
            evals += 1
        gn = math.sqrt(_dot(g, g, n))
        if not (gn > tol * gn0):  # also stops on NaN, reported by the caller
            break
        used_newton = False
        if inner == INNER_NEWTON:
            _sub_hess(kind, c, w, x, lam, y, n, z, H)
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
            Fs = _sub_value(kind, c, w, x, lam, yt, n, z, p, one)
            evals += 1
            if Fs <= Fy + 1e-4 * s * slope:
                accepted = True
                break
            s *= 0.5
        if not accepted:
            break
        Fy = Fs
        for i in range(n):
            y[i] = yt[i]
    return evals


@_jit
def _residual(kind, c, w, x, lam, y, n, buf):
    """|grad F(y)|: optimality residual of an inner solution."""
    r = buf[8]
    _sub_grad(kind, c, w, x, lam, y, n, buf[3], r)
    return math.sqrt(_dot(r, r, n))


@_jit
def backward_moreau(w, X, gam_h, gam, alp, rules, inner, iters, tol, diagnostics,
                    G, lam0, resid):
    """Moreau backward pass (Algo 2, rescaled). See the block comment above.

    Parameters
    ----------
    w : (T, NW); X : (T+1, NX) from `forward`.
    gam_h : float; gam, alp : (T,) step sizes of the state and control subproblems.
    rules : (3,) int64, RULE_GBP or RULE_MBP for lines 2 (objective), 4 (states) and
        5 (controls) of Algo 2.
    inner, iters, tol : inner algorithm code, its iteration cap and gradient tolerance.
    diagnostics : bool, fill `resid` with subproblem gradient norms at the solutions.

    Outputs
    -------
    G : (T, NW) directions g_t (the update is w - G).
    lam0 : (NX,) costate of x_0.
    resid : (T+1, 2) residuals |grad F| of the state (col 0) and control (col 1)
        subproblems; row T, col 0 is the objective's subproblem. NaN where not computed.

    Returns
    -------
    int : -1 if all went well, else the row t of the first stage whose output is not
        finite (T for the objective).
    """
    T = w.shape[0]
    m = max(NX, NW)
    buf = np.empty((10, m * m))
    lam = np.empty(NX)
    nxt = np.empty(NX)
    gx = np.empty(NX)
    y = np.empty(m)
    for t in range(T + 1):
        resid[t, 0] = np.nan
        resid[t, 1] = np.nan
    one = np.empty(1)
    xT = X[T]
    # ---- line 2: lam_T
    _h_grad(xT, gx)
    for i in range(NX):
        gx[i] *= gam_h
    if rules[0] == RULE_GBP:
        for i in range(NX):
            lam[i] = gx[i]
    else:
        _h(xT, one)
        it_h = 1 if QUAD_H else iters
        in_h = INNER_NEWTON if QUAD_H else inner
        _prox(KIND_H, gam_h, w[0], xT, lam, NX, gam_h * one[0], gx, in_h, it_h, 0.0 if QUAD_H else tol, y, buf)
        if diagnostics:
            resid[T, 0] = _residual(KIND_H, gam_h, w[0], xT, lam, y, NX, buf)
        for i in range(NX):
            lam[i] = -y[i]
    for i in range(NX):
        if not math.isfinite(lam[i]):
            return T
    # ---- lines 3-6
    gw = np.empty(NW)
    wt = np.empty(NW)
    xt = np.empty(NX)
    for t in range(T - 1, -1, -1):
        # copies, not views, and no array swaps: see backward_moreau_paper
        for i in range(NW):
            wt[i] = w[t, i]
        for i in range(NX):
            xt[i] = X[t, i]
        _vjp(wt, xt, lam, gw, gx)            # gradients of lam^T phi at (w_t, x_{t-1})
        F0 = _dot(lam, X[t + 1], NX)          # lam^T phi(w_t, x_{t-1}), stored by forward
        # line 5: controls
        a = alp[t]
        for i in range(NW):
            gw[i] *= a
        if rules[2] == RULE_GBP or AFFINE_W:
            # For phi affine in w the w-prox is exact: g_t = alp_t dphi/dw^T lam_t.
            for i in range(NW):
                G[t, i] = gw[i]
        else:
            _prox(KIND_W, a, wt, xt, lam, NW, a * F0, gw, inner, iters, tol, y, buf)
            if diagnostics:
                resid[t, 1] = _residual(KIND_W, a, wt, xt, lam, y, NW, buf)
            for i in range(NW):
                G[t, i] = -y[i]
        # line 4: states
        c = gam[t]
        for i in range(NX):
            gx[i] *= c
        if rules[1] == RULE_GBP or AFFINE_X:
            for i in range(NX):
                nxt[i] = gx[i]
        else:
            _prox(KIND_X, c, wt, xt, lam, NX, c * F0, gx, inner, iters, tol, y, buf)
            if diagnostics:
                resid[t, 0] = _residual(KIND_X, c, wt, xt, lam, y, NX, buf)
            for i in range(NX):
                nxt[i] = -y[i]
        bad = False
        for i in range(NX):
            if not math.isfinite(nxt[i]):
                bad = True
        for i in range(NW):
            if not math.isfinite(G[t, i]):
                bad = True
        if bad:
            return t
        for i in range(NX):
            lam[i] = nxt[i]
    for i in range(NX):
        lam0[i] = lam[i]
    return -1


@_jit_inline
def _paper_eval(kind, c, w, x, lam, s, g0, z, p):
    """Value F(y) of the subproblem `kind` at y = -s g0 (p, z: scratch)."""
    sq = 0.0
    if kind == KIND_H:
        for i in range(NX):
            yi = -s * g0[i]
            z[i] = x[i] + yi
            sq += yi * yi
        _h(z, p)
        return c * p[0] + 0.5 * sq
    if kind == KIND_X:
        for i in range(NX):
            yi = -s * g0[i]
            z[i] = x[i] + yi
            sq += yi * yi
        _phi(w, z, p)
    else:
        for i in range(NW):
            yi = -s * g0[i]
            z[i] = w[i] + yi
            sq += yi * yi
        _phi(z, x, p)
    v = 0.0
    for i in range(NX):
        v += lam[i] * p[i]
    return c * v + 0.5 * sq


@_jit_inline
def _paper_prox(kind, c, w, x, lam, n, F0, g0, out, z, p, g1):
    """Inner algorithm "paper" (E.2.1) for the subproblem `kind`, written flat for speed: one gradient step from y = 0 with a Goldstein line
    search on s (bracketing from the unit step, exact for a linear stage), then one
    Barzilai-Borwein step. Writes grad env = -y into out[:n]."""
    gg = 0.0
    for i in range(n):
        gg += g0[i] * g0[i]
    if not (math.isfinite(gg) and math.isfinite(F0)):
        for i in range(n):
            out[i] = np.nan
        return
    if gg == 0.0:
        for i in range(n):
            out[i] = 0.0
        return
    lo = 0.0
    hi = np.inf
    s = 1.0
    s_ok = 0.0
    for _ in range(30):
        Fs = _paper_eval(kind, c, w, x, lam, s, g0, z, p)
        if not (Fs <= F0 - 0.25 * s * gg):      # too long (or NaN): shrink
            hi = s
            s = 0.5 * (lo + hi)
        elif Fs < F0 - 0.75 * s * gg:           # too short: grow
            s_ok = s
            lo = s
            s = 2.0 * s if hi == np.inf else 0.5 * (lo + hi)
        else:
            s_ok = s
            break
    if s_ok == 0.0:
        for i in range(n):
            out[i] = 0.0
        return
    # gradient at y1 = -s_ok g0
    if kind == KIND_H:
        for i in range(NX):
            z[i] = x[i] - s_ok * g0[i]
        _h_grad(z, g1)
    elif kind == KIND_X:
        for i in range(NX):
            z[i] = x[i] - s_ok * g0[i]
        _vjp_x(w, z, lam, g1)
    else:
        for i in range(NW):
            z[i] = w[i] - s_ok * g0[i]
        _vjp_w(z, x, lam, g1)
    sy = 0.0
    ss = 0.0
    for i in range(n):
        yi = -s_ok * g0[i]
        g1[i] = c * g1[i] + yi
        sy += yi * (g1[i] - g0[i])
        ss += yi * yi
    bb = ss / sy if (sy > 0.0 and math.isfinite(sy)) else 0.0
    for i in range(n):
        out[i] = s_ok * g0[i] + bb * g1[i]     # -(y1 - bb g1)


@_jit
def _prox_h(c, x, F0, g0, y, buf):
    """The objective's subproblem ``c h(x + y) + |y|^2/2`` as the "paper" kernels solve it
    (once per pass): exactly ``_prox(KIND_H, ...)`` with one Newton step when h is quadratic
    (exact, the line search accepts the unit step) and the "paper" algorithm otherwise.
    Written out for KIND_H alone so that calling it compiles no stage Hessian: ``_prox``
    compiles all three kinds, which doubled the cart-pole's uncached start-up."""
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
        _paper_prox(KIND_H, c, x, x, x, n, F0, g0, y, z, p, d)
        for i in range(n):
            y[i] = -y[i]
        return
    gn = math.sqrt(_dot(g, g, n))
    if not (gn > 0.0 * math.sqrt(g0n)):
        return
    for i in range(n):
        z[i] = x[i] + y[i]
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
        for i in range(n):
            yt[i] = y[i] + s * d[i]
        sq = 0.0
        for i in range(n):
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


@_jit
def backward_moreau_paper(w, X, gam_h, gam, alp, rules, G, lam0):
    """:func:`backward_moreau` specialised to the "paper" inner algorithm without
    diagnostics: the same numbers, with the per-stage work written flat (and the objective's
    subproblem by :func:`_prox_h`, the same numbers as ``_prox`` for it). The loop body
    copies w[t], X[t] into small buffers instead of taking views and copies the costate
    instead of swapping arrays: in a loop body with branches numba keeps the atomic
    reference-count updates of views and reassigned arrays, which cost more than the
    arithmetic of a small stage. The objective's subproblem (once per pass) uses the
    generic solver."""
    T = w.shape[0]
    m = max(NX, NW)
    buf = np.empty((10, m * m))
    lam = np.empty(NX)
    nxt = np.empty(NX)
    gx = np.empty(NX)
    gw = np.empty(NW)
    y = np.empty(m)
    z = np.empty(m)
    p = np.empty(NX)
    g1 = np.empty(m)
    one = np.empty(1)
    xT = X[T]
    _h_grad(xT, gx)
    for i in range(NX):
        gx[i] *= gam_h
    if rules[0] == RULE_GBP:
        for i in range(NX):
            lam[i] = gx[i]
    else:
        _h(xT, one)
        _prox_h(gam_h, xT, gam_h * one[0], gx, y, buf)
        for i in range(NX):
            lam[i] = -y[i]
    for i in range(NX):
        if not math.isfinite(lam[i]):
            return T
    mbp_x = rules[1] == RULE_MBP and not AFFINE_X
    mbp_w = rules[2] == RULE_MBP and not AFFINE_W
    wt = np.empty(NW)
    xt = np.empty(NX)
    gt = np.empty(NW)
    for t in range(T - 1, -1, -1):
        # Copies, not views: views created inside a branchy loop body cost atomic
        # reference-count updates that numba cannot prune (measured: ~3x slower).
        for i in range(NW):
            wt[i] = w[t, i]
        for i in range(NX):
            xt[i] = X[t, i]
        _vjp(wt, xt, lam, gw, gx)
        F0 = 0.0
        if mbp_x or mbp_w:
            for i in range(NX):
                F0 += lam[i] * X[t + 1, i]
        a = alp[t]
        for i in range(NW):
            gw[i] *= a
        if mbp_w:
            _paper_prox(KIND_W, a, wt, xt, lam, NW, a * F0, gw, gt, z, p, g1)
            for i in range(NW):
                G[t, i] = gt[i]
        else:
            for i in range(NW):
                G[t, i] = gw[i]
        c = gam[t]
        for i in range(NX):
            gx[i] *= c
        if mbp_x:
            _paper_prox(KIND_X, c, wt, xt, lam, NX, c * F0, gx, nxt, z, p, g1)
        else:
            for i in range(NX):
                nxt[i] = gx[i]
        ok = True
        for i in range(NX):
            ok = ok and math.isfinite(nxt[i])
        for i in range(NW):
            ok = ok and math.isfinite(G[t, i])
        if not ok:
            return t
        for i in range(NX):
            lam[i] = nxt[i]
    for i in range(NX):
        lam0[i] = lam[i]
    return -1
