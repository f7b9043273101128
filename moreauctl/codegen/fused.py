"""The compiled passes of a CasADi chain: loops with states and costates in scalar locals.

We know ``nx`` and ``nw`` when generating code, so every small vector operation is unrolled
and the stage is called in its scalar form (:func:`~moreauctl.codegen.translate.translate_scalar`,
inlined by numba): the recurrence runs in registers, and ``X[t+1]`` is a side store off the
critical path (a store-to-load round trip per stage would cost about as much as the
pendulum's arithmetic). This module is the one source of every pass over the stages; the
array-form subproblem solvers they call are in :mod:`moreauctl.codegen.inner`.

Generated names (all ``@_jit``; ``w`` is ``(T, NW)``, ``X`` is ``(T+1, NX)``):

``f_forward(w, x0, X) -> h``
    forward pass, fills ``X``
``f_objective(w, x0) -> h``
    nothing stored
``f_forward_jac(w, x0, X, JV) -> h``
    also stores ``JV (T, NJV)``
``f_backward_gradient(w, X, G, lam0)``
    Algo 4, re-evaluating VJPs
``f_backward_gradient_jac(w, JV, X, G, lam0)``
    Algo 4 from the stored ``JV``
``f_value_and_gradient(w, x0, X, JV, G, lam0) -> h``
    both passes in one call
``f_backward_moreau_paper(w, X, JV, use_jv, gam_h, gam, alp, rules, G, lam0) -> bad``
    Algo 2, inner algorithm of E.2.1 inlined (fast path)
``f_backward_moreau(..., rules, inner, iters, tol, diagnostics, G, lam0, resid) -> bad``
    the same text, inner algorithm chosen at run time
``f_backward_pen(..., alp, pen_x, pen_w, rules, inner, iters, tol, G, lam0) -> bad``
    the same with the IBP/ALBP lines (compiled when used)

Every kernel also takes ``P`` (NP,) LAST (not shown above): the stage's run-time parameters
(``dt`` and the plant's, ``stage_p`` of :class:`~moreauctl.ControlProblem`; empty when the values
are compiled in). It loads them into scalars ``pp_0, pp_1, ...`` before its loop and passes
them to every scalar stage primitive, whose last ``NP`` arguments they are.

``bad`` is the first stage (0-based row) whose output is not finite, ``T`` for the
objective's line, or -1. The plain-numpy twins of these passes are the methods of
:class:`moreauctl.chain.Chain` run on the chain's :class:`~moreauctl.codegen.CasadiStage`
views (tests compare them).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

__all__ = ["fused_source", "SCALAR_PRIMITIVES"]

#: Scalar-form primitives the fused kernels call (built in :mod:`.stages`).
SCALAR_PRIMITIVES = ("_phi_s", "_phi_jac_s", "_vjp_s", "_vjp_jac_s", "_vjp_x_s", "_vjp_w_s",
                     "_phi_vjp_x_s", "_phi_vjp_w_s", "_h_s", "_h_grad_s")


#: Placeholder argument for the stage's run-time parameters (dt, plant parameters) in the
#: generated calls: :func:`fused_source` replaces it by the scalars ``pp_0, pp_1, ...``
#: loaded from ``P`` at the top of every kernel (loop invariants), or by nothing.
PP = ["__PP__"]


def _names(prefix: str, n: int) -> List[str]:
    return [f"{prefix}_{i}" for i in range(n)]


def _lhs(names: Sequence[str]) -> str:
    """Left-hand side unpacking a tuple (a 1-tuple needs the trailing comma)."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _args(*groups: Sequence[str]) -> str:
    return ", ".join(n for g in groups for n in g)


def _row(array: str, t: str, n: int) -> List[str]:
    return [f"{array}[{t}, {i}]" for i in range(n)]


def _indent(lines: List[str], k: int) -> List[str]:
    return [" " * (4 * k) + s for s in lines]


def _forward(nx: int, nw: int, njv: int, store: bool, jac: bool) -> List[str]:
    """Body of a forward pass; `store` writes X, `jac` also writes JV."""
    x = _names("x", nx)
    out = [f"{xi} = x0[{i}]" for i, xi in enumerate(x)]
    if store:
        out += [f"X[0, {i}] = {xi}" for i, xi in enumerate(x)]
    out.append("for t in range(w.shape[0]):")
    if jac:
        j = _names("j", njv)
        body = [f"{_lhs(x + j)} = _phi_jac_s({_args(_row('w', 't', nw), x, PP)})"]
        body += [f"JV[t, {i}] = {ji}" for i, ji in enumerate(j)]
    else:
        body = [f"{_lhs(x)} = _phi_s({_args(_row('w', 't', nw), x, PP)})"]
    if store:
        body += [f"X[t + 1, {i}] = {xi}" for i, xi in enumerate(x)]
    out += _indent(body, 1)
    out.append(f"(hv,) = _h_s({_args(x)})")
    out.append("return hv")
    return out


