"""Reference optimum: IPOPT on the same discretization, by multiple shooting.

The decision variables are the controls ``W`` (T, nw) *and* the states ``X`` (T+1, nx);
the dynamics are equality constraints::

    minimize    h(X[T])
    subject to  X[t+1] = phi(W[t], X[t])   for t = 0..T-1
                X[0]   = x0_chain

With ``control_bounds`` the controls get the simple bounds ``lower <= W[:, t] <= upper``
(passed to IPOPT as variable bounds).

This is the same chain ``h(f(w, x0))`` the first-order methods minimize (the same CasADi
stage ``phi``, same ``dt`` and scheme), written so that IPOPT's Newton steps see a sparse,
block-banded KKT system instead of the dense, badly conditioned Hessian of the single
shooting objective. It is the "best achievable cost" of horizon studies.

IPOPT ships inside the casadi wheel (``casadi.nlpsol(..., "ipopt")``): no separate install.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import time
from typing import Any, Mapping, Optional

import casadi as ca
import numpy as np

from .registry import register_method
from .result import History, SolveResult, nonfinite_start_message

__all__ = ["solve_ipopt", "check_options", "DEFAULT_IPOPT_OPTIONS", "IPOPT_FAILED"]

#: IPOPT options used unless overridden (keys are IPOPT's own option names).
#: ``tol`` is tight because the result serves as the reference optimum ``c*`` of the
#: normalized gap ``(c_k - c*) / (c_0 - c*)``. ``mumps_permuting_scaling=0`` turns off
#: MUMPS's MC64 permutation, which breaks the block-banded structure of the multiple
#: shooting KKT system: on the pendulum (RK4, fixed total time 10 s) IPOPT then takes 0.4 s
#: instead of 24 s at T=3000, and 4.6 s instead of > 5 min at T=10000 (measured here).
DEFAULT_IPOPT_OPTIONS = {"tol": 1e-10, "constr_viol_tol": 1e-10, "max_iter": 3000,
                         "mu_strategy": "adaptive", "mumps_permuting_scaling": 0}

#: ``status`` of a run where IPOPT stopped without reaching its tolerance (maximum
#: iterations, restoration failure, ...). The message carries IPOPT's own return status.
IPOPT_FAILED = -4

_SUCCESS = ("Solve_Succeeded", "Solved_To_Acceptable_Level")


def _last_line(error: BaseException) -> str:
    """The informative part of a CasADi error: its last non-empty line, without the C++
    source location (``.../ipopt_interface.cpp:320: No such IPOPT option: foo`` -> ``No such
    IPOPT option: foo``)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    return re.sub(r"^\S*\.(?:cpp|hpp|h):\d+:\s*", "", lines[-1])


def _ipopt_says(text: str) -> str:
    """IPOPT's own words in its captured output: its exception and EXIT lines (and, for an
    invalid option value, the option's documentation it prints), one line."""
    keep = [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.startswith(("This is Ipopt", "***", "iter "))]
    return " ".join(keep)[:800]


def check_options(options: Optional[Mapping[str, Any]]) -> dict:
    """IPOPT options by their IPOPT names (a leading ``"ipopt."`` dropped), merged over
    :data:`DEFAULT_IPOPT_OPTIONS`, checked by IPOPT itself on a one-variable problem.

    Raises
    ------
    TypeError
        ``options`` is not a mapping.
    ValueError
        An unknown option, a value of the wrong type or out of range, or an unavailable
        choice (e.g. ``linear_solver="ma27"`` without HSL), with IPOPT's own message.
    """
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of IPOPT options; got {type(options).__name__}")
    merged = dict(DEFAULT_IPOPT_OPTIONS)
    given = {}
    for k, v in (options or {}).items():
        if not isinstance(k, str):
            raise TypeError(f"IPOPT option names are strings; got {k!r}")
        given[k[len("ipopt."):] if k.startswith("ipopt.") else k] = v
    merged.update(given)
    if not given:
        return merged
    trial = {k: v for k, v in merged.items()
             if k not in ("print_level", "output_file", "file_print_level", "sb")}
    trial.update(print_level=5, sb="yes", max_iter=0)
    x = ca.SX.sym("x")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # CasADi routes IPOPT's output through sys.stdout
        try:
            solver = ca.nlpsol("ipopt_option_check", "ipopt", {"x": x, "f": x ** 2},
                               {"print_time": False, "ipopt": trial})
            solver(x0=1.0)
            status = solver.stats().get("return_status")
        except RuntimeError as e:
            said = _ipopt_says(out.getvalue())
            raise ValueError(f"IPOPT rejected the options {given}: {_last_line(e)}"
                             + (f" ({said})" if said else "")) from None
    if status == "Invalid_Option":
        raise ValueError(f"IPOPT rejected the options {given}: {_ipopt_says(out.getvalue())}")
    return merged


