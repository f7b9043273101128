"""Compiled passes of iLQR / DDP (iterative linear-quadratic regulator, differential dynamic
programming) for a CasADi chain: one generated module per chain, separate from the
gradient/Moreau module of :mod:`moreauctl.codegen.fused`.

Per stage ``x_{t+1} = phi(w_t, x_t)`` (row ``t`` of ``w``), with ``V`` the quadratic model of
the cost-to-go at ``x_{t+1}`` (gradient ``Vx``, Hessian ``Vxx``), the backward pass forms::

    Qx  = A^T Vx                    Qu  = B^T Vx
    Qxx = A^T Vxx A + Hxx(mu)       Qux = B^T Vxx A + Hux(mu)      Quu = B^T Vxx B + Huu(mu)

with ``A = dphi/dx``, ``B = dphi/dw`` and ``H..(mu)`` the Hessian blocks of ``mu^T phi``
(a vector-Hessian product, derived by CasADi), ``mu = mask * Vx``. ``mask = 1`` on every
entry is DDP (exact second-order terms); ``mask = 1`` on the entries that accumulate the
running cost and 0 elsewhere is iLQR (Gauss-Newton: the running cost's curvature, not the
dynamics'). The step ``dw_t = k_t + K_t dx_t`` minimizes the model over the box
``lower - w_t <= dw_t <= upper - w_t`` (projected Newton, Tassa, Mansard & Todorov 2014,
"Control-limited differential dynamic programming"; ``K_t``'s rows of clamped controls are
zero), with ``Quu + reg * scale_t I`` (Levenberg-Marquardt; ``scale_t = max(max_i |Quu_ii|,
tiny)``) in place of ``Quu`` for ``k`` and ``K``, and::

    Vx  = Qx + K^T Quu k + K^T Qu + Qux^T k
    Vxx = Qxx + K^T Quu K + K^T Qux + Qux^T K      (symmetrized)

The expected decrease of the step ``alpha`` is ``-(alpha dV1 + alpha^2 dV2)`` with
``dV1 = sum k^T Qu``, ``dV2 = sum k^T Quu k / 2``. The forward pass rolls out
``w_t + alpha k_t + K_t (x_t' - x_t)``, clipped to the box.

Generated names (``@_jit``; ``w`` ``(T, NW)``, ``X`` ``(T+1, NX)``, ``K`` ``(T, NW, NX)``,
``k`` ``(T, NW)``):

``f_ilqr_backward(w, X, lo, hi, bounded, mask, reg, K, k, out, P) -> bad``
    fills ``K, k``; ``out = (dV1, dV2, max |Quu_ii|)``; ``bad``: the first stage whose
    ``Quu + reg`` is not positive definite (or not finite), else -1
``f_ilqr_forward(w, X, K, k, alpha, lo, hi, wn, Xn, P) -> cost``
    the rollout, returns ``h(x_T)``
``_box_qp(H, g, lo, hi, x, nw, free, ...) -> nf``
    the box QP of one stage

``P`` holds the stage's run-time parameters (``dt`` and the plant's; see
``stage_p`` of :class:`~moreauctl.ControlProblem`).

Matrices are row-major ``(n, m)`` numpy arrays here (unlike the column-major flat arrays of
``moreauctl._kernels.linalg``). Plain-numpy twins: ``tests/naive.py``.
"""
from __future__ import annotations

import threading
from typing import Dict, List, Tuple

import casadi as ca

from .build import build_module
from .fused import PP, _args, _def_plain, _indent, _lhs, _names, _row

__all__ = ["ilqr_kernels", "ilqr_primitives", "ilqr_source"]


