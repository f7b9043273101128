"""Naive twins of the compiled kernels: plain Python loops over CasADi Functions, and scipy
solves of the prox subproblems. Slow, obviously right, used as references in tests."""
from __future__ import annotations

import casadi as ca
import numpy as np
from scipy.optimize import minimize


def forward(problem, w):
    """States (T+1, nx) and cost by evaluating CasADi's own stage Function stage by stage."""
    X = np.empty((problem.horizon + 1, problem.nx))
    X[0] = problem.x0_chain
    for t in range(problem.horizon):
        X[t + 1] = np.asarray(problem.stage(w[t], X[t])).ravel()
    return float(problem.objective(X[-1])), X


def casadi_gradient(problem, w):
    """Gradient of the full symbolic rollout by CasADi's reverse mode (reference)."""
    J = problem.casadi_rollout()
    W = ca.SX.sym("W", J.size1_in(0))
    gJ = ca.Function("gJ", [W], [ca.gradient(J(W), W)])
    return np.asarray(gJ(w.ravel())).reshape(w.shape)


def _lin_fns(problem):
    w = ca.SX.sym("w", problem.nw)
    x = ca.SX.sym("x", problem.nx)
    lam = ca.SX.sym("lam", problem.nx)
    lp = ca.dot(lam, problem.stage(w, x))
    return (ca.Function("lp", [w, x, lam], [lp]),
            ca.Function("glp", [w, x, lam], [ca.gradient(lp, w), ca.gradient(lp, x)]))


def prox_grad_env(f, grad_f, z, c, tol=1e-13):
    """grad env(c f)(z) = -argmin_y c f(z + y) + |y|^2/2 by scipy (BFGS, tight tolerance)."""
    z = np.asarray(z, dtype=float)
    res = minimize(lambda y: c * f(z + y) + 0.5 * y @ y, np.zeros_like(z),
                   jac=lambda y: c * grad_f(z + y) + y, method="BFGS",
                   options={"gtol": tol, "maxiter": 10000})
    return -res.x


def moreau_directions(problem, w, gam_h, gam, alp, rules=("mbp", "mbp", "mbp")):
    """Rescaled Moreau back-propagation with every subproblem solved by scipy."""
    lpF, glpF = _lin_fns(problem)
    _, X = forward(problem, w)
    h = lambda x: float(problem.objective(x))  # noqa: E731
    xs = ca.SX.sym("x", problem.nx)
    hgrad = ca.Function("hgrad", [xs], [ca.gradient(problem.objective(xs), xs)])
    T = problem.horizon
    if rules[0] == "gbp":
        lam = gam_h * np.asarray(hgrad(X[T])).ravel()
    else:
        lam = prox_grad_env(h, lambda x: np.asarray(hgrad(x)).ravel(), X[T], gam_h)
    G = np.empty_like(w)
    for t in range(T - 1, -1, -1):
        wt, xt = w[t], X[t]
        gw, gx = (np.asarray(v).ravel() for v in glpF(wt, xt, lam))
        if rules[2] == "gbp":
            G[t] = alp[t] * gw
        else:
            G[t] = prox_grad_env(lambda v: float(lpF(v, xt, lam)),
                                 lambda v: np.asarray(glpF(v, xt, lam)[0]).ravel(), wt, alp[t])
        if rules[1] == "gbp":
            lam_new = gam[t] * gx
        else:
            lam_new = prox_grad_env(lambda v: float(lpF(wt, v, lam)),
                                    lambda v: np.asarray(glpF(wt, v, lam)[1]).ravel(), xt, gam[t])
        lam = lam_new
    return G


# ---------------------------------------------------------------------------------------
# networks: plain-numpy twins of moreauctl.nn (explicit loops over output pixels; the
# activations' derivatives from the pre-activation z, not from the outputs)
# ---------------------------------------------------------------------------------------

_ACT = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: (z > 0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 / np.cosh(z) ** 2),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)),
                lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
}