def _backward_gradient(nx: int, nw: int, njv: int, jac: bool) -> List[str]:
    lam = _names("l", nx)
    g = _names("g", nw)
    out = ["T = G.shape[0]", f"{_lhs(lam)} = _h_grad_s({_args(_row('X', 'T', nx))})",
           "for t in range(T - 1, -1, -1):"]
    if jac:
        call = f"_vjp_jac_s({_args(_row('w', 't', nw), _row('X', 't', nx), _row('JV', 't', njv), lam, PP)})"
    else:
        call = f"_vjp_s({_args(_row('w', 't', nw), _row('X', 't', nx), lam, PP)})"
    body = [f"{_lhs(g + lam)} = {call}"] + [f"G[t, {i}] = {gi}" for i, gi in enumerate(g)]
    out += _indent(body, 1)
    out += [f"lam0[{i}] = {li}" for i, li in enumerate(lam)]
    return out


def _paper_prox(kind: str, n: int, nx: int, c: str, F0: str, g0: List[str], base: List[str],
                other: List[str], lam: List[str], out: List[str]) -> List[str]:
    """Scalar twin of ``_paper_prox`` in chain_kernels.py (same operations, same order).

    kind "x": subproblem ``c lam^T phi(w, x + y) + |y|^2/2`` (base = x, other = w);
    kind "w": ``c lam^T phi(w + y, x) + |y|^2/2`` (base = w, other = x).
    Writes ``grad env = -y`` into the locals ``out``. The first Goldstein trial (s = 1, taken
    on almost every stage) evaluates the stage and the subproblem gradient together, so the
    Barzilai-Borwein step needs no further stage evaluation when that trial is accepted.
    """
    y = _names("y", n)
    z = _names("z", n)
    p = _names("p", nx)
    q = _names("q", n)
    if kind == "x":
        args_z = _args(other, z)
        both, value, grad = "_phi_vjp_x_s", "_phi_s", "_vjp_x_s"
    else:
        args_z = _args(z, other)
        both, value, grad = "_phi_vjp_w_s", "_phi_s", "_vjp_w_s"
    L = ["gg = 0.0"] + [f"gg += {a} * {a}" for a in g0]
    L += [f"if not (math.isfinite(gg) and math.isfinite({F0})):"]
    L += _indent([f"{o} = math.nan" for o in out], 1)
    L += ["elif gg == 0.0:"] + _indent([f"{o} = 0.0" for o in out], 1)
    L += ["else:"]
    # The first trial (s = 1) is peeled out of the search loop: it is accepted on almost
    # every stage, and it evaluates the stage value and the subproblem gradient together.
    def trial(first: bool) -> List[str]:
        scale = "-1.0 *" if first else "-s *"
        L2 = ["sq = 0.0"]
        for yi, zi, bi, gi in zip(y, z, base, g0):
            L2 += [f"{yi} = {scale} {gi}", f"{zi} = {bi} + {yi}", f"sq += {yi} * {yi}"]
        if first:
            L2 += [f"{_lhs(p + q)} = {both}({args_z}, {_args(lam, PP)})"]
        else:
            L2 += [f"{_lhs(p)} = {value}({args_z}, {_args(PP)})"]
        L2 += ["v = 0.0"] + [f"v += {li} * {pi}" for li, pi in zip(lam, p)]
        L2 += [f"Fs = {c} * v + 0.5 * sq"]
        return L2

    def bb_step(s_ok: str) -> List[str]:
        """Barzilai-Borwein step from y = -s_ok g0, with q the stage's raw subproblem
        gradient term at y; writes the outputs."""
        C = ["sy = 0.0", "ss = 0.0"]
        for yi, qi, gi in zip(y, q, g0):
            C += [f"{yi} = -{s_ok} * {gi}", f"{qi} = {c} * {qi} + {yi}",
                  f"sy += {yi} * ({qi} - {gi})", f"ss += {yi} * {yi}"]
        C += ["bb = ss / sy if (sy > 0.0 and math.isfinite(sy)) else 0.0"]
        C += [f"{o} = {s_ok} * {gi} + bb * {qi}" for o, gi, qi in zip(out, g0, q)]
        return C

    # Fast path: the unit trial satisfies both Goldstein conditions (almost every stage).
    # It is the search loop's first decision taken early, and its Barzilai-Borwein step is
    # the general one with s_ok = 1.0 written as a literal (1.0 * g == g and -1.0 * g == -g
    # exactly, so the bits do not change); straight-line code keeps the costate recursion
    # free of the loop's bookkeeping.
    B = trial(True)
    B += [f"if (Fs <= {F0} - 0.25 * gg) and not (Fs < {F0} - 0.75 * gg):"]
    B += _indent(bb_step("1.0"), 1)
    B += ["else:"]
    S = ["lo = 0.0", "hi = math.inf", "s = 1.0", "s_ok = 0.0", "k_ = 0"]
    S += ["while True:"]
    S += _indent([f"if not (Fs <= {F0} - 0.25 * s * gg):",   # too long (or NaN): shrink
                  "    hi = s",
                  "    s = 0.5 * (lo + hi)",
                  f"elif Fs < {F0} - 0.75 * s * gg:",        # too short: grow
                  "    s_ok = s",
                  "    lo = s",
                  "    s = 2.0 * s if hi == math.inf else 0.5 * (lo + hi)",
                  "else:",
                  "    s_ok = s",
                  "    break",
                  "k_ += 1",
                  "if k_ == 30:",
                  "    break"] + trial(False), 1)
    S += ["if s_ok == 0.0:"] + _indent([f"{o} = 0.0" for o in out], 1)
    S += ["else:"]
    C = ["if s_ok != 1.0:"]
    C += _indent([f"{zi} = {bi} - s_ok * {gi}" for zi, bi, gi in zip(z, base, g0)]
                 + [f"{_lhs(q)} = {grad}({args_z}, {_args(lam, PP)})"], 1)
    C += bb_step("s_ok")
    S += _indent(C, 1)
    B += _indent(S, 1)
    L += _indent(B, 1)
    return L