def ilqr_primitives(phi: ca.Function, h: ca.Function) -> Dict[str, ca.Function]:
    """The per-stage CasADi Functions of the iLQR passes.

    Parameters
    ----------
    phi : casadi.Function
        ``phi(w, x, p) -> x_next`` (``p``: the run-time parameters, possibly empty).
    h : casadi.Function
        ``h(x) -> scalar``.

    Returns
    -------
    dict
        ``_il_phi(w, x, p)``: ``phi``; ``_il_h(x)``: ``h``; ``_il_lq(w, x, mu, p)``: the entries
        of ``A (nx, nx), B (nx, nw), Hxx (nx, nx), Hux (nw, nx), Huu (nw, nw)``, each
        row-major, one after the other (``H..`` are the blocks of the Hessian of
        ``mu^T phi``); ``_il_h_quad(x)``: ``h``, its gradient ``(nx,)`` and Hessian
        ``(nx, nx)`` row-major, stacked in one column.
    """
    nw, nx = phi.size1_in(0), phi.size1_in(1)
    w = ca.SX.sym("w", nw)
    x = ca.SX.sym("x", nx)
    mu = ca.SX.sym("mu", nx)
    p = ca.SX.sym("p", phi.size1_in(2))
    f = phi(w, x, p)
    A = ca.jacobian(f, x)
    B = ca.jacobian(f, w)
    lag = ca.dot(mu, f)
    Hxx = ca.hessian(lag, x)[0]
    Huu = ca.hessian(lag, w)[0]
    Hux = ca.jacobian(ca.gradient(lag, w), x)

    def rows(M):  # row-major entries, zeros included
        return ca.vec(ca.densify(M).T)

    hv = h(x)
    hg = ca.gradient(hv, x)
    hH = ca.hessian(hv, x)[0]
    F = ca.Function
    return {
        "_il_phi": F("il_phi", [w, x, p], [f], ["w", "x", "p"], ["x_next"]),
        "_il_h": F("il_h", [x], [hv], ["x"], ["h"]),
        "_il_lq": F("il_lq", [w, x, mu, p],
                    [ca.vertcat(rows(A), rows(B), rows(Hxx), rows(Hux), rows(Huu))],
                    ["w", "x", "mu", "p"], ["lq"]),
        "_il_h_quad": F("il_h_quad", [x], [ca.vertcat(hv, hg, rows(hH))], ["x"], ["quad"]),
    }


# Generic helpers on small row-major arrays (sizes NX, NW), compiled with the module.
_HELPERS = '''
@_jit
def _chol(M, n, idx, L):
    """Cholesky factor of M[idx[:n]][:, idx[:n]] into L[:n, :n] (lower); False if the
    block is not positive definite (or not finite)."""
    for j in range(n):
        s = M[idx[j], idx[j]]
        for q in range(j):
            s -= L[j, q] * L[j, q]
        if not (s > 0.0) or not math.isfinite(s):
            return False
        L[j, j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = M[idx[i], idx[j]]
            for q in range(j):
                s -= L[i, q] * L[j, q]
            L[i, j] = s / L[j, j]
    return True


@_jit
def _chol_solve(L, n, b, out):
    """out[:n] = (L L^T)^{-1} b[:n] (out may be b)."""
    for i in range(n):
        s = b[i]
        for q in range(i):
            s -= L[i, q] * out[q]
        out[i] = s / L[i, i]
    for i in range(n - 1, -1, -1):
        s = out[i]
        for q in range(i + 1, n):
            s -= L[q, i] * out[q]
        out[i] = s / L[i, i]


@_jit
def _qp_value(H, g, x, n):
    v = 0.0
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += H[i, j] * x[j]
        v += x[i] * (g[i] + 0.5 * s)
    return v


@_jit
def _free_set(H, g, lo, hi, x, n, grad, free, idx):
    """grad = g + H x; free[i] = 0.0 for the entries held at a bound by their gradient
    (x at lo with grad > 0, or at hi with grad < 0), 1.0 otherwise; idx[:nf] the free
    entries. Returns nf."""
    for i in range(n):
        s = g[i]
        for j in range(n):
            s += H[i, j] * x[j]
        grad[i] = s
    nf = 0
    for i in range(n):
        clamped = (x[i] == lo[i] and grad[i] > 0.0) or (x[i] == hi[i] and grad[i] < 0.0)
        free[i] = 0.0 if clamped else 1.0
        if not clamped:
            idx[nf] = i
            nf += 1
    return nf


@_jit
def _box_qp(H, g, lo, hi, x, n, free, idx, L, grad, srch, xc, b):
    """min_x g^T x + x^T H x / 2 over lo <= x <= hi by projected Newton (Bertsekas 1982;
    the boxQP of Tassa et al. 2014), from the start x[:n] (clipped). On return x is the
    solution, free[i] is 1.0 for the unclamped entries, idx[:nf] their indices and L the
    Cholesky factor of H's free block. Returns nf, or -1 when the free block is not
    positive definite."""
    for i in range(n):
        x[i] = min(max(x[i], lo[i]), hi[i])
    value = _qp_value(H, g, x, n)
    nf = 0
    for it in range(100):
        nf = _free_set(H, g, lo, hi, x, n, grad, free, idx)
        if nf == 0:
            return 0
        if not _chol(H, nf, idx, L):
            return -1
        gn = 0.0
        for a in range(nf):
            gn += grad[idx[a]] * grad[idx[a]]
        if gn <= 1e-30:
            break
        # Newton step on the free entries with the clamped ones held:
        # srch_f = -H_ff^{-1} (g_f + H_fc x_c) - x_f
        for a in range(nf):
            i = idx[a]
            s = g[i]
            for j in range(n):
                if free[j] == 0.0:
                    s += H[i, j] * x[j]
            b[a] = s
        _chol_solve(L, nf, b, b)
        for i in range(n):
            srch[i] = 0.0
        sdotg = 0.0
        for a in range(nf):
            i = idx[a]
            srch[i] = -b[a] - x[i]
            sdotg += srch[i] * grad[i]
        if not (sdotg < 0.0):
            break
        step = 1.0
        accepted = False
        vc = value
        for ls in range(60):
            for i in range(n):
                xc[i] = min(max(x[i] + step * srch[i], lo[i]), hi[i])
            vc = _qp_value(H, g, xc, n)
            if (vc - value) / (step * sdotg) >= 0.1:
                accepted = True
                break
            step *= 0.6
        if not accepted:
            break
        for i in range(n):
            x[i] = xc[i]
        value = vc
    # free set and factor at the solution (they define K)
    nf = _free_set(H, g, lo, hi, x, n, grad, free, idx)
    if nf > 0 and not _chol(H, nf, idx, L):
        return -1
    return nf
'''