def _rollout(problem, w: np.ndarray) -> np.ndarray:
    """States (T+1, nx) of the chain at controls ``w`` (T, nw), evaluated by CasADi."""
    T = problem.horizon
    # accumulate over input 1 (x) -> output 0 (x_next): x_{t+1} = phi(w_t, x_t)
    roll = problem.stage.mapaccum("rollout", T, [1], [0])
    Xn = np.asarray(roll(w.T, problem.x0_chain)).reshape(problem.nx, T)
    return np.vstack([problem.x0_chain[None, :], Xn.T])


def _cost(problem, X: np.ndarray) -> float:
    return float(problem.objective(X[-1]))


def solve_ipopt(problem, w0=None, options: Optional[Mapping[str, Any]] = None,
                verbose: bool = True) -> SolveResult:
    """Solve ``min_w h(f(w, x0))`` with IPOPT (CasADi Opti stack, multiple shooting).

    Parameters
    ----------
    problem : ControlProblem
    w0 : array_like, shape (T, nw), optional
        Initial controls (zero projected onto ``problem.control_bounds`` by default; a
        ``w0`` outside the bounds is an error); the initial states are their rollout.
    options : mapping, optional
        IPOPT options by their IPOPT names (``tol``, ``max_iter``, ``linear_solver``, ...),
        merged over :data:`DEFAULT_IPOPT_OPTIONS`. A leading ``"ipopt."`` is accepted.
    verbose : bool
        Show IPOPT's iteration log (``print_level`` 5) and timing; silent otherwise.

    Returns
    -------
    SolveResult
        ``costs = [h(f(w0)), h(f(w*))]``; ``fun`` is the cost of the optimal controls
        re-evaluated by a forward rollout (so it is directly comparable to first-order
        results), and ``settings["nlp_objective"]`` is IPOPT's own objective value at
        its multiple-shooting point. ``states`` are IPOPT's states ``X`` (T+1, nx);
        ``settings["max_defect"]`` is the largest difference between them and the
        rollout of ``w``. ``nit`` is IPOPT's iteration count, ``success`` follows its
        return status (``Solve_Succeeded`` or ``Solved_To_Acceptable_Level``);
        otherwise ``status`` is :data:`IPOPT_FAILED` and the controls are IPOPT's last
        iterate (or ``w0`` when IPOPT did not run; the message is then CasADi's/IPOPT's
        error). A non-finite initial rollout is reported before IPOPT starts: status -1,
        a message naming the first non-finite state, ``costs = [h(f(w0))]``.

    Raises
    ------
    ValueError, TypeError
        Bad ``w0``, or options IPOPT rejects (unknown, wrong type or range, an unavailable
        linear solver), with IPOPT's own message (:func:`check_options`), before any
        compute.
    """
    w_init = problem.start(w0, "w0")
    ipopt_opts = check_options(options)
    T, nx, nw = problem.horizon, problem.nx, problem.nw
    ipopt_opts.setdefault("print_level", 5 if verbose else 0)
    ipopt_opts.setdefault("sb", "yes")  # no IPOPT banner

    t0 = time.perf_counter()
    X_init = _rollout(problem, w_init)
    cost0 = _cost(problem, X_init)
    if not (math.isfinite(cost0) and np.all(np.isfinite(X_init))):
        # IPOPT cannot start from non-finite values (CasADi would fail an assertion): a
        # failed run, like a first-order run whose initial rollout is not finite
        return _failed_start(problem, w_init, X_init, cost0, ipopt_opts,
                             time.perf_counter() - t0)

    opti = ca.Opti()
    # CasADi is column-major: one column per stage.
    W = opti.variable(nw, T)
    X = opti.variable(nx, T + 1)
    phi_all = problem.stage.map(T)
    opti.subject_to(X[:, 0] == problem.x0_chain)
    opti.subject_to(X[:, 1:] == phi_all(W, X[:, :T]))
    opti.minimize(problem.objective(X[:, T]))
    casadi_opts = {"print_time": bool(verbose)}
    if problem.bounded:
        _add_bounds(opti, W, problem.lower, problem.upper)
        # hand them to IPOPT as variable bounds (lbx/ubx), not as general constraints
        casadi_opts["detect_simple_bounds"] = True
    opti.set_initial(W, w_init.T)
    opti.set_initial(X, X_init.T)
    opti.solver("ipopt", casadi_opts, ipopt_opts)
    error = None
    try:
        sol = opti.solve()
        stats = sol.stats()
        w_opt = np.asarray(sol.value(W)).reshape(nw, T).T
        X_opt = np.asarray(sol.value(X)).reshape(nx, T + 1).T
        nlp_obj = float(sol.value(opti.f))
    except RuntimeError as e:
        # IPOPT stopped without success (max_iter, restoration failure, ...): report it as a
        # failed run with the last iterate, like a diverged first-order run. When IPOPT did
        # not even run, Opti has no stats ("not solved"): report CasADi's/IPOPT's message.
        try:
            stats = opti.stats()
            w_opt = np.asarray(opti.debug.value(W)).reshape(nw, T).T
            X_opt = np.asarray(opti.debug.value(X)).reshape(nx, T + 1).T
            nlp_obj = float(opti.debug.value(opti.f))
        except RuntimeError:
            stats, w_opt, X_opt, nlp_obj = {}, w_init, X_init, math.nan
            error = _last_line(e)
    elapsed = time.perf_counter() - t0
    return_status = str(stats.get("return_status", "unknown"))
    nit = int(stats.get("iter_count", 0))
    success = error is None and (bool(stats.get("success", False)) or return_status in _SUCCESS)

    # IPOPT relaxes bounds by bound_relax_factor internally and projects its final point
    # back (honor_original_bounds); clip anyway so the box holds bit for bit, and report by
    # how much (0 in every run we have seen)
    w_ipopt = w_opt
    w_opt = np.clip(w_opt, problem.lower, problem.upper)
    bound_move = float(np.max(np.abs(w_opt - w_ipopt))) if w_opt.size else 0.0
    X_roll = _rollout(problem, np.ascontiguousarray(w_opt)) if np.all(np.isfinite(w_opt)) else None
    fun = _cost(problem, X_roll) if X_roll is not None else math.nan
    defect = float(np.max(np.abs(X_roll - X_opt))) if X_roll is not None else math.nan
    if not math.isfinite(fun):
        success = False
    status = 0 if success else IPOPT_FAILED
    message = (f"IPOPT: {return_status} after {nit} iterations" if error is None
               else f"IPOPT failed before iterating: {error}")

    n_f = int(stats.get("n_call_nlp_f", 0)) or 1
    hist = History(costs=[cost0, fun], steps=[1.0], direction_norms=[math.nan, math.nan],
                   times=[0.0, elapsed], evals=[1, 1 + n_f])
    settings = {"method": "ipopt", "horizon": T, "dt": problem.dt, "scheme": problem.scheme,
                "problem": problem.name, "transcription": "multiple shooting",
                "ipopt_options": {k: v for k, v in ipopt_opts.items()},
                "tol": ipopt_opts["tol"], "constr_viol_tol": ipopt_opts.get("constr_viol_tol"),
                "return_status": return_status, "nlp_objective": nlp_obj,
                "max_defect": defect, "casadi_version": ca.__version__,
                "control_bounds": (None if not problem.bounded else
                                   (problem.lower.tolist(), problem.upper.tolist())),
                "bound_clip": bound_move}
    return SolveResult(w=w_opt, states=X_opt, fun=fun, costs=np.array([cost0, fun]), nit=nit,
                       success=success, status=status, message=message, history=hist,
                       method="ipopt", settings=settings)