def _mbp_or_gbp(affine: bool, flag: str, out: List[str], lin: List[str],
                prox: List[str]) -> List[str]:
    """One line of Algo 2: the prox lines when the runtime ``flag`` asks for MBP, else the
    linearized direction ``lin``. A stage affine in the variable makes the two coincide
    (the closed form of the prox), so only the copy is emitted."""
    copy = [f"{a} = {b}" for a, b in zip(out, lin)]
    if affine:
        return copy
    return [f"if {flag}:"] + _indent(prox, 1) + ["else:"] + _indent(copy, 1)


def _cholesky_solve(n: int, H, rhs: List[str], out: List[str]) -> List[str]:
    """Unrolled Cholesky solve of ``H out = rhs`` (``H[a][b]``: names of a symmetric n x n
    matrix); NaN outputs when ``H`` is not positive definite."""
    Lm = [[f"L{i}_{j}" for j in range(n)] for i in range(n)]
    L = ["ok = True"]
    for j in range(n):
        L += [f"d_ = {H[j][j]}" + "".join(f" - {Lm[j][k]} * {Lm[j][k]}" for k in range(j))]
        L += ["if not (d_ > 0.0):", "    ok = False", "    d_ = 1.0",
              f"{Lm[j][j]} = math.sqrt(d_)"]
        for i in range(j + 1, n):
            L += [f"{Lm[i][j]} = ({H[i][j]}" + "".join(f" - {Lm[i][k]} * {Lm[j][k]}"
                                                     for k in range(j)) + f") / {Lm[j][j]}"]
    for i in range(n):
        L += [f"{out[i]} = ({rhs[i]}" + "".join(f" - {Lm[i][k]} * {out[k]}" for k in range(i))
              + f") / {Lm[i][i]}"]
    for i in range(n - 1, -1, -1):
        L += [f"{out[i]} = ({out[i]}" + "".join(f" - {Lm[k][i]} * {out[k]}"
                                                 for k in range(i + 1, n)) + f") / {Lm[i][i]}"]
    L += ["if not ok:"] + _indent([f"{o} = math.nan" for o in out], 1)
    return L


def _pen_closed(kind: str, n: int, nx: int, nw: int, wt: List[str], xt: List[str],
                out: List[str]) -> List[str]:
    """The IBP/ALBP line of a stage affine in the variable, in closed form: with the
    constant Jacobian ``J`` (its rows from ``nx`` VJPs with unit vectors, in a loop: one
    call site of the stage's VJP), solve ``(pp J^T J + qq I) y = -(c_lin + pp) J^T lam``
    (``lam`` in the array ``lv``; the plain inverse, ``qq = 0``, is damped by
    ``1e-12 trace / n`` like the array solver); writes ``-y`` into ``out``."""
    e = _names("e", nx)
    row = _names("jr", n)
    rest = _names("jo", nx if kind == "w" else nw)
    lhs = row + rest if kind == "w" else rest + row
    H = [[f"H{a}_{b}" for b in range(n)] for a in range(n)]
    jl = _names("jl", n)
    L = [f"{H[a][b]} = 0.0" for a in range(n) for b in range(a, n)] + [f"{j} = 0.0" for j in jl]
    loop = [f"{ei} = 1.0 if i_ == {k} else 0.0" for k, ei in enumerate(e)]
    loop += [f"{_lhs(lhs)} = _vjp_s({_args(wt, xt, e, PP)})"]
    loop += [f"{H[a][b]} += {row[a]} * {row[b]}" for a in range(n) for b in range(a, n)]
    loop += [f"{jl[a]} += {row[a]} * lv[i_]" for a in range(n)]
    L += ["for i_ in range(NX):"] + _indent(loop, 1)
    L += [f"{H[a][b]} *= pp" for a in range(n) for b in range(a, n)]
    L += [f"{H[b][a]} = {H[a][b]}" for a in range(n) for b in range(a + 1, n)]
    L += ["if qq == 0.0:", "    qq = 1e-12 * max((" + " + ".join(H[a][a] for a in range(n))
          + f") / {n}, 1e-300)"]
    L += [f"{H[a][a]} += qq" for a in range(n)]
    rhs = _names("r", n)
    L += [f"{rhs[a]} = -(c_lin + pp) * {jl[a]}" for a in range(n)]
    y = _names("ys", n)
    L += _cholesky_solve(n, H, rhs, y)
    L += [f"{o} = -{yi}" for o, yi in zip(out, y)]
    return L