def _backward(nx: int, nw: int) -> List[str]:
    """Body of ``f_ilqr_backward`` (the Riccati recursion with box-clamped gains)."""
    nlq = nx * nx + nx * nw + nx * nx + nw * nx + nw * nw
    vals = _names("q", nlq)
    offs = {}
    o = 0
    for name, (r, c) in (("A", (nx, nx)), ("B", (nx, nw)), ("Hxx", (nx, nx)),
                         ("Hux", (nw, nx)), ("Huu", (nw, nw))):
        offs[name] = (o, r, c)
        o += r * c
    unpack = []
    for name, (o, r, c) in offs.items():
        for i in range(r):
            for j in range(c):
                unpack.append(f"{name}[{i}, {j}] = {vals[o + i * c + j]}")
    L = [
        "T = w.shape[0]",
        "A = np.empty((NX, NX))", "B = np.empty((NX, NW))", "Hxx = np.empty((NX, NX))",
        "Hux = np.empty((NW, NX))", "Huu = np.empty((NW, NW))",
        "Vx = np.empty(NX)", "Vxx = np.empty((NX, NX))", "mu = np.empty(NX)",
        "VA = np.empty((NX, NX))", "VB = np.empty((NX, NW))", "Qx = np.empty(NX)",
        "Qu = np.empty(NW)", "Qxx = np.empty((NX, NX))", "Qux = np.empty((NW, NX))",
        "Quu = np.empty((NW, NW))", "QuuF = np.empty((NW, NW))", "Lf = np.empty((NW, NW))",
        "kt = np.empty(NW)", "Kt = np.empty((NW, NX))", "dlo = np.empty(NW)",
        "dhi = np.empty(NW)", "free = np.empty(NW)", "idx = np.empty(NW, dtype=np.int64)",
        "s1 = np.empty(NW)", "s2 = np.empty(NW)", "s3 = np.empty(NW)", "s4 = np.empty(NW)",
        "quad = np.empty(1 + NX + NX * NX)",
        "_il_h_quad(X[T], quad)",
        "for i in range(NX):",
        "    Vx[i] = quad[1 + i]",
        "    for j in range(NX):",
        "        Vxx[i, j] = quad[1 + NX + i * NX + j]",
        "dV1 = 0.0", "dV2 = 0.0", "qmax = 0.0",
        "for t in range(T - 1, -1, -1):",
    ]
    body = ["for i in range(NX):", "    mu[i] = mask[i] * Vx[i]"]
    mus = [f"mu[{i}]" for i in range(nx)]
    body += [f"{_lhs(vals)} = _il_lq_s({_args(_row('w', 't', nw), _row('X', 't', nx), mus, PP)})"]
    body += unpack
    body += [
        # Q terms
        "for i in range(NX):",
        "    s = 0.0",
        "    for a in range(NX):",
        "        s += A[a, i] * Vx[a]",
        "    Qx[i] = s",
        "for i in range(NW):",
        "    s = 0.0",
        "    for a in range(NX):",
        "        s += B[a, i] * Vx[a]",
        "    Qu[i] = s",
        "for a in range(NX):",
        "    for j in range(NX):",
        "        s = 0.0",
        "        for b in range(NX):",
        "            s += Vxx[a, b] * A[b, j]",
        "        VA[a, j] = s",
        "    for j in range(NW):",
        "        s = 0.0",
        "        for b in range(NX):",
        "            s += Vxx[a, b] * B[b, j]",
        "        VB[a, j] = s",
        "for i in range(NX):",
        "    for j in range(NX):",
        "        s = Hxx[i, j]",
        "        for a in range(NX):",
        "            s += A[a, i] * VA[a, j]",
        "        Qxx[i, j] = s",
        "for i in range(NW):",
        "    for j in range(NX):",
        "        s = Hux[i, j]",
        "        for a in range(NX):",
        "            s += B[a, i] * VA[a, j]",
        "        Qux[i, j] = s",
        "    for j in range(NW):",
        "        s = Huu[i, j]",
        "        for a in range(NX):",
        "            s += B[a, i] * VB[a, j]",
        "        Quu[i, j] = s",
        # symmetrize Quu (rounding) and regularize relative to its scale
        "scale = 0.0",
        "fin = 0.0",  # a finite sum proves every entry finite (NaN fails max() silently)
        "for i in range(NW):",
        "    for j in range(i):",
        "        m = 0.5 * (Quu[i, j] + Quu[j, i])",
        "        Quu[i, j] = m",
        "        Quu[j, i] = m",
        "    scale = max(scale, abs(Quu[i, i]))",
        "    fin += Qu[i]",
        "    for j in range(NX):",
        "        fin += Qux[i, j]",
        "    for j in range(NW):",
        "        fin += Quu[i, j]",
        "for i in range(NX):",
        "    fin += Qx[i]",
        "    for j in range(NX):",
        "        fin += Qxx[i, j]",
        "if not math.isfinite(fin):",
        "    return t",
        "qmax = max(qmax, scale)",
        "scale = max(scale, 1e-300)",
        "for i in range(NW):",
        "    for j in range(NW):",
        "        QuuF[i, j] = Quu[i, j]",
        "    QuuF[i, i] += reg * scale",
        # the step: unconstrained Newton, or the box QP
        "if bounded:",
        "    for i in range(NW):",
        "        dlo[i] = lo[i] - w[t, i]",
        "        dhi[i] = hi[i] - w[t, i]",
        "        kt[i] = k[t, i]",
        "    nf = _box_qp(QuuF, Qu, dlo, dhi, kt, NW, free, idx, Lf, s1, s2, s3, s4)",
        "    if nf < 0:",
        "        return t",
        "else:",
        "    for i in range(NW):",
        "        idx[i] = i",
        "        free[i] = 1.0",
        "    if not _chol(QuuF, NW, idx, Lf):",
        "        return t",
        "    nf = NW",
        "    for i in range(NW):",
        "        s1[i] = -Qu[i]",
        "    _chol_solve(Lf, NW, s1, kt)",
        # K rows: free ones solve the free block, clamped ones are zero
        "for i in range(NW):",
        "    for j in range(NX):",
        "        Kt[i, j] = 0.0",
        "if nf > 0:",
        "    for j in range(NX):",
        "        for a in range(nf):",
        "            s1[a] = -Qux[idx[a], j]",
        "        _chol_solve(Lf, nf, s1, s1)",
        "        for a in range(nf):",
        "            Kt[idx[a], j] = s1[a]",
        # value update with the unregularized Q terms
        "for i in range(NX):",
        "    s = Qx[i]",
        "    for a in range(NW):",
        "        qk = 0.0",
        "        for b in range(NW):",
        "            qk += Quu[a, b] * kt[b]",
        "        s += Kt[a, i] * (qk + Qu[a]) + Qux[a, i] * kt[a]",
        "    Vx[i] = s",
        "for i in range(NX):",
        "    for j in range(NX):",
        "        s = Qxx[i, j]",
        "        for a in range(NW):",
        "            qK = 0.0",
        "            for b in range(NW):",
        "                qK += Quu[a, b] * Kt[b, j]",
        "            s += Kt[a, i] * (qK + Qux[a, j]) + Qux[a, i] * Kt[a, j]",
        "        Vxx[i, j] = s",
        "for i in range(NX):",
        "    for j in range(i):",
        "        m = 0.5 * (Vxx[i, j] + Vxx[j, i])",
        "        Vxx[i, j] = m",
        "        Vxx[j, i] = m",
        "for a in range(NW):",
        "    qk = 0.0",
        "    for b in range(NW):",
        "        qk += Quu[a, b] * kt[b]",
        "    dV1 += kt[a] * Qu[a]",
        "    dV2 += 0.5 * kt[a] * qk",
        "    k[t, a] = kt[a]",
        "    for j in range(NX):",
        "        K[t, a, j] = Kt[a, j]",
    ]
    L += _indent(body, 1)
    L += ["out[0] = dV1", "out[1] = dV2", "out[2] = qmax", "return -1"]
    return L


