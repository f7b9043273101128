"""The per-stage primitives of a CasADi chain, derived symbolically.

From the stage ``phi(w, x)`` and the objective ``h(x)`` (SX Functions) we derive, with
CasADi's own reverse mode, every per-stage function the compiled passes call
(:mod:`moreauctl.codegen.fused`, :mod:`moreauctl.codegen.inner`) and the structure flags
(``phi`` affine in ``w`` or in ``x``, ``h`` quadratic), detected symbolically so the Moreau
pass uses its closed forms without the user declaring anything.
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from .intermediates import split_transcendentals

__all__ = ["stage_primitives"]


def _dense(e: ca.SX) -> ca.SX:
    return ca.densify(e)


def stage_primitives(stage: ca.Function, objective: ca.Function):
    """Derive the per-stage CasADi Functions and structure flags.

    Parameters
    ----------
    stage : casadi.Function
        ``phi(w, x) -> x_next``, or ``phi(w, x, p) -> x_next`` with run-time parameters
        ``p`` (``ControlProblem.stage_p``: ``dt`` and the plant's parameters); ``w`` of
        shape (nw, 1), ``x`` and ``x_next`` of (nx, 1), ``p`` of (np, 1).
    objective : casadi.Function
        ``h(x) -> scalar``.

    Returns
    -------
    functions : dict of str to casadi.Function
        ``_phi, _vjp, _vjp_w, _vjp_x, _h, _h_grad, _h_hess, _hess_xx, _hess_ww`` (the array
        primitives; :data:`moreauctl.codegen.inner.ARRAY_PRIMITIVES` are compiled, all of
        them serve the plain-numpy stage views), and the scalar-form names of
        :data:`moreauctl.codegen.fused.SCALAR_PRIMITIVES` (ending in ``_s``), among them
        ``_phi_jac_s`` (stage and its per-stage stored values) and ``_vjp_jac_s`` (the VJPs
        from those values).
    Every stage Function takes ``p`` as its LAST input (a 0-entry column when ``stage``
    has none), in scalar form as ``NP`` more scalars; ``h`` takes no ``p``.
    flags : dict
        ``NX, NW, NP, AFFINE_W, AFFINE_X, QUAD_H``, and ``NJV`` (number of values stored per
        stage) with ``STORE_JAC`` (whether the passes store them) and ``STORED``
        (``"jacobian"``: varying Jacobian entries, ``"transcendentals"``: sin/cos/exp...
        values, or ``"none"``).
    """
    nw, nx = stage.size1_in(0), stage.size1_in(1)
    if stage.size1_out(0) != nx:
        raise ValueError(f"stage output has {stage.size1_out(0)} entries; expected nx = {nx}")
    if objective.size1_in(0) != nx or objective.numel_out(0) != 1:
        raise ValueError(f"objective must map ({nx},) -> scalar; got {objective.size_in(0)} "
                         f"-> {objective.size_out(0)}")
    if stage.n_in() not in (2, 3):
        raise ValueError(f"stage must map (w, x) or (w, x, p) -> x_next; got {stage}")
    n_p = stage.size1_in(2) if stage.n_in() == 3 else 0
    w = ca.SX.sym("w", nw)
    x = ca.SX.sym("x", nx)
    lam = ca.SX.sym("lam", nx)
    p = ca.SX.sym("p", n_p)
    phi = stage(w, x, p) if n_p or stage.n_in() == 3 else stage(w, x)
    if stage.n_in() == 2:  # uniform signatures: an empty p
        stage = ca.Function(stage.name(), [w, x, p], [phi], ["w", "x", "p"], ["x_next"])
    h = objective(x)
    lp = ca.dot(lam, phi)
    gw = ca.gradient(lp, w)  # dphi/dw^T lam (CasADi reverse mode)
    gx = ca.gradient(lp, x)
    F = ca.Function
    fns = {
        "_phi": F("phi", [w, x, p], [phi]),
        "_vjp": F("vjp", [w, x, lam, p], [gw, gx]),
        "_vjp_w": F("vjp_w", [w, x, lam, p], [gw]),
        "_vjp_x": F("vjp_x", [w, x, lam, p], [gx]),
        "_h": F("h", [x], [h]),
        "_h_grad": F("h_grad", [x], [ca.gradient(h, x)]),
        "_h_hess": F("h_hess", [x], [_dense(ca.hessian(h, x)[0])]),
        "_hess_xx": F("hess_xx", [w, x, lam, p], [_dense(ca.hessian(lp, x)[0])]),
        "_hess_ww": F("hess_ww", [w, x, lam, p], [_dense(ca.hessian(lp, w)[0])]),
    }
    # Algo 3 stores per-stage values in the forward pass so that the backward pass does not
    # re-evaluate the stage. Two kinds, the cheaper backward first:
    #  1. The Jacobian entries that vary with (w, x) (the constants are compiled into the
    #     backward primitive): for the pendulum one number per stage (-dt g/l cos theta);
    #     the backward pass is then plain multiply-adds.
    #  2. Otherwise the stage's transcendental values (sin, cos, exp, ...; see
    #     moreauctl.codegen.intermediates): for the RK4 cart-pole 8 numbers instead of 20
    #     Jacobian entries; the backward pass keeps its polynomial and division work but
    #     calls no libm function.
    # Either is stored only while the extra memory keeps a gradient call's arrays (X, G and
    # the stored values) within 3x the trajectory's (X and w): njv <= 2 (nx + nw).
    # Both kinds share one interface: _phi_jac(w, x, p) -> (phi, jv) and
    # _vjp_jac(w, x, jv, lam, p) -> (gw, gx). Entries that depend on p only are not
    # "varying": the backward primitive computes them from p (loop invariants).
    budget = 2 * (nx + nw)
    # _vjp_jac_s(w, x, jv, lam) takes nw + 2 nx + njv scalars: CPython passes a call with
    # more than 30 positional arguments as one tuple (CALL_FUNCTION_EX), and numba cannot
    # inline such a call ("Calling a closure with *args is unsupported"): the planar
    # quadrotor with a running cost (nx = 7, nw = 2, 18 varying entries) failed to compile
    budget = min(budget, 30 - nw - 2 * nx - n_p)
    wx = ca.vertcat(w, x)
    J = ca.jacobian(phi, wx)
    nzs = J.nonzeros()
    varying = [k for k, e in enumerate(nzs) if ca.depends_on(e, wx)]
    stored = "none"
    if len(varying) <= budget:
        stored = "jacobian"
        nv = max(1, len(varying))
        jv = ca.SX.sym("jv", nv)
        entries = list(nzs)
        for j, k in enumerate(varying):
            entries[k] = jv[j]
        J_stored = ca.SX(J.sparsity(), ca.vertcat(*entries)) if entries else ca.SX(J.sparsity())
        gwx = ca.mtimes(J_stored.T, lam)
        jv_expr = ca.vertcat(*[nzs[k] for k in varying]) if varying else ca.SX.zeros(1)
        stored_fns = (F("phi_jac", [w, x, p], [phi, jv_expr]),
                      F("vjp_jac", [w, x, jv, lam, p], [gwx[:nw], gwx[nw:]]))
    else:
        phi_s, vjp_s, ns = split_transcendentals(stage)
        if 0 < ns <= budget:
            stored = "transcendentals"
            nv = ns
            stored_fns = (phi_s, vjp_s)
    if stored == "none":
        # keep the names defined (the passes reference them); never called
        nv = 1
        jv = ca.SX.sym("jv", 1)
        stored_fns = (F("phi_jac", [w, x, p], [phi, ca.SX.zeros(1)]),
                      F("vjp_jac", [w, x, jv, lam, p], [gw, gx]))
    # Scalar-form twins for the fused loops (moreauctl.codegen.fused); the two combined
    # ones give the Moreau pass a stage value and its subproblem gradient in one call.
    fns["_phi_jac_s"], fns["_vjp_jac_s"] = stored_fns
    for name in ("_phi", "_vjp", "_vjp_x", "_vjp_w", "_h", "_h_grad"):
        fns[name + "_s"] = fns[name]
    fns["_phi_vjp_x_s"] = F("phi_vjp_x", [w, x, lam, p], [phi, gx])
    fns["_phi_vjp_w_s"] = F("phi_vjp_w", [w, x, lam, p], [phi, gw])
    flags = {
        "NJV": int(nv),
        "STORE_JAC": stored != "none",
        "STORED": stored,
        "NX": int(nx),
        "NW": int(nw),
        "NP": int(n_p),
        "AFFINE_W": not ca.depends_on(ca.jacobian(phi, w), w),
        "AFFINE_X": not ca.depends_on(ca.jacobian(phi, x), x),
        "QUAD_H": not ca.depends_on(ca.hessian(h, x)[0], x),
    }
    return fns, flags