def _pen_paper_fn(kind: str, nx: int, nw: int, njv: int) -> List[str]:
    """Body of ``_pen_paper_<kind>``: the inner algorithm "paper" (E.2.1) on an IBP/ALBP
    line ``c_lin lam^T phi + pp/2 |phi - tgt|^2 + qq |y|^2/2``, the scalar twin of
    :func:`moreauctl.rules.paper_step` on :func:`~moreauctl.rules.penalty_direction`'s
    subproblem. A function of its own (not inlined into the passes) with one call site of
    the stage per use: the Goldstein search evaluates the stage with its stored values
    (``_phi_jac_s``), the gradient at the accepted step is a VJP from those values."""
    n = nx if kind == "x" else nw
    w, x, lam, tgt, g0 = (_names("w", nw), _names("x", nx), _names("l", nx), _names("tg", nx),
                          _names("g0", n))
    base, other = (x, w) if kind == "x" else (w, x)
    y, z, p, jv, u, q = (_names("y", n), _names("z", n), _names("p", nx), _names("jp", njv),
                         _names("u", nx), _names("q", n))
    rest = _names("jq", nx if kind == "w" else nw)
    args_z = _args(other, z) if kind == "x" else _args(z, other)
    zero, nan = _lhs(["0.0"] * n), _lhs(["math.nan"] * n)
    L = ["gg = 0.0"] + [f"gg += {a} * {a}" for a in g0]
    L += ["if not (math.isfinite(gg) and math.isfinite(F0)):", f"    return {nan}",
          "if gg == 0.0:", f"    return {zero}"]

    def at(s: str) -> List[str]:
        A = ["sq = 0.0"]
        for yi, zi, bi, gi in zip(y, z, base, g0):
            A += [f"{yi} = -{s} * {gi}", f"{zi} = {bi} + {yi}", f"sq += {yi} * {yi}"]
        return A + [f"{_lhs(p + jv)} = _phi_jac_s({args_z}, {_args(PP)})"]
    L += ["lo = 0.0", "hi = math.inf", "s = 1.0", "s_ok = 0.0", "done = False",
          "for k_ in range(30):"]
    trial = at("s") + ["v = 0.0"]
    trial += [f"v += c_lin * {li} * {pi} + 0.5 * pp * ({pi} - {ti}) * ({pi} - {ti})"
              for li, pi, ti in zip(lam, p, tgt)]
    trial += ["Fs = v + 0.5 * qq * sq",
              "lo, hi, s, s_ok, done = _goldstein(Fs, F0, s, gg, lo, hi, s_ok)",
              "if done:", "    break"]
    L += _indent(trial, 1)
    L += ["if s_ok == 0.0:", f"    return {zero}"]
    # the stage at s_ok: the last trial when it was accepted, else evaluate it there
    L += ["if not done:"] + _indent(at("s_ok"), 1)
    L += [f"{ui} = c_lin * {li} + pp * ({pi} - {ti})"
          for ui, li, pi, ti in zip(u, lam, p, tgt)]
    lhs = q + rest if kind == "w" else rest + q
    L += [f"{_lhs(lhs)} = _vjp_jac_s({args_z}, {_args(jv, u, PP)})"]
    L += ["sy = 0.0", "ss = 0.0"]
    for yi, qi, gi in zip(y, q, g0):
        L += [f"{yi} = -s_ok * {gi}", f"{qi} = {qi} + qq * {yi}",
              f"sy += {yi} * ({qi} - {gi})", f"ss += {yi} * {yi}"]
    L += ["bb = ss / sy if (sy > 0.0 and math.isfinite(sy)) else 0.0"]
    L += ["return " + _lhs([f"s_ok * {gi} + bb * {qi}" for gi, qi in zip(g0, q)])]
    return L


