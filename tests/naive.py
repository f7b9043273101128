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
