"""iLQR and DDP on the compiled chain: methods ``"ilqr"`` and ``"ddp"``.

Both minimize ``h(f(w, x0))`` by iterating a backward pass that builds a local
linear-quadratic model of the chain around the current trajectory and solves it by a
Riccati recursion, and a forward pass that rolls out the new closed-loop controls with a
backtracking line search (Li & Todorov 2004; Tassa, Erez & Todorov 2012; Roulet,
Srinivasa, Drusvyatskiy & Harchaoui 2019, "Iterative linearized control: stable algorithms
and complexity guarantees", whose ILQR is our ``"ilqr"`` and whose ILQN, the Newton
variant, is what ``"ddp"``'s exact second-order terms give). Both passes are compiled loops
generated from the CasADi graph (:mod:`moreauctl.codegen.ilqr`); Python only runs the
iterations and the line search.

``"ilqr"`` (Gauss-Newton)
    Linearized dynamics, and the curvature of the running cost: the stage Hessian of
    ``mu^T phi`` with ``mu`` the cost-to-go gradient restricted to the state entries that
    accumulate the running cost (``problem.cost_states``; the chain folds ``l(x, u)`` into
    the state, and this entry's curvature is exactly the discretized running cost's
    Hessian). On a linear-quadratic problem this is exact: one iteration gives the optimum.
``"ddp"``
    The full second-order terms of the dynamics (``mu`` = the whole cost-to-go gradient):
    quadratic convergence near a minimum. Farther away their model is often indefinite and
    pure DDP crawls under heavy regularization (the acrobot swing-up: 59 after 300
    iterations, where iLQR reaches the optimum 44.51 in 71), so ``"ddp"`` runs
    ``hessian="auto"``: Gauss-Newton steps until they are taken in full, then the exact
    terms, back to Gauss-Newton whenever the exact model fails (30 iterations on the
    acrobot). ``solver_options={"hessian": "exact"}`` is plain DDP.

Control bounds (``problem.control_bounds``) are handled as in control-limited DDP (Tassa,
Mansard & Todorov 2014): each stage's step solves a box QP by projected Newton, the gains of
clamped controls are zero, and the forward pass clips to the box, so every iterate is in the
box exactly.

Regularization (Levenberg-Marquardt): ``Quu + reg * scale_t I`` with ``scale_t`` the largest
``|Quu_ii|`` of the stage (so ``reg`` is relative and means the same at any ``dt``). ``reg``
starts at 0; a non-positive-definite stage or a line search without decrease raises it
(``reg <- max(reg_min, reg * reg_factor)``) and the backward pass is redone; an accepted
full step lowers it (``reg <- reg / reg_factor``, 0 below ``reg_min``). Past ``reg_max`` the
run stalls: ``status`` -5 (``success=False``), or 3 when the model's expected decrease was
already at rounding level (stationary).

Options (``solver_options``): ``hessian`` (``"gauss-newton"`` for ``"ilqr"``, ``"auto"``
for ``"ddp"``, or ``"exact"``; see :func:`solve_ilqr`), ``tol`` (1e-12: converged, status 4, when the expected
decrease of the full step is ``<= tol * max(1, |cost|)``), ``reg_min`` (1e-8), ``reg_max``
(1e10), ``reg_factor`` (10), ``alphas`` (line-search steps, default ``0.5**k``,
``k = 0..11``), ``c1`` (1e-4: accept when the actual decrease is ``>= c1`` times the
expected one). ``iters`` caps the iterations (default 100).
"""
from __future__ import annotations

import math
import time
from typing import Any, Mapping, Optional

import numpy as np

from . import _validate as v
from ._progress import progress
from .codegen.ilqr import ilqr_kernels
from .registry import register_method
from .result import STATUS, History, SolveResult

__all__ = ["solve_ilqr", "DEFAULT_ILQR_OPTIONS", "HESSIANS"]

HESSIANS = ("gauss-newton", "exact", "auto")

DEFAULT_ILQR_OPTIONS = {"tol": 1e-12, "reg_min": 1e-8, "reg_max": 1e10, "reg_factor": 10.0,
                        "alphas": tuple(0.5 ** k for k in range(12)), "c1": 1e-4}