def _pen_gn_fn(kind: str, nx: int, nw: int, njv: int) -> List[str]:
    """Body of ``_pen_gn_<kind>``: the plain inverse ``argmin_y |phi(base + y) - tgt|^2/2``
    by damped Gauss-Newton steps (``iters`` at most, relative tolerance ``tol``, Armijo
    backtracking, stopping where the predicted decrease is below F's rounding): the scalar
    twin of :func:`moreauctl.rules.penalty_direction` with inner "newton" and ``c = inf``.
    Returns ``-y``. The stage is evaluated with its stored values, the Jacobian's rows are
    VJPs from them with unit vectors, in a loop (one call site)."""
    n = nx if kind == "x" else nw
    w, x, tgt = _names("w", nw), _names("x", nx), _names("tg", nx)
    base, other = (x, w) if kind == "x" else (w, x)
    y, z, d, g = _names("y", n), _names("z", n), _names("d", n), _names("g", n)
    p, jv, e, r = _names("p", nx), _names("jp", njv), _names("e", nx), _names("jr", n)
    rest = _names("jq", nx if kind == "w" else nw)
    args_z = _args(other, z) if kind == "x" else _args(z, other)
    H = [[f"H{a}_{b}" for b in range(n)] for a in range(n)]

    def value_at(step: str) -> List[str]:
        V = [f"{zi} = {bi} + ({yi} + {step} * {di})" for zi, bi, yi, di in zip(z, base, y, d)]
        V += [f"{_lhs(p + jv)} = _phi_jac_s({args_z}, {_args(PP)})", "Fs = 0.0"]
        V += [f"Fs += 0.5 * ({pi} - {ti}) * ({pi} - {ti})" for pi, ti in zip(p, tgt)]
        return V
    L = [f"{v} = 0.0" for v in y + d] + ["gn0 = 0.0", "s = 0.0"] + value_at("s") + ["Fy = Fs"]
    body = [f"{_lhs(g + rest if kind == 'w' else rest + g)} = "
            f"_vjp_jac_s({args_z}, {_args(jv)}, "
            + _args([f"{pi} - {ti}" for pi, ti in zip(p, tgt)], PP) + ")"]
    body += ["gn = math.sqrt(" + " + ".join(f"{ga} * {ga}" for ga in g) + ")",
             "if it_ == 0:", "    gn0 = gn", "if not (gn > tol * gn0):", "    break"]
    body += [f"{H[a][b]} = 0.0" for a in range(n) for b in range(a, n)]
    loop = [f"{ei} = 1.0 if i_ == {k} else 0.0" for k, ei in enumerate(e)]
    loop += [f"{_lhs(r + rest if kind == 'w' else rest + r)} = "
             f"_vjp_jac_s({args_z}, {_args(jv, e, PP)})"]
    loop += [f"{H[a][b]} += {r[a]} * {r[b]}" for a in range(n) for b in range(a, n)]
    body += ["for i_ in range(NX):"] + _indent(loop, 1)
    body += [f"{H[b][a]} = {H[a][b]}" for a in range(n) for b in range(a + 1, n)]
    body += ["dmp = 1e-12 * max((" + " + ".join(H[a][a] for a in range(n)) + f") / {n}, 1e-300)"]
    body += [f"{H[a][a]} += dmp" for a in range(n)]
    body += _cholesky_solve(n, H, [f"-{ga}" for ga in g], d)
    body += ["if not ok:"] + _indent([f"{di} = -{ga}" for di, ga in zip(d, g)], 1)
    body += ["slope = " + " + ".join(f"{ga} * {di}" for ga, di in zip(g, d)),
             "if not (-slope > 1e-15 * abs(Fy)):", "    break",
             "s = 1.0", "accepted = False", "for k_ in range(50):"]
    body += _indent(value_at("s") + ["if Fs <= Fy + 1e-4 * s * slope:", "    accepted = True",
                                     "    break", "s *= 0.5"], 1)
    body += ["if not accepted:", "    break", "Fy = Fs"]
    body += [f"{yi} = {yi} + s * {di}" for yi, di in zip(y, d)]   # z, p, jv are there
    L += ["for it_ in range(iters):"] + _indent(body, 1)
    L += ["return " + _lhs([f"-{yi}" for yi in y])]
    return L


def _pen_paper_signature(kind: str, nx: int, nw: int) -> str:
    n = nx if kind == "x" else nw
    args = _args(_names("w", nw), _names("x", nx), _names("l", nx), _names("tg", nx),
                 _names("g0", n))
    return f"_pen_paper_{kind}({args}, c_lin, pp, qq, F0, __PP__)"


