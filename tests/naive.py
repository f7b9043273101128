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