def _options(options) -> dict:
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of iLQR options; got {type(options).__name__}")
    opts = dict(DEFAULT_ILQR_OPTIONS)
    for key, val in (options or {}).items():
        if key not in DEFAULT_ILQR_OPTIONS:
            raise ValueError(f"unknown iLQR option {key!r}; choose among "
                             f"{sorted(DEFAULT_ILQR_OPTIONS)} (the iteration cap is iters=)")
        opts[key] = val
    for key in ("tol", "reg_min", "c1"):
        opts[key] = v.nonnegative_number(key, opts[key])
    opts["reg_max"] = v.positive_number("reg_max", opts["reg_max"])
    opts["reg_factor"] = v.positive_number("reg_factor", opts["reg_factor"])
    if opts["reg_factor"] <= 1:
        raise ValueError(f"reg_factor must be > 1; got {opts['reg_factor']!r}")
    alphas = v.positive_array("alphas", opts["alphas"], (len(tuple(opts["alphas"])),))
    if alphas.size == 0:
        raise ValueError("alphas must hold at least one line-search step")
    opts["alphas"] = tuple(float(a) for a in alphas)
    return opts


def solve_ilqr(problem, w0=None, iters: Optional[int] = None, hessian: str = "gauss-newton",
               options: Optional[Mapping[str, Any]] = None, verbose: bool = True,
               method: str = "ilqr") -> SolveResult:
    """iLQR (``hessian="gauss-newton"``) or DDP (``"exact"``) from ``w0``.

    Parameters
    ----------
    problem : ControlProblem
        Its ``control_bounds`` are honored; ``cost_states`` select the Gauss-Newton
        curvature.
    w0 : array_like, shape (T, nw), optional
        Start (zero projected onto the box by default; outside the box is an error).
    iters : int, optional
        Iteration cap (default 100).
    hessian : {"gauss-newton", "exact", "auto"}
        ``"auto"``: Gauss-Newton until its full step is taken without damping, then the
        exact terms (Newton's local convergence); back to Gauss-Newton for 5 iterations
        whenever the exact model is not convex or its step does not decrease the cost.
    options : mapping, optional
        See the module docstring; unknown keys raise.
    verbose : bool
        Progress bar for runs longer than a second.

    Returns
    -------
    SolveResult
        ``costs`` per iteration, ``history.steps`` the accepted line-search step,
        ``history.direction_norms`` the norm of each update ``|w_{k+1} - w_k|`` (NaN for the
        last), ``history.evals`` cumulative rollouts; ``settings["reg"]`` the
        regularization per iteration, ``settings["expected_decrease"]`` the model's.
    """
    v.choice("hessian", hessian, HESSIANS)
    opts = _options(options)
    iters = 100 if iters is None else v.nonnegative_int("iters", iters)
    w = np.ascontiguousarray(problem.start(w0, "w0"), dtype=float).copy()
    chain = problem.chain
    mod, _ = ilqr_kernels(chain)
    T, nx, nw = problem.horizon, chain.nx, chain.nw
    # writable copies: a read-only array is another numba type (another compilation)
    lo = np.array(problem.lower, dtype=float)
    hi = np.array(problem.upper, dtype=float)
    bounded = bool(problem.bounded)
    P = chain.params  # dt and the plant's parameters (run-time inputs of the kernels)
    gn_mask = np.zeros(nx)
    gn_mask[list(getattr(problem, "cost_states", ()))] = 1.0
    exact_mask = np.ones(nx)
    exact = hessian == "exact"
    cooldown = 0  # "auto": Gauss-Newton iterations left before exact terms are tried again

    t0 = time.perf_counter()
    cost, X = chain.forward(w)
    K = np.zeros((T, nw, nx))
    k = np.zeros((T, nw))  # also the box QPs' warm start
    wn = np.empty_like(w)
    Xn = np.empty_like(X)
    out = np.zeros(3)
    costs, steps, norms, times, evals = [cost], [], [], [time.perf_counter() - t0], [1]
    regs, expected, modes = [], [], []
    reg = 0.0
    status, n_eval, it, n_damped = 0, 1, 0, 0
    stall_note = ""
    bar = progress(iters, verbose, f"{method} T={T}")

    def fall_back() -> bool:
        """"auto" in exact mode: back to Gauss-Newton (no more damping); True if it did."""
        nonlocal exact, cooldown
        if hessian == "auto" and exact:
            exact, cooldown = False, 5
            return True
        return False

    try:
        if not math.isfinite(cost):
            status = -1
        while status == 0 and it < iters:
            # backward pass, raising the regularization until every stage's model is convex
            while True:
                bad = mod.f_ilqr_backward(w, X, lo, hi, bounded, exact_mask if exact else
                                          gn_mask, reg, K, k, out, P)
                if bad < 0 or fall_back():
                    if bad < 0:
                        break
                    continue
                reg = max(opts["reg_min"], reg * opts["reg_factor"])
                if reg > opts["reg_max"]:
                    break
            if bad >= 0:
                status = -5
                stall_note = (f" (stage {bad + 1}: its model is not finite, or not convex even "
                              f"at reg {opts['reg_max']:.3g})")
                break
            dV1, dV2 = float(out[0]), float(out[1])
            full = -(dV1 + dV2)
            if full <= opts["tol"] * max(1.0, abs(cost)):
                if reg <= opts["reg_min"] or n_damped >= 20:
                    status = 4
                    if reg > 0:
                        stall_note = f" (at reg {reg:.3g})"
                    break
                # a small step of a heavily damped model is not convergence: less damping
                n_damped += 1
                reg = reg / opts["reg_factor"]
                continue
            accepted = False
            for alpha in opts["alphas"]:
                trial = float(mod.f_ilqr_forward(w, X, K, k, alpha, lo, hi, wn, Xn, P))
                n_eval += 1
                exp = -(alpha * dV1 + alpha * alpha * dV2)
                if math.isfinite(trial) and exp > 0 and cost - trial >= opts["c1"] * exp:
                    accepted = True
                    break
            if not accepted:
                if fall_back():
                    continue
                # too long a step for this model: a more damped one, same trajectory
                reg = max(opts["reg_min"], reg * opts["reg_factor"])
                if reg > opts["reg_max"]:
                    small = full <= 1e3 * np.finfo(float).eps * max(1.0, abs(cost))
                    status = 3 if small else -5
                    stall_note = f" (expected decrease {full:.3g} at reg {opts['reg_max']:.3g})"
                    break
                continue
            norms.append(float(np.linalg.norm(wn - w)))
            w, wn = wn, w
            X, Xn = Xn, X
            cost = trial
            it += 1
            costs.append(cost)
            steps.append(alpha)
            times.append(time.perf_counter() - t0)
            evals.append(n_eval)
            regs.append(reg)
            expected.append(full)
            modes.append("exact" if exact else "gauss-newton")
            if alpha == 1.0:
                reg = reg / opts["reg_factor"]
                if reg < opts["reg_min"]:
                    reg = 0.0
            if hessian == "auto" and not exact:
                # the Gauss-Newton model is trusted (full step, no damping): try Newton's
                if cooldown > 0:
                    cooldown -= 1
                elif alpha == 1.0 and reg == 0.0:
                    exact = True
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{cost:.6g}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    norms.append(math.nan)
    message = f"{method}: {STATUS[status]}{stall_note} after {it} iterations"
    hist = History(costs=costs, steps=steps, direction_norms=norms, times=times, evals=evals)
    settings = {"method": method, "hessian": hessian, "horizon": T, "dt": problem.dt,
                "scheme": problem.scheme, "problem": problem.name,
                "ilqr_options": {k_: (list(val) if isinstance(val, tuple) else val)
                                 for k_, val in opts.items()},
                "reg": regs, "expected_decrease": expected, "models": modes,
                "control_bounds": (None if not bounded else (lo.tolist(), hi.tolist()))}
    return SolveResult(w=w, states=X, fun=cost, costs=np.asarray(costs), nit=it,
                       success=status >= 0, status=status, message=message, history=hist,
                       method=method, settings=settings)


def _runner(hessian, method):
    def run(problem, *, w0=None, iters=None, verbose=True, options=None) -> SolveResult:
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a mapping of iLQR options; got "
                            f"{type(options).__name__}")
        opts = dict(options or {})
        return solve_ilqr(problem, w0=w0, iters=iters, hessian=opts.pop("hessian", hessian),
                          options=opts, verbose=verbose, method=method)
    return run


register_method("ilqr", run=_runner("gauss-newton", "ilqr"),
                doc="iLQR: Gauss-Newton Riccati passes on the compiled chain, control bounds "
                    "by box QPs (BoxDDP)")
register_method("ddp", run=_runner("auto", "ddp"),
                doc="DDP: iLQR with the dynamics' exact second-order terms (Gauss-Newton "
                    "where they do not give a convex model)")