def _pen_or(rule: str, pens: str, kind: str, n: int, nx: int, nw: int, c: str,
            affine: bool, out: List[str], lam: List[str], g_raw: List[str], wt: List[str],
            xt: List[str], other: List[str]) -> List[str]:
    """One IBP/ALBP line of the general pass when the rule asks for it, else the MBP/GBP
    lines ``other``. IBP takes the line's step ``c`` as its penalty; ALBP takes ``c`` as the
    step of its linear term and ``pens[t]`` as the penalty, and is MBP where that penalty is
    0. Affine lines are solved in closed form (:func:`_pen_closed`), the others by the inner
    algorithm "paper" (``_pen_paper_<kind>``, :func:`_pen_paper_fn`) or, for the plain
    inverse with "newton", Gauss-Newton (``_pen_gn_<kind>``, :func:`_pen_gn_fn`). Specs
    needing anything else (inner "gd", Newton on a regularized inverse, diagnostics) run
    the Python pass (:attr:`moreauctl.rules.BackwardSpec.codes`). ``g_raw`` are the
    stage's VJP ``J^T lam``."""
    L = [f"if {rule} == RULE_IBP or ({rule} == RULE_ALBP and {pens}[t] != 0.0):"]
    tgt = _names("tg", nx)
    body = [f"c_lin = 0.0 if {rule} == RULE_IBP else {c}",
            f"c_pen = {c} if {rule} == RULE_IBP else {pens}[t]",
            "pp = c_pen", "qq = 1.0",
            "if math.isinf(c_pen):", "    pp = 1.0", "    qq = 0.0"]
    body += [f"{ti} = X[t + 1, {i}] - {li}" for i, (ti, li) in enumerate(zip(tgt, lam))]
    if affine:
        return L + _indent(body + _pen_closed(kind, n, nx, nw, wt, xt, out), 1) + \
            ["else:"] + _indent(other, 1)
    g0 = _names("g0", n)
    paper = [f"{gi} = (c_lin + pp) * {ri}" for gi, ri in zip(g0, g_raw)]
    # F(0), evaluated like the trials evaluate F (phi(base) = X[t + 1])
    paper += ["F0p = 0.0"]
    paper += [f"F0p += c_lin * {li} * X[t + 1, {i}] + 0.5 * pp * (X[t + 1, {i}] - {ti}) * "
              f"(X[t + 1, {i}] - {ti})" for i, (li, ti) in enumerate(zip(lam, tgt))]
    paper += [f"{_lhs(out)} = _pen_paper_{kind}({_args(wt, xt, lam, tgt, g0)}, c_lin, pp, "
              f"qq, F0p, __PP__)"]
    gn = [f"{_lhs(out)} = _pen_gn_{kind}({_args(wt, xt, tgt)}, iters, tol, __PP__)"]
    body += ["if inner == INNER_PAPER:"] + _indent(paper, 1) + ["else:"] + _indent(gn, 1)
    return L + _indent(body, 1) + ["else:"] + _indent(other, 1)


def _array_prox(kind: str, n: int, c: str, F0: str, g0: List[str], out: List[str]) -> List[str]:
    """A subproblem solved by the array-form ``_prox`` (inner "gd"/"newton"; see
    :mod:`moreauctl.codegen.inner`) from the loop's scalars, copied into ``wv, xv, lv``."""
    L = [f"gv[{i}] = {g}" for i, g in enumerate(g0)]
    L += [f"_prox({kind}, {c}, wv, xv, lv, P, {n}, {F0}, gv, inner, iters, tol, y, buf)"]
    L += [f"{o} = -y[{i}]" for i, o in enumerate(out)]
    return L


def _residual_lines(kind: str, n: int, c: str, out: List[str], col: int) -> List[str]:
    """Diagnostics: ``|grad F(y)|`` at the solution ``y = -out``."""
    return (["if diagnostics:"]
            + _indent([f"y[{i}] = -{o}" for i, o in enumerate(out)]
                      + [f"resid[t, {col}] = _residual({kind}, {c}, wv, xv, lv, P, y, {n}, buf)"], 1))


