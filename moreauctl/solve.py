"""The one iteration loop: forward, oracle, update, history, callbacks, stopping, divergence.

Methods
-------
``"gd"``
    Gradient oracle, ``w <- w - step * grad``. With ``stage_weights="geometric"`` and
    ``gamma``, row ``t`` of the gradient is scaled by ``gamma^(T-t)`` (per-stage steps
    ``step * gamma^(T-s+1)`` for the paper's stage ``s``): Moreau GD's weighting without
    its prox.
``"moreau-gd"``
    Moreau oracle with ``alpha = step`` and ``gamma``; ``w <- w - g``.
``"momentum"``, ``"nesterov"``, ``"rmsprop"``, ``"adam"``, ``"sgd"``
    The gradient oracle with that update rule and learning rate ``step``.
``"moreau-momentum"``, ``"moreau-nesterov"``, ``"moreau-rmsprop"``, ``"moreau-adam"``
    The Moreau oracle (``alpha`` from ``moreau_options``, default 1) with that update rule
    and learning rate ``step``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .optimizers import OPTIMIZERS, make_optimizer, sgd
from .oracles import GradientOracle, MoreauOracle, stage_weight_vector
from .result import STATUS, History, SolveResult

__all__ = ["solve", "METHODS", "IterationInfo"]

_GRADIENT_METHODS = {"gd": "sgd", "sgd": "sgd", "momentum": "momentum", "nesterov": "nesterov",
                     "rmsprop": "rmsprop", "adam": "adam"}
_MOREAU_METHODS = {"moreau-gd": "sgd", "moreau-sgd": "sgd", "moreau-momentum": "momentum",
                   "moreau-nesterov": "nesterov", "moreau-rmsprop": "rmsprop",
                   "moreau-adam": "adam"}
#: every method name :func:`solve` accepts
METHODS = tuple(sorted(_GRADIENT_METHODS) + sorted(_MOREAU_METHODS) + ["ipopt"])
LINE_SEARCHES = (None, "armijo")


@dataclass(frozen=True)
class IterationInfo:
    """What a callback receives after each iteration (raise ``StopIteration`` to stop)."""

    nit: int
    w: np.ndarray
    cost: float
    direction_norm: float


def _check_step(step):
    try:
        s = float(step)
    except (TypeError, ValueError):
        raise TypeError(f"step must be a number > 0; got {step!r}") from None
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"step must be a finite number > 0; got {step!r}")
    return s


def _check_iters(iters):
    if isinstance(iters, bool) or not isinstance(iters, (int, np.integer)) or iters < 0:
        raise ValueError(f"iters must be an integer >= 0; got {iters!r}")
    return int(iters)


def _progress(total, verbose, desc):
    if not verbose:
        return None
    from tqdm.auto import tqdm
    # delay: short runs print nothing; long ones show a bar on stderr.
    return tqdm(total=total, desc=desc, delay=1.0, leave=False, unit="it")


def solve(problem, method: str = "gd", step: float = 1.0, iters: int = 50, *,
          gamma: Optional[float] = None, w0=None, line_search: Optional[str] = None,
          stage_weights: Optional[str] = None, moreau_options: Optional[Mapping[str, Any]] = None,
          optimizer_options: Optional[Mapping[str, Any]] = None,
          callback: Optional[Callable[[IterationInfo], Any]] = None, gtol: float = 0.0,
          divergence_factor: float = 1e8, max_backtracks: int = 60,
          verbose: bool = True, ipopt_options: Optional[Mapping[str, Any]] = None) -> SolveResult:
    """Minimize ``h(f(w, x0))`` over the controls ``w`` (T, nw).

    Parameters
    ----------
    problem : ControlProblem
    method : str
        One of :data:`METHODS` (see the module docstring).
    step : float
        Step size (``alpha`` for ``moreau-gd``; the learning rate otherwise). With
        ``line_search="armijo"`` it is the initial trial step of every iteration.
    iters : int
        Number of iterations ``K``; ``costs`` has ``K + 1`` entries unless the run stops early.
    gamma : float, optional
        Moreau GD's ``gamma`` (required for Moreau methods), or the ratio of
        ``stage_weights="geometric"`` for gradient methods.
    w0 : array_like, shape (T, nw), optional
        Initial controls; zeros by default.
    line_search : {None, "armijo"}
        ``"armijo"``: backtrack (halve) the update until
        ``h(w - s d) <= h(w) - 1e-4 s <grad, d>`` (exact gradient available) or
        ``h(w - s d) < h(w)`` (Moreau directions), starting from ``s = 1``.
    stage_weights : {None, "geometric"}
        Per-stage gradient weights (gradient methods only; see the module docstring).
    moreau_options : mapping, optional
        Keyword arguments of :class:`~moreauctl.oracles.MoreauOracle`: ``schedule``,
        ``alpha_convention``, ``gammas``/``alphas``, ``rules``, ``inner``, ``inner_iters``,
        ``inner_tol``, ``diagnostics`` (and ``alpha`` for ``moreau-<optimizer>``).
    optimizer_options : mapping, optional
        Extra keyword arguments of the update rule (e.g. ``beta`` of momentum).
    callback : callable, optional
        ``callback(IterationInfo)`` after each iteration; raising ``StopIteration`` stops the
        run (status 1).
    gtol : float
        Stop (status 2) when the direction's Euclidean norm is <= ``gtol``.
    divergence_factor : float
        The run is declared diverged (status -2) when the cost exceeds
        ``divergence_factor * max(1, |cost_0|)``; non-finite values give status -1.
    verbose : bool
        Show a progress bar on stderr for runs longer than a second.

    Returns
    -------
    SolveResult
    """
    if method == "ipopt":
        from .ipopt import solve_ipopt
        for name, val, default in (("gamma", gamma, None), ("line_search", line_search, None),
                                   ("stage_weights", stage_weights, None),
                                   ("moreau_options", moreau_options, None),
                                   ("optimizer_options", optimizer_options, None)):
            if val is not default:
                raise ValueError(f"{name} does not apply to method 'ipopt'")
        return solve_ipopt(problem, w0=w0, options=ipopt_options, verbose=verbose)
    if ipopt_options is not None:
        raise ValueError("ipopt_options only applies to method='ipopt'")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    step = _check_step(step)
    iters = _check_iters(iters)
    if line_search not in LINE_SEARCHES:
        raise ValueError(f"unknown line_search {line_search!r}; choose one of {list(LINE_SEARCHES)}")
    w = problem.check_w(w0, "w0").copy()
    chain = problem.chain
    opt_kw = dict(optimizer_options or {})
    settings = {"method": method, "step": step, "iters": iters, "gamma": gamma,
                "line_search": line_search, "horizon": problem.horizon, "dt": problem.dt,
                "scheme": problem.scheme, "problem": problem.name}
    if method in _GRADIENT_METHODS:
        if moreau_options:
            raise ValueError(f"moreau_options only apply to Moreau methods, not {method!r}")
        weights = stage_weight_vector(problem.horizon, stage_weights, gamma)
        oracle = GradientOracle(chain, weights)
        optimizer = make_optimizer(_GRADIENT_METHODS[method], step, **opt_kw)
        settings["stage_weights"] = stage_weights
    else:
        if stage_weights is not None:
            raise ValueError("stage_weights applies to gradient methods; Moreau methods set "
                             "their per-stage steps with gamma and moreau_options['schedule']")
        mo = dict(moreau_options or {})
        opt_name = _MOREAU_METHODS[method]
        if opt_name == "sgd":
            if "alpha" in mo:
                raise ValueError(f"for {method!r} the step is alpha: pass step=, not moreau_options['alpha']")
            alpha, optimizer = step, sgd(1.0)
        else:
            alpha = mo.pop("alpha", 1.0)
            optimizer = make_optimizer(opt_name, step, **opt_kw)
        if gamma is None and "gammas" not in mo:
            raise ValueError(f"method {method!r} needs gamma (the paper uses gamma=0.5)")
        if "gammas" in mo:
            oracle = MoreauOracle(chain, **mo)
        else:
            oracle = MoreauOracle(chain, alpha, gamma, **mo)
        settings.update({"alpha": alpha, **{k: v for k, v in mo.items()
                                           if k not in ("gammas", "alphas")}})
    if opt_kw:
        settings["optimizer_options"] = opt_kw
    return _run(problem, oracle, optimizer, w, iters, line_search, callback, gtol,
                divergence_factor, max_backtracks, verbose, method, settings)


def _run(problem, oracle, optimizer, w, iters, line_search, callback, gtol, divergence_factor,
         max_backtracks, verbose, method, settings):
    t_start = time.perf_counter()
    costs, steps, dnorms, times, evals = [], [], [], [], []
    n_eval = 0
    state = optimizer.init(w)
    out = oracle(w)
    n_eval += 1
    cost0 = out.cost
    limit = divergence_factor * max(1.0, abs(cost0)) if math.isfinite(cost0) else math.inf
    costs.append(cost0)
    times.append(time.perf_counter() - t_start)
    evals.append(n_eval)
    w_last, X_last, cost_last = w, out.states, cost0
    status = 0
    failed_stage = None
    bar = _progress(iters, verbose, f"{method} T={problem.horizon}")
    k = 0
    try:
        while True:
            dn = float(np.linalg.norm(out.direction)) if out.failed_stage is None else math.nan
            dnorms.append(dn)
            if not math.isfinite(out.cost):
                status = -1
                break
            if out.cost > limit:
                status = -2
                break
            w_last, X_last, cost_last = w, out.states, out.cost
            if out.failed_stage is not None:
                status, failed_stage = -3, out.failed_stage
                break
            if k >= iters:
                break
            if dn <= gtol:
                status = 2
                break
            delta, state = optimizer.update(out.direction, state)
            s = 1.0
            if line_search == "armijo":
                slope = (float(np.vdot(out.gradient, delta)) if out.gradient is not None else 0.0)
                ok = False
                for _ in range(max_backtracks):
                    trial = oracle.objective(w - s * delta)
                    n_eval += 1
                    if trial <= out.cost - 1e-4 * s * slope and (out.gradient is not None
                                                                   or trial < out.cost):
                        ok = True
                        break
                    s *= 0.5
                if not ok:
                    status = 3
                    break
            w = w - s * delta
            out = oracle(w)
            n_eval += 1
            k += 1
            costs.append(out.cost)
            steps.append(s)
            times.append(time.perf_counter() - t_start)
            evals.append(n_eval)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{out.cost:.4g}", refresh=False)
            if callback is not None and math.isfinite(out.cost):
                try:
                    callback(IterationInfo(k, w, out.cost, float(np.linalg.norm(out.direction))))
                except StopIteration:
                    dnorms.append(float(np.linalg.norm(out.direction)))
                    w_last, X_last, cost_last = w, out.states, out.cost
                    status = 1
                    break
    finally:
        if bar is not None:
            bar.close()
    message = STATUS[status]
    if status == -1:
        message += f" at iteration {k}"
    elif status == -2:
        message += f" at iteration {k} (cost {costs[-1]:.3g} > {limit:.3g})"
    elif status == -3:
        T = problem.horizon
        where = "the objective's subproblem" if failed_stage == T else f"stage {failed_stage + 1} (row {failed_stage} of w)"
        message += f" at iteration {k}, in {where}"
    hist = History(costs=costs, steps=steps, direction_norms=dnorms, times=times, evals=evals)
    return SolveResult(w=w_last, states=X_last, fun=cost_last, costs=np.asarray(costs), nit=k,
                       success=status >= 0, status=status, message=message, history=hist,
                       method=method, settings=settings)