def _add_bounds(opti, W, lower, upper) -> None:
    """``lower[i] <= W[i, t] <= upper[i]`` for every stage, one side where the other is
    infinite, nothing for a free control."""
    for i, (lo, hi) in enumerate(zip(lower, upper)):
        row = W[i, :]
        if np.isfinite(lo) and np.isfinite(hi):
            opti.subject_to(opti.bounded(float(lo), row, float(hi)))
        elif np.isfinite(lo):
            opti.subject_to(row >= float(lo))
        elif np.isfinite(hi):
            opti.subject_to(row <= float(hi))


def _failed_start(problem, w, X, cost0, ipopt_opts, elapsed) -> SolveResult:
    """The result of a run that cannot start: the initial rollout is not finite (status -1,
    the message names the first non-finite state)."""
    hist = History(costs=[cost0], steps=[], direction_norms=[math.nan], times=[elapsed],
                   evals=[1])
    settings = {"method": "ipopt", "horizon": problem.horizon, "dt": problem.dt,
                "scheme": problem.scheme, "problem": problem.name,
                "transcription": "multiple shooting", "ipopt_options": dict(ipopt_opts),
                "tol": ipopt_opts["tol"], "constr_viol_tol": ipopt_opts.get("constr_viol_tol"),
                "return_status": None, "nlp_objective": math.nan, "max_defect": math.nan,
                "casadi_version": ca.__version__}
    return SolveResult(w=w, states=X, fun=cost0, costs=np.array([cost0]), nit=0,
                       success=False, status=-1, message=nonfinite_start_message(X),
                       history=hist, method="ipopt", settings=settings)


def _run(problem, *, w0=None, iters=None, verbose=True, options=None) -> SolveResult:
    """``solve(problem, "ipopt", ...)``: ``iters``, if given, is IPOPT's ``max_iter``."""
    if iters is not None:
        options = dict(options or {})
        if "max_iter" in options:
            raise ValueError("give iters or solver_options['max_iter'] for IPOPT, not both")
        options["max_iter"] = int(iters)
    return solve_ipopt(problem, w0=w0, options=options, verbose=verbose)


register_method("ipopt", run=_run, doc="IPOPT on the multiple-shooting transcription (reference optimum)")