def _backward_moreau(nx: int, nw: int, njv: int, store: bool, affine_w: bool,
                     affine_x: bool, quad_h: bool, general: bool,
                     pen: bool = False) -> List[str]:
    """Body of the Moreau backward pass (Algo 2, rescaled as in E.2.1).

    ``general=False`` gives the "paper" pass (the inner algorithm of E.2.1 inlined in scalar
    locals, no diagnostics): the fast path. ``general=True`` adds, from the same text, the
    runtime choice of the inner algorithm (``inner``: "paper" inlined, "gd"/"newton" through
    the array solver ``_prox``) and the residuals of every subproblem (``diagnostics``).
    ``pen=True`` (with ``general``) adds the IBP/ALBP state and weight lines
    (:func:`_pen_or`): a pass of its own, compiled only when an oracle with those rules runs
    (the others read ALBP as MBP and have no IBP line; the callers route the specs).
    """
    lam = _names("l", nx)
    nxt = _names("n", nx)
    gw = _names("gw", nw)
    gx = _names("gx", nx)
    gt = _names("gt", nw)
    wt = _names("w", nw)
    xt = _names("x", nx)
    out = ["T = w.shape[0]",
           "m = max(NX, NW)",
           "buf = np.empty((10, m * m + 3 * m + 2))",
           "lamv = np.empty(NX)",
           "gxv = np.empty(NX)",
           "y = np.empty(m)",
           "one = np.empty(1)"]
    if general:
        out += ["wv = np.empty(NW)", "xv = np.empty(NX)", "lv = np.empty(NX)", "gv = np.empty(m)",
                "for t in range(T + 1):",
                "    resid[t, 0] = np.nan",
                "    resid[t, 1] = np.nan"]
    out += ["xT = X[T]",
            # The objective's subproblem runs once per pass, with the array solvers.
            "_h_grad(xT, gxv)",
            "for i in range(NX):",
            "    gxv[i] *= gam_h",
            "if rules[0] == RULE_GBP:",
            "    for i in range(NX):",
            "        lamv[i] = gxv[i]"]
    out += ["else:",
            "    _h(xT, one)"]
    if general:
        # a quadratic h is solved exactly by one Newton step, whatever the inner algorithm
        out += _indent(["if QUAD_H:",
                        "    _prox(KIND_H, gam_h, wv, xT, lv, P, NX, gam_h * one[0], gxv, "
                        "INNER_NEWTON, 1, 0.0, y, buf)",
                        "else:",
                        "    _prox(KIND_H, gam_h, wv, xT, lv, P, NX, gam_h * one[0], gxv, inner, "
                        "iters, tol, y, buf)",
                        "if diagnostics:",
                        "    resid[T, 0] = _residual(KIND_H, gam_h, wv, xT, lv, P, y, NX, buf)"], 1)
    else:
        out += ["    _prox_h(gam_h, xT, gam_h * one[0], gxv, y, buf)"]
    out += ["    for i in range(NX):",
            "        lamv[i] = -y[i]",
            "for i in range(NX):",
            "    if not math.isfinite(lamv[i]):",
            "        return T"]
    out += [f"{li} = lamv[{i}]" for i, li in enumerate(lam)]
    out += [f"mbp_x = (rules[1] == RULE_MBP or rules[1] == RULE_ALBP) and not {affine_x}",
            f"mbp_w = (rules[2] == RULE_MBP or rules[2] == RULE_ALBP) and not {affine_w}",
            "for t in range(T - 1, -1, -1):"]
    body = [f"{wi} = w[t, {i}]" for i, wi in enumerate(wt)]
    body += [f"{xi} = X[t, {i}]" for i, xi in enumerate(xt)]
    if general:
        body += [f"wv[{i}] = {v}" for i, v in enumerate(wt)]
        body += [f"xv[{i}] = {v}" for i, v in enumerate(xt)]
        body += [f"lv[{i}] = {v}" for i, v in enumerate(lam)]
    vjp_x = f"_vjp_s({_args(wt, xt, lam, PP)})"
    if store:
        body += ["if use_jv:",
                 f"    {_lhs(gw + gx)} = _vjp_jac_s({_args(wt, xt, _row('JV', 't', njv), lam, PP)})",
                 "else:",
                 f"    {_lhs(gw + gx)} = {vjp_x}"]
    else:
        body += [f"{_lhs(gw + gx)} = {vjp_x}"]
    body += ["F0 = 0.0", "if mbp_x or mbp_w:"]
    body += _indent([f"F0 += {li} * X[t + 1, {i}]" for i, li in enumerate(lam)], 1)

    def prox(kind: str, n: int, c: str, g0: List[str], base: List[str], other: List[str],
             res: List[str], col: int) -> List[str]:
        inline = _paper_prox(kind, n, nx, c, f"{c} * F0", g0, base, other, lam, res)
        if not general:
            return inline
        code = "KIND_W" if kind == "w" else "KIND_X"
        return (["if inner == INNER_PAPER:"] + _indent(inline, 1) + ["else:"]
                + _indent(_array_prox(code, n, c, f"{c} * F0", g0, res), 1)
                + _residual_lines(code, n, c, res, col))

    scale_w = [f"{g} *= a" for g in gw]
    line_w = _mbp_or_gbp(affine_w, "mbp_w", gt, gw, prox("w", nw, "a", gw, wt, xt, gt, 1))
    if pen:   # the penalty lines read the raw VJP: scale it in the other branch
        body += ["a = alp[t]"]
        body += _pen_or("rules[2]", "pen_w", "w", nw, nx, nw, "a", affine_w, gt, lam, gw, wt,
                        xt, scale_w + line_w)
    else:
        body += ["a = alp[t]"] + scale_w + line_w
    body += [f"G[t, {i}] = {g}" for i, g in enumerate(gt)]
    scale_x = [f"{g} *= c" for g in gx]
    line_x = _mbp_or_gbp(affine_x, "mbp_x", nxt, gx, prox("x", nx, "c", gx, xt, wt, nxt, 0))
    if pen:
        body += ["c = gam[t]"]
        body += _pen_or("rules[1]", "pen_x", "x", nx, nx, nw, "c", affine_x, nxt, lam, gx, wt,
                        xt, scale_x + line_x)
    else:
        body += ["c = gam[t]"] + scale_x + line_x
    ok = " and ".join([f"math.isfinite({v})" for v in nxt + gt])
    body += [f"if not ({ok}):", "    return t"]
    body += [f"{a} = {b}" for a, b in zip(lam, nxt)]
    out += _indent(body, 1)
    out += [f"lam0[{i}] = {li}" for i, li in enumerate(lam)]
    out.append("return -1")
    return out


def _def_plain(signature: str, doc: str, body: List[str]) -> str:
    return "\n".join(["@_jit", f"def {signature}:", f'    """{doc}"""'] + _indent(body, 1)) + "\n"