def _forward(nx: int, nw: int) -> List[str]:
    """Body of ``f_ilqr_forward``: the closed-loop rollout, scalars in registers."""
    x = _names("x", nx)
    u = _names("u", nw)
    L = [f"{xi} = X[0, {i}]" for i, xi in enumerate(x)]
    L += [f"Xn[0, {i}] = {xi}" for i, xi in enumerate(x)]
    L += ["for t in range(w.shape[0]):"]
    body = []
    for j, uj in enumerate(u):
        terms = " + ".join(f"K[t, {j}, {i}] * ({xi} - X[t, {i}])" for i, xi in enumerate(x))
        body += [f"{uj} = w[t, {j}] + alpha * k[t, {j}] + {terms}",
                 f"{uj} = min(max({uj}, lo[{j}]), hi[{j}])",
                 f"wn[t, {j}] = {uj}"]
    body += [f"{_lhs(x)} = _il_phi_s({_args(u, x, PP)})"]
    body += [f"Xn[t + 1, {i}] = {xi}" for i, xi in enumerate(x)]
    L += _indent(body, 1)
    L += [f"(hv,) = _il_h_s({_args(x)})", "return hv"]
    return L


def ilqr_source(nx: int, nw: int, n_p: int = 0) -> str:
    """Source of the iLQR kernels for a chain with ``nx`` states, ``nw`` controls and
    ``n_p`` run-time stage parameters (see the module docstring); expects ``_il_lq_s``,
    ``_il_phi_s``, ``_il_h_s`` (scalar form) and ``_il_h_quad`` (array form) in the module.
    The kernels take the parameters ``P`` (n_p,) last."""
    pp = _names("pp", n_p)

    def _def(signature: str, doc: str, body: List[str]) -> str:
        return _def_plain(signature[:-1] + ", P)", doc,
                          [f"{v} = P[{i}]" for i, v in enumerate(pp)] + body)

    text = "\n\n".join([
        f"NX = {int(nx)}\nNW = {int(nw)}",
        _HELPERS.strip() + "\n",
        _def("f_ilqr_backward(w, X, lo, hi, bounded, mask, reg, K, k, out)",
             "Riccati recursion with box-clamped gains: fills K (T, NW, NX), k (T, NW) and "
             "out = (dV1, dV2, max |Quu_ii|); k's entries on input start the box QPs. "
             "Returns the first stage (row) where Quu + reg is not positive definite or "
             "not finite, else -1.", _backward(nx, nw)),
        _def("f_ilqr_forward(w, X, K, k, alpha, lo, hi, wn, Xn)",
             "Rollout of w + alpha k + K (x' - x), clipped to [lo, hi]: fills wn (T, NW), "
             "Xn (T+1, NX); returns h(x_T).", _forward(nx, nw)),
    ])
    return text.replace(", __PP__", "".join(", " + v for v in pp))


# chain module's cache key -> (iLQR module, Functions): chains of the same stage and
# objective (another x0 or horizon: MPC, sweeps) share one derivation and one module
_MODULES: Dict[str, Tuple[object, Dict[str, ca.Function]]] = {}
_LOCK = threading.Lock()


def ilqr_kernels(chain) -> Tuple[object, Dict[str, ca.Function]]:
    """The generated iLQR module of a :class:`~moreauctl.codegen.CasadiChain` (built once per
    stage and objective, cached on disk like every generated module) and the CasADi
    Functions it came from."""
    key = chain.kernels.__moreauctl_key__  # set by build_module
    with _LOCK:
        hit = _MODULES.get(key)
        if hit is not None:
            return hit
        fns = ilqr_primitives(chain.functions["_phi"], chain.functions["_h"])
        scalar = {k + "_s": fns[k] for k in ("_il_phi", "_il_h", "_il_lq")}
        module = build_module({"_il_h_quad": fns["_il_h_quad"]},
                              extra_source=ilqr_source(chain.nx, chain.nw, chain.params.size),
                              tag="ilqr",
                              scalar_functions=scalar)
        _MODULES[key] = (module, fns)
        return module, fns