def _conv_fwd(x, W, b, s, p):
    """z[n, o, i, j] = b[o] + sum_{c,u,v} W[o, c, u, v] x_pad[n, c, s_h i + u, s_w j + v]."""
    (sh, sw), (ph, pw) = s, p
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    O, C, kh, kw = W.shape
    ho = (xp.shape[2] - kh) // sh + 1
    wo = (xp.shape[3] - kw) // sw + 1
    z = np.empty((x.shape[0], O, ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw]
            z[:, :, i, j] = np.einsum("ncuv,ocuv->no", patch, W) + b
    return z


def _conv_bwd(x, W, dz, s, p):
    (sh, sw), (ph, pw) = s, p
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    O, C, kh, kw = W.shape
    gW = np.zeros_like(W)
    gxp = np.zeros_like(xp)
    for i in range(dz.shape[2]):
        for j in range(dz.shape[3]):
            patch = xp[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw]
            gW += np.einsum("no,ncuv->ocuv", dz[:, :, i, j], patch)
            gxp[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw] += np.einsum(
                "no,ocuv->ncuv", dz[:, :, i, j], W)
    gb = dz.sum(axis=(0, 2, 3))
    gx = gxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    return gW, gb, gx


def _pool_fwd(x, k, s, kind):
    (kh, kw), (sh, sw) = k, s
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    out = np.empty(x.shape[:2] + (ho, wo))
    arg = np.empty(x.shape[:2] + (ho, wo), dtype=int)
    for i in range(ho):
        for j in range(wo):
            win = x[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw].reshape(x.shape[0], x.shape[1], -1)
            if kind == "max":
                arg[:, :, i, j] = win.argmax(axis=2)          # first maximum, row-major
                out[:, :, i, j] = win.max(axis=2)
            else:
                out[:, :, i, j] = win.mean(axis=2)
    return out, arg


def _pool_bwd(x, k, s, kind, arg, lam):
    (kh, kw), (sh, sw) = k, s
    gx = np.zeros_like(x)
    N, C = x.shape[:2]
    for i in range(lam.shape[2]):
        for j in range(lam.shape[3]):
            if kind == "max":
                a = arg[:, :, i, j]
                for n in range(N):
                    for c in range(C):
                        u, v = divmod(int(a[n, c]), kw)
                        gx[n, c, sh * i + u, sw * j + v] += lam[n, c, i, j]
            else:
                gx[:, :, sh * i:sh * i + kh, sw * j:sw * j + kw] += \
                    lam[:, :, i, j][:, :, None, None] / (kh * kw)
    return gx


def network_value_and_grad(net, params, X, y, loss, mu=0.0, decay_biases=True):
    """Mean loss (+ mu/2 |w|^2) and its gradient, a list of tuples like ``params``, of a
    moreauctl.nn.Sequential, recomputed with the loops above (layers read by type)."""
    from scipy.special import logsumexp, softmax
    x = np.asarray(X, dtype=float).reshape((X.shape[0],) + net.input_shape)
    tape = []
    for st, p in zip(net.stages, params):
        kind = type(st).__name__
        if kind == "Dense":
            W, b = p
            z = x @ W.T + b
            f, _ = _ACT[st.activation.name]
            tape.append((kind, x, z))
            x = f(z)
        elif kind == "Conv2d":
            W, b = p
            z = _conv_fwd(x, W, b, (st.sh, st.sw), (st.ph, st.pw))
            tape.append((kind, x, z))
            x = _ACT[st.activation.name][0](z)
        elif kind in ("MaxPool2d", "AvgPool2d"):
            out, arg = _pool_fwd(x, (st.kh, st.kw), (st.sh, st.sw), kind[:3].lower())
            tape.append((kind, x, arg))
            x = out
        elif kind == "Flatten":
            tape.append((kind, x, None))
            x = x.reshape(x.shape[0], -1)
        elif kind == "ActivationLayer":
            tape.append((kind, x, None))
            x = _ACT[st.activation.name][0](x)
        else:
            raise TypeError(kind)
    m, K = x.shape
    Y = np.zeros((m, K))
    Y[np.arange(m), y] = 1.0
    if loss == "cross_entropy":
        val = float(np.mean(logsumexp(x, axis=1) - x[np.arange(m), y]))
        lam = (softmax(x, axis=1) - Y) / m
    else:
        val = 0.5 * float(np.sum((x - Y) ** 2)) / m
        lam = (x - Y) / m
    grads = [None] * len(params)
    for t in range(len(params) - 1, -1, -1):
        st = net.stages[t]
        kind, xin, aux = tape[t]
        if kind in ("Dense", "Conv2d"):
            W, b = params[t]
            dz = lam * _ACT[st.activation.name][1](aux)
            if kind == "Dense":
                gW, gb, lam = dz.T @ xin, dz.sum(axis=0), dz @ W
            else:
                gW, gb, lam = _conv_bwd(xin, W, dz, (st.sh, st.sw), (st.ph, st.pw))
            if mu:
                gW = gW + mu * W
                gb = gb + (mu * b if decay_biases else 0.0)
            grads[t] = (gW, gb)
        elif kind in ("MaxPool2d", "AvgPool2d"):
            lam = _pool_bwd(xin, (st.kh, st.kw), (st.sh, st.sw), kind[:3].lower(), aux, lam)
            grads[t] = ()
        elif kind == "Flatten":
            lam = lam.reshape(xin.shape)
            grads[t] = ()
        else:
            lam = lam * _ACT[st.activation.name][1](xin)
            grads[t] = ()
    if mu:
        for p in params:
            if p:
                val += 0.5 * mu * float(np.sum(p[0] ** 2))
                if decay_biases:
                    val += 0.5 * mu * float(np.sum(p[1] ** 2))
    return val, grads


def bfgs_argmin(F, grad, n, tol=1e-12):
    """scipy's BFGS solve of a (strongly convex) subproblem in R^n from 0, tight tolerance."""
    return minimize(F, np.zeros(n), jac=grad, method="BFGS",
                    options={"gtol": tol, "maxiter": 20000}).x


def moreau_line_errors(chain, w, data, out, gam_h, gam, alp, reg_scale=None):
    """Relative errors of every line of a Moreau pass (``out``: an OracleOutput with
    diagnostics: costates and ``info["g"]``) against scipy's argmin of the line's defining
    subproblem, with the costates the pass produced: ``[("objective", err), ("states", t,
    err), ("weights", t, err), ...]``. Stages without parameters have no weight line; a pass
    that skipped ``lam_0`` (``chain.input_costate`` False) has no first state line."""
    from moreauctl.api import relative_error
    lams, X, g = out.info["costates"], out.states, out.info["g"]
    xT = X[-1]
    y = bfgs_argmin(lambda y: gam_h * chain.h.value(xT + y.reshape(xT.shape), data) + 0.5 * y @ y,
                    lambda y: gam_h * chain.h.grad(xT + y.reshape(xT.shape), data).ravel() + y,
                    xT.size)
    errs = [("objective", relative_error(lams[-1], -y.reshape(xT.shape)))]
    for t, st in enumerate(chain.stages):
        wt, x, lam = chain.layout.segment(w, t), X[t], lams[t + 1]
        if lams[t] is not None:
            c = gam[t]
            y = bfgs_argmin(
                lambda y: c * float(np.vdot(lam, st.forward(wt, x + y.reshape(x.shape)))) + 0.5 * y @ y,
                lambda y: c * st.vjp_x(wt, x + y.reshape(x.shape), lam).ravel() + y, x.size)
            errs.append(("states", t, relative_error(lams[t], -y.reshape(x.shape))))
        if not st.param_shapes:
            continue
        a = alp[t]
        reg = None if chain.regularizer is None else chain.regularizer.at(
            t, 1.0 if reg_scale is None else reg_scale[t])
        F = lambda v: a * (float(np.vdot(lam, st.forward(wt + v, x)))   # noqa: E731
                           + (0.0 if reg is None else reg.value(wt + v))) + 0.5 * v @ v
        G = lambda v: a * (st.vjp_w(wt + v, x, lam)                      # noqa: E731
                           + (0.0 if reg is None else reg.grad(wt + v))) + v
        v = bfgs_argmin(F, G, wt.size)
        errs.append(("weights", t, relative_error(chain.layout.segment(g, t), -v)))
    return errs


def box_qp(H, g, lo, hi):
    """argmin g^T d + d^T H d / 2 over lo <= d <= hi (H positive definite) by scipy's exact
    bounded-variable least squares: with H = L L^T the objective is |L^T d + L^{-1} g|^2 / 2
    up to a constant."""
    from scipy.optimize import lsq_linear
    L = np.linalg.cholesky(H)
    r = lsq_linear(L.T, -np.linalg.solve(L, g), bounds=(lo, hi), method="bvls", tol=1e-15)
    return r.x


def ilqr_backward(problem, w, X, mask, reg, lo=None, hi=None):
    """The Riccati pass of iLQR/DDP (moreauctl.codegen.ilqr) in plain numpy: derivatives by
    CasADi's own jacobian/hessian of the stage, box QPs by scipy (box_qp). Returns K (T, nw,
    nx), k (T, nw), (dV1, dV2)."""
    nx, nw, T = problem.nx, problem.nw, problem.horizon
    w_, x_, mu_ = ca.SX.sym("w", nw), ca.SX.sym("x", nx), ca.SX.sym("mu", nx)
    f = problem.stage(w_, x_)
    lag = ca.dot(mu_, f)
    D = ca.Function("D", [w_, x_, mu_], [ca.jacobian(f, x_), ca.jacobian(f, w_),
                                         ca.hessian(lag, x_)[0], ca.jacobian(ca.gradient(lag, w_), x_),
                                         ca.hessian(lag, w_)[0]])
    hx = problem.objective(x_)
    Hq = ca.Function("Hq", [x_], [ca.gradient(hx, x_), ca.hessian(hx, x_)[0]])
    Vx, Vxx = (np.array(a, dtype=float) for a in Hq(X[T]))
    Vx = Vx.ravel()
    K, k = np.zeros((T, nw, nx)), np.zeros((T, nw))
    dV1 = dV2 = 0.0
    for t in range(T - 1, -1, -1):
        A, B, Hxx, Hux, Huu = (np.array(a, dtype=float) for a in D(w[t], X[t], mask * Vx))
        Qx, Qu = A.T @ Vx, B.T @ Vx
        Qxx = A.T @ Vxx @ A + Hxx
        Qux = B.T @ Vxx @ A + Hux
        Quu = B.T @ Vxx @ B + Huu
        Quu = 0.5 * (Quu + Quu.T)
        QuuF = Quu + reg * max(np.max(np.abs(np.diag(Quu))), 1e-300) * np.eye(nw)
        if lo is None:
            kt = -np.linalg.solve(QuuF, Qu)
            Kt = -np.linalg.solve(QuuF, Qux)
        else:
            kt = box_qp(QuuF, Qu, lo - w[t], hi - w[t])
            grad = Qu + QuuF @ kt
            free = ~(((kt == lo - w[t]) & (grad > 0)) | ((kt == hi - w[t]) & (grad < 0)))
            # bvls lands on the bound up to rounding: snap as the kernel's projection does
            free &= ~((np.abs(kt - (lo - w[t])) < 1e-12) & (grad > 0))
            free &= ~((np.abs(kt - (hi - w[t])) < 1e-12) & (grad < 0))
            Kt = np.zeros((nw, nx))
            if free.any():
                Kt[free] = -np.linalg.solve(QuuF[np.ix_(free, free)], Qux[free])
        Vx = Qx + Kt.T @ Quu @ kt + Kt.T @ Qu + Qux.T @ kt
        Vxx = Qxx + Kt.T @ Quu @ Kt + Kt.T @ Qux + Qux.T @ Kt
        Vxx = 0.5 * (Vxx + Vxx.T)
        dV1 += kt @ Qu
        dV2 += 0.5 * kt @ Quu @ kt
        K[t], k[t] = Kt, kt
    return K, k, (dV1, dV2)