def fused_source(flags: Dict[str, object]) -> str:
    """Source of the fused loop kernels for one chain.

    Parameters
    ----------
    flags : dict
        ``NX, NW, NJV, STORE_JAC, AFFINE_W, AFFINE_X, QUAD_H`` as returned by
        :func:`moreauctl.codegen.stages.stage_primitives`.

    Returns
    -------
    str
        Python source defining the kernels listed in the module docstring; it expects the
        scalar primitives :data:`SCALAR_PRIMITIVES` and the generic kernels' helpers
        (``_h``, ``_h_grad``, ``_prox_h``, the ``RULE_*``/``KIND_*``/``INNER_*`` codes) in scope.
    """
    nx, nw, njv = int(flags["NX"]), int(flags["NW"]), int(flags["NJV"])
    n_p = int(flags.get("NP", 0))
    store = bool(flags["STORE_JAC"])
    pp = _names("pp", n_p)

    def _def(signature: str, doc: str, body: List[str]) -> str:
        # every kernel takes the run-time parameters P (NP,) last and keeps them in scalars
        sig = signature[:-1] + ", P)"
        return _def_plain(sig, doc, [f"{v} = P[{i}]" for i, v in enumerate(pp)] + body)

    parts = [
        "# ---- fused loop kernels, generated by moreauctl.codegen.fused for this chain ----",
        _def("f_forward(w, x0, X)", "Twin of forward: fills X (T+1, NX), returns h(x_T).",
             _forward(nx, nw, njv, store=True, jac=False)),
        _def("f_objective(w, x0)", "Twin of objective: h(x_T), nothing stored.",
             _forward(nx, nw, njv, store=False, jac=False)),
        _def("f_forward_jac(w, x0, X, JV)",
             "Twin of forward_jac: fills X (T+1, NX) and JV (T, NJV), returns h(x_T).",
             _forward(nx, nw, njv, store=True, jac=True)),
        _def("f_backward_gradient(w, X, G, lam0)",
             "Twin of backward_gradient: fills G (T, NW) and lam0 (NX,).",
             _backward_gradient(nx, nw, njv, jac=False)),
        _def("f_backward_gradient_jac(w, JV, X, G, lam0)",
             "Twin of backward_gradient_jac: fills G (T, NW) and lam0 (NX,).",
             _backward_gradient(nx, nw, njv, jac=True)),
    ]
    if store:
        vg = ["hv = f_forward_jac(w, x0, X, JV, P)",
              "f_backward_gradient_jac(w, JV, X, G, lam0, P)", "return hv"]
    else:
        vg = ["hv = f_forward(w, x0, X, P)", "f_backward_gradient(w, X, G, lam0, P)",
              "return hv"]
    parts.append(_def("f_value_and_gradient(w, x0, X, JV, G, lam0)",
                      "Forward and gradient backward pass in one call (JV is scratch of "
                      "shape (T, NJV), unused when STORE_JAC is False).", vg))
    for kind in ("x", "w"):   # helpers of f_backward_pen: the run-time parameters as scalars
        parts.append(_def_plain(_pen_paper_signature(kind, nx, nw),
                                f"The paper inner algorithm on an IBP/ALBP {kind}-line.",
                                _pen_paper_fn(kind, nx, nw, njv)))
        args = _args(_names("w", nw), _names("x", nx), _names("tg", nx))
        parts.append(_def_plain(f"_pen_gn_{kind}({args}, iters, tol, __PP__)",
                                f"Gauss-Newton plain inverse of a {kind}-line.",
                                _pen_gn_fn(kind, nx, nw, njv)))
    moreau = (nx, nw, njv, store, bool(flags["AFFINE_W"]), bool(flags["AFFINE_X"]),
              bool(flags["QUAD_H"]))
    parts.append(_def(
        "f_backward_moreau_paper(w, X, JV, use_jv, gam_h, gam, alp, rules, G, lam0)",
        "Moreau backward pass with the inner algorithm of E.2.1. With use_jv (and "
        "STORE_JAC) the first VJP of each stage uses the values JV (T, NJV) stored by "
        "f_forward_jac. Returns the first stage (0-based row) with a non-finite result, T "
        "for the objective, or -1.",
        _backward_moreau(*moreau, general=False)))
    parts.append(_def(
        "f_backward_moreau(w, X, JV, use_jv, gam_h, gam, alp, rules, inner, iters, tol, "
        "diagnostics, G, lam0, resid)",
        "f_backward_moreau_paper with the inner algorithm chosen at run time (inner, iters, "
        "tol) and, with diagnostics, the residual |grad F| of every subproblem in resid "
        "(T+1, 2): column 0 the state line (row T: the objective), column 1 the weight "
        "line, NaN where a closed form or the gradient rule was used.",
        _backward_moreau(*moreau, general=True)))
    parts.append(_def(
        "f_backward_pen(w, X, JV, use_jv, gam_h, gam, alp, pen_x, pen_w, rules, inner, "
        "iters, tol, G, lam0)",
        "f_backward_moreau without diagnostics, with the IBP and ALBP state and weight lines "
        "(pen_x, pen_w (T,): the ALBP penalties; inner \"paper\", or Gauss-Newton on plain "
        "inverses).",
        # the general text writes resid's NaN rows up front: give it room (numba does not
        # check bounds)
        ["diagnostics = False", "resid = np.empty((w.shape[0] + 1, 2))"]
        + _backward_moreau(*moreau, general=True, pen=True)))
    text = "\n\n".join(parts)
    return text.replace(", __PP__", "".join(", " + v for v in pp))
