"""L-BFGS(-B) on the compiled gradient: scipy's ``L-BFGS-B`` driven by one compiled forward
and backward pass per evaluation (Algo 3-4), with the problem's ``control_bounds`` as its
box. We do not write our own quasi-Newton method: scipy's is the reference implementation
(Byrd, Lu, Nocedal & Zhu 1995; Morales & Nocedal 2011).

``solve(problem, "lbfgs", iters=K, solver_options={...})``; the options are those of
:func:`scipy.optimize.minimize` for ``method="L-BFGS-B"`` that matter here:

``maxcor`` (default 20)
    Pairs kept in the limited memory; the memory is ``2 * maxcor`` vectors of ``T * nw``.
``ftol`` (default 1e-12)
    Stop when ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol``.
``gtol`` (default 1e-10)
    Stop when the largest entry of the projected gradient is ``<= gtol``.
``maxls`` (default 20), ``maxfun`` (default ``10 * iters + 100``)
    Line-search steps per iteration, evaluations in all.

``iters`` is scipy's ``maxiter`` (default 1000).
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Optional

import numpy as np
import scipy
import scipy.optimize as so
from threadpoolctl import threadpool_limits

from ._progress import progress
from .registry import register_method
from .result import STATUS, History, SolveResult

__all__ = ["solve_lbfgs", "DEFAULT_LBFGS_OPTIONS"]

#: Options used unless overridden (scipy's names). ``ftol``/``gtol`` are tighter than
#: scipy's defaults (2.2e-9, 1e-5) so that runs reach the optimum a reference needs; a
#: gradient entry of a control problem scales with ``dt``, so a ``gtol`` that suits every
#: horizon is small.
DEFAULT_LBFGS_OPTIONS = {"maxcor": 20, "ftol": 1e-12, "gtol": 1e-10, "maxls": 20}
_KNOWN = ("maxcor", "ftol", "gtol", "maxls", "maxfun")


def _options(options, iters) -> dict:
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of L-BFGS-B options; got "
                        f"{type(options).__name__}")
    opts = dict(DEFAULT_LBFGS_OPTIONS)
    for k, val in (options or {}).items():
        if k not in _KNOWN:
            raise ValueError(f"unknown L-BFGS-B option {k!r}; choose among {list(_KNOWN)} "
                             "(the maximum number of iterations is iters=)")
        opts[k] = val
    opts["maxiter"] = 1000 if iters is None else int(iters)
    opts.setdefault("maxfun", 10 * opts["maxiter"] + 100)
    return opts


def _projected_gradient_norm(w, G, lower, upper) -> float:
    """Norm of ``w - P(w - G)``: zero exactly at the stationary points of the box problem."""
    return float(np.linalg.norm(w - np.clip(w - G, lower, upper)))


def solve_lbfgs(problem, w0=None, iters: Optional[int] = None,
                options: Optional[Mapping[str, Any]] = None, verbose: bool = True
                ) -> SolveResult:
    """Minimize ``h(f(w, x0))`` (over the box ``control_bounds`` if any) with L-BFGS-B.

    Parameters
    ----------
    problem : ControlProblem
    w0 : array_like, shape (T, nw), optional
        Start (zero projected onto the box by default; outside the box is an error).
    iters : int, optional
        Maximum iterations (scipy's ``maxiter``; default 1000).
    options : mapping, optional
        See the module docstring; unknown keys raise.
    verbose : bool
        Progress bar for runs longer than a second.

    Returns
    -------
    SolveResult
        ``costs`` per iteration (``costs[0]`` at ``w0``), ``history.evals`` the cumulative
        objective-and-gradient evaluations, ``history.direction_norms`` the norm of the
        projected gradient ``w - P(w - grad)`` (the gradient's norm without bounds).
        ``status`` 4 when scipy met ``ftol``/``gtol``, 0 when it used its iterations, 3
        when its line search stalled (typically at the optimum, up to rounding), -1 when
        the cost became non-finite.
    """
    w_init = problem.start(w0, "w0")
    opts = _options(options, iters)
    chain = problem.chain
    T, nw = problem.horizon, problem.nw
    lower, upper = np.tile(problem.lower, T), np.tile(problem.upper, T)
    bounds = so.Bounds(lower, upper) if problem.bounded else None

    last = {}

    def fg(v):
        cost, _, G, _ = chain.value_and_gradient(v)
        last["w"], last["G"], last["cost"] = v, G, cost
        last["n"] = last.get("n", 0) + 1
        if not math.isfinite(cost):
            # scipy's line search treats inf as "too long"; NaN would poison its tests
            return math.inf, np.zeros_like(G)
        return cost, G

    w = w_init.reshape(-1).copy()
    t0 = time.perf_counter()
    c0, G0 = fg(w)
    costs, norms = [c0], [_projected_gradient_norm(w, G0, lower, upper)]
    times, evals = [time.perf_counter() - t0], [1]
    bar = progress(opts["maxiter"], verbose, f"lbfgs T={T}")

    def callback(intermediate_result):
        x = intermediate_result.x
        costs.append(float(intermediate_result.fun))
        same = last.get("w") is not None and np.array_equal(last["w"], x)
        norms.append(_projected_gradient_norm(x, last["G"], lower, upper) if same else math.nan)
        times.append(time.perf_counter() - t0)
        evals.append(last["n"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(cost=f"{costs[-1]:.4g}", refresh=False)

    try:
        # one BLAS thread: L-BFGS-B's vector operations are too small to share (see
        # pyproject.toml), and the compiled passes do not use BLAS
        with threadpool_limits(limits=1, user_api="blas"):
            r = so.minimize(fg, w, jac=True, method="L-BFGS-B", bounds=bounds,
                            callback=callback, options=opts)
    finally:
        if bar is not None:
            bar.close()
    w_opt = np.clip(r.x, lower, upper).reshape(T, nw)  # L-BFGS-B projects already
    fun, X = chain.forward(w_opt.reshape(-1))
    # scipy returns without status/nit when the bounds fix every variable
    scipy_status, nit = int(r.get("status", 0)), int(r.get("nit", 0))
    if not math.isfinite(fun):
        status = -1
    elif scipy_status == 0:
        status = 4
    elif scipy_status == 1:
        status = 0
    else:
        status = 3
    message = f"L-BFGS-B: {r.message} after {nit} iterations ({STATUS[status]})"
    hist = History(costs=costs, steps=np.ones(len(costs) - 1), direction_norms=norms,
                   times=times, evals=evals)
    settings = {"method": "lbfgs", "horizon": T, "dt": problem.dt, "scheme": problem.scheme,
                "problem": problem.name, "lbfgs_options": dict(opts),
                "scipy_status": scipy_status, "scipy_version": scipy.__version__,
                "control_bounds": (None if not problem.bounded else
                                   (problem.lower.tolist(), problem.upper.tolist()))}
    return SolveResult(w=w_opt, states=X, fun=fun, costs=np.asarray(costs), nit=nit,
                       success=status >= 0, status=status, message=message, history=hist,
                       method="lbfgs", settings=settings)


def _run(problem, *, w0=None, iters=None, verbose=True, options=None) -> SolveResult:
    return solve_lbfgs(problem, w0=w0, iters=iters, options=options, verbose=verbose)


register_method("lbfgs", run=_run,
                doc="L-BFGS-B (scipy) on the compiled gradient, with control_bounds")
