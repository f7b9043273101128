"""The one loop (:func:`~moreauctl.minimize`) and the method-name front end
(:func:`~moreauctl.solve`).

:func:`~moreauctl.minimize` takes a chain, an oracle, an optimizer and a start point and iterates:
oracle (forward + backward pass) -> optimizer update (optionally Armijo-backtracked) ->
new iterate, with history, callbacks, progress, and divergence reported as a result. It
runs either ``iters`` iterations on the chain's fixed data (control: ``data=None``) or
``epochs`` passes over mini-batches (networks).

:func:`~moreauctl.solve` turns a method name into that triple through :mod:`moreauctl.registry`
(``"moreau-adam"`` = the Moreau oracle with Adam), or hands a solver method (``"ipopt"``)
its problem.

Methods registered by this package
----------------------------------
``"gd"``
    Gradient oracle, ``w <- w - step * grad``. With ``stage_weights="geometric"`` and
    ``gamma``, stage ``t``'s gradient is scaled by ``gamma^(T-t+1)``: Moreau GD's
    weighting without its prox.
``"moreau-gd"``
    Moreau oracle with ``alpha = step`` and ``gamma``; ``w <- w - g`` (Algo 6).
``"momentum"``, ``"nesterov"``, ``"rmsprop"``, ``"adam"``, ``"sgd"``
    The gradient oracle with that update rule and learning rate ``step``.
``"moreau-momentum"``, ``"moreau-nesterov"``, ``"moreau-rmsprop"``, ``"moreau-adam"``
    The Moreau oracle (``alpha`` from ``oracle_options``, default 1) with that update rule
    and learning rate ``step``.
``"ipopt"``
    IPOPT on the multiple-shooting transcription (:mod:`moreauctl.ipopt`).
``"lbfgs"``
    scipy's L-BFGS-B on the compiled gradient (:mod:`moreauctl.lbfgs`).
``"ilqr"``, ``"ddp"``
    iLQR (Gauss-Newton) and DDP Riccati passes on the compiled chain
    (:mod:`moreauctl.ilqr`).

``sorted(moreauctl.METHODS)`` lists every registered name.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from . import _validate as v
from ._progress import progress as _progress
from . import ipopt  # noqa: F401  (registers the "ipopt" solver method)
from . import ilqr  # noqa: F401  (registers the "ilqr" and "ddp" solver methods)
from . import lbfgs  # noqa: F401  (registers the "lbfgs" solver method)
from . import oracles  # noqa: F401  (registers the oracles and their methods)
from .optimizers import projected
from .registry import METHODS, OPTIMIZERS, ORACLES, get_method
from .result import STATUS, History, SolveResult, nonfinite_start_message

__all__ = ["solve", "minimize", "METHODS", "IterationInfo", "LINE_SEARCHES"]

LINE_SEARCHES = (None, "armijo")


@dataclass(frozen=True)
class IterationInfo:
    """What a callback receives after each iteration (raise ``StopIteration`` to stop).

    Attributes
    ----------
    nit : int
        Iterations (updates) done.
    w : ndarray or list
        The new iterate, per stage (``(T, nw)`` for control; the layout's unpacked form).
    cost : float
        Its cost (iteration mode) or the mini-batch loss before the update (epoch mode).
    direction_norm : float
    epoch : int or None
        The epoch (epoch mode).
    """

    nit: int
    w: Any
    cost: float
    direction_norm: float
    epoch: Optional[int] = None


class _Loop:
    """State shared by the two modes of :func:`minimize` (kept out of its signature)."""

    def __init__(self, chain, oracle, optimizer, w, line_search, max_backtracks, callback,
                 box=None):
        self.chain, self.oracle, self.optimizer = chain, oracle, optimizer
        self.box = box
        self.w = w
        self.state = optimizer.init(w)
        self.ostate = oracle.init(w)
        self.line_search = line_search
        self.max_backtracks = max_backtracks
        self.callback = callback
        self.n_eval = 0
        self.t0 = time.perf_counter()

    def call(self, data):
        out, self.ostate = self.oracle(self.w, self.ostate, data)
        self.n_eval += 1
        return out

    def update(self, out, data) -> Optional[float]:
        """Move ``w`` along the optimizer's step; the accepted step multiplier, or None if
        the Armijo search failed (then ``w`` is unchanged)."""
        delta, self.state = self.optimizer.update(out.direction, self.state, self.w)
        s = 1.0
        if self.line_search == "armijo":
            # sufficient decrease on the exact gradient when the oracle has it; a plain
            # decrease otherwise (Moreau directions are not gradients)
            slope = float(np.vdot(out.gradient, delta)) if out.gradient is not None else 0.0
            for _ in range(self.max_backtracks):
                trial = self.oracle.objective(self.w - s * delta, data)
                self.n_eval += 1
                if trial <= out.cost - 1e-4 * s * slope and (out.gradient is not None
                                                              or trial < out.cost):
                    break
                s *= 0.5
            else:
                return None
        # s == 1 (no line search): skip the product, the same bits with one pass less over w
        self.w = self.w - delta if s == 1.0 else self.w - s * delta
        if self.box is not None:
            # w - (w - P(z)) can round one ulp past a bound; the box must hold exactly
            np.clip(self.w, self.box[0], self.box[1], out=self.w)
        return s

    def notify(self, k, cost, direction, epoch=None) -> bool:
        """Run the callback; True if it asked to stop."""
        if self.callback is None:
            return False
        try:
            self.callback(IterationInfo(k, self.chain.layout.unpack(self.w), cost,
                                        float(np.linalg.norm(direction)), epoch))
        except StopIteration:
            return True
        return False

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def minimize(chain, oracle, optimizer, w0, *, iters: Optional[int] = None, data=None,
             batches: Optional[Callable[[int], Iterable]] = None, epochs: Optional[int] = None,
             eval_data=None, line_search: Optional[str] = None,
             callback: Optional[Callable[[IterationInfo], Any]] = None, gtol: float = 0.0,
             divergence_factor: float = 1e8, max_backtracks: int = 60, verbose: bool = True,
             label: str = "", method: str = "", settings: Optional[Mapping[str, Any]] = None,
             bounds=None) -> SolveResult:
    """Minimize ``h(f(w, x0); data)`` from ``w0`` with an oracle's directions and an optimizer.

    Parameters
    ----------
    chain : moreauctl.chain.Chain
    oracle : Oracle
        ``init(w)``, ``oracle(w, state, data) -> (OracleOutput, state)``, ``objective``.
    optimizer : moreauctl.optimizers.Optimizer
    w0 : array_like
        Start point: flat ``(n,)`` or per stage (``(T, nw)`` for control).
    iters : int, optional
        Iteration mode (no ``batches``): ``K`` iterations on the fixed ``data``; default 50.
        ``costs`` has ``K + 1`` entries unless the run stops early.
    data : optional
        The data argument of every call in iteration mode (None for control; a full batch
        for a network trained by full-batch GD).
    batches : callable, optional
        Epoch mode: ``batches(epoch) -> iterable of data`` (one pass over the mini-batches;
        reshuffle inside). Needs ``epochs``.
    epochs : int, optional
        Number of passes in epoch mode.
    eval_data : optional
        Data of the objective reported per epoch (the whole training set).
    line_search : {None, "armijo"}
        ``"armijo"``: halve the update until ``f(w - s d) <= f(w) - 1e-4 s <grad, d>``
        (exact gradient available) or ``f(w - s d) < f(w)`` (other directions), from
        ``s = 1``; on the mini-batch in epoch mode.
    callback : callable, optional
        ``callback(IterationInfo)`` after each update; ``StopIteration`` stops (status 1).
    gtol : float
        Iteration mode: stop (status 2) when the direction's norm is ``<= gtol``.
    divergence_factor : float
        Diverged (status -2) when a reported cost exceeds ``divergence_factor *
        max(1, |cost_0|)``; non-finite values give status -1, a non-finite backward
        output status -3.
    verbose : bool
        Progress bar on stderr for runs longer than a second.
    label, method : str
        For the progress bar and the result.
    settings : mapping, optional
        Stored in the result (what the caller chose).
    bounds : (ndarray, ndarray), optional
        A box ``(lower, upper)`` of flat ``(n,)`` arrays (``-inf``/``inf`` for free
        entries) that every iterate stays in: the optimizer's step is followed by the
        projection onto the box (:func:`moreauctl.optimizers.projected`; with the Moreau
        oracle and a stage affine in ``w`` this is exactly the box-constrained weight prox
        ``argmin_{v in box} alpha lam^T phi(v, x) + |v - w|^2/2``), and the iterate is
        clipped once more after the move so that it is inside the box bit for bit. With
        ``line_search="armijo"`` the trial points ``w - s delta`` are convex combinations of
        ``w`` and the projected point, hence in the box too. ``w0`` must be inside.

    Returns
    -------
    SolveResult
        ``w`` per stage (the layout's unpacked form), the last iterate with a finite cost.
    """
    if line_search not in LINE_SEARCHES:
        raise ValueError(f"unknown line_search {line_search!r}; choose one of {list(LINE_SEARCHES)}")
    gtol = v.nonnegative_number("gtol", gtol)
    divergence_factor = v.positive_number("divergence_factor", divergence_factor)
    max_backtracks = v.positive_int("max_backtracks", max_backtracks)
    w = chain.check_params(w0, "w0")
    box = None
    if bounds is not None:
        box = v.box("bounds", bounds, (w.size,), "(n,)")
        outside = int(np.sum((w < box[0]) | (w > box[1])))
        if outside:
            raise ValueError(f"w0 is outside bounds at {outside} entries")
        optimizer = projected(optimizer, *box)
    loop = _Loop(chain, oracle, optimizer, w, line_search, max_backtracks, callback, box)
    settings = dict(settings or {})
    if batches is None:
        if epochs is not None:
            raise ValueError("epochs needs batches (a callable epoch -> iterable of data)")
        iters = 50 if iters is None else v.nonnegative_int("iters", iters)
        return _iterate(loop, data, iters, gtol, divergence_factor, verbose, label, method,
                        settings)
    if iters is not None or data is not None:
        raise ValueError("give iters (and data) for fixed data, or batches and epochs for "
                         "mini-batches, not both")
    if not callable(batches):
        raise TypeError(f"batches must be a callable epoch -> iterable of data; got "
                        f"{type(batches).__name__}")
    if epochs is None:
        raise ValueError("batches needs epochs (the number of passes over the data)")
    epochs = v.nonnegative_int("epochs", epochs)
    return _epochs(loop, batches, epochs, eval_data, divergence_factor, verbose, label, method,
                   settings)


def _limit(cost0, factor):
    return factor * max(1.0, abs(cost0)) if math.isfinite(cost0) else math.inf


def _iterate(loop, data, iters, gtol, factor, verbose, label, method, settings) -> SolveResult:
    costs, steps, dnorms, times, evals = [], [], [], [], []
    out = loop.call(data)
    limit = _limit(out.cost, factor)
    costs.append(out.cost)
    times.append(loop.elapsed())
    evals.append(loop.n_eval)
    w_last, X_last, cost_last = loop.w, out.states, out.cost
    status, failed, k = 0, None, 0
    bar = _progress(iters, verbose, label)
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
            w_last, X_last, cost_last = loop.w, out.states, out.cost
            if out.failed_stage is not None:
                status, failed = -3, out.failed_stage
                break
            if k >= iters:
                break
            if dn <= gtol:
                status = 2
                break
            s = loop.update(out, data)
            if s is None:
                status = 3
                break
            out = loop.call(data)
            k += 1
            costs.append(out.cost)
            steps.append(s)
            times.append(loop.elapsed())
            evals.append(loop.n_eval)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(cost=f"{out.cost:.4g}", refresh=False)
            if math.isfinite(out.cost) and loop.notify(k, out.cost, out.direction):
                dnorms.append(float(np.linalg.norm(out.direction)))
                w_last, X_last, cost_last = loop.w, out.states, out.cost
                status = 1
                break
    finally:
        if bar is not None:
            bar.close()
    hist = History(costs=costs, steps=steps, direction_norms=dnorms, times=times, evals=evals)
    return _result(loop.chain, w_last, X_last, cost_last, np.asarray(costs), k, status, failed,
                   limit, hist, method, settings)


def _epochs(loop, batches, epochs, eval_data, factor, verbose, label, method,
            settings) -> SolveResult:
    chain = loop.chain
    c0 = chain.objective(loop.w, eval_data)
    limit = _limit(c0, factor)
    costs, ends = [c0], [0]
    losses, steps, dnorms, times, evals = [], [], [], [], []
    w_last, cost_last = loop.w, c0
    status, failed, k = (0 if math.isfinite(c0) else -1), None, 0
    bar = _progress(epochs, verbose and status == 0, label, unit="epoch")
    try:
        for epoch in range(epochs if status == 0 else 0):
            for data in batches(epoch):
                out = loop.call(data)
                losses.append(out.cost)
                dnorms.append(float(np.linalg.norm(out.direction))
                              if out.failed_stage is None else math.nan)
                times.append(loop.elapsed())
                evals.append(loop.n_eval)
                if not math.isfinite(out.cost):
                    status = -1
                elif out.failed_stage is not None:
                    status, failed = -3, out.failed_stage
                else:
                    s = loop.update(out, data)
                    if s is None:
                        status = 3
                    else:
                        steps.append(s)
                        k += 1
                        if loop.notify(k, out.cost, out.direction, epoch):
                            status = 1
                if status != 0:
                    break
            if status in (0, 1):
                c = chain.objective(loop.w, eval_data)
                costs.append(c)
                ends.append(k)
                if not math.isfinite(c):
                    status = -1
                elif c > limit:
                    status = -2
                else:
                    w_last, cost_last = loop.w, c
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(cost=f"{c:.4g}", refresh=False)
            if status != 0:
                break
    finally:
        if bar is not None:
            bar.close()
    hist = History(costs=losses, steps=steps, direction_norms=dnorms, times=times, evals=evals,
                   epoch_ends=ends)
    return _result(chain, w_last, None, cost_last, np.asarray(costs), k, status, failed, limit,
                   hist, method, settings)


def _result(chain, w, X, cost, costs, k, status, failed, limit, hist, method,
            settings) -> SolveResult:
    message = STATUS[status]
    if status == -1 and k == 0:
        message = nonfinite_start_message(X)  # not a divergence: the run never started
    elif status == -1:
        message += f" at iteration {k}"
    elif status == -2:
        message += f" at iteration {k} (cost {costs[-1]:.3g} > {limit:.3g})"
    elif status == -3:
        where = ("the objective's subproblem" if failed == chain.horizon
                 else f"stage {failed + 1} (row {failed} of w)")
        message += f" at iteration {k}, in {where}"
    return SolveResult(w=chain.layout.unpack(w), states=X, fun=cost, costs=costs, nit=k,
                       success=status >= 0, status=status, message=message, history=hist,
                       method=method, settings=settings)


# ---------------------------------------------------------------------------------------
# solve: method names -> minimize (or a solver)
# ---------------------------------------------------------------------------------------

def _oracle_options(method, oracle_options, moreau_options, gamma, stage_weights, step):
    if oracle_options is not None and moreau_options is not None:
        raise ValueError("give oracle_options or its alias moreau_options, not both")
    opts = oracle_options if oracle_options is not None else moreau_options
    if opts is not None and not isinstance(opts, Mapping):
        raise TypeError(f"oracle_options must be a mapping; got {type(opts).__name__}")
    opts = dict(opts or {})
    for name, val in (("gamma", gamma), ("stage_weights", stage_weights)):
        if val is not None:
            if name in opts:
                raise ValueError(f"{name} given twice: as {name}= and in oracle_options")
            opts[name] = val
    if method.step_option and "gammas" not in opts:
        # the method's step lives in the oracle (Moreau GD: step = alpha); with Algo 2's
        # explicit arrays there is no scalar alpha and step is the learning rate on g
        if method.step_option in opts:
            raise ValueError(f"for {method.name!r} the step is {method.step_option}: pass "
                             f"step=, not oracle_options[{method.step_option!r}]")
        opts[method.step_option] = step
    return opts


def _settings(problem, method, step, iters, gamma, line_search, stage_weights, opts, opt_kw):
    s = {"method": method.name, "step": step if not callable(step) else repr(step),
         "iters": iters, "gamma": gamma, "line_search": line_search,
         "problem": getattr(problem, "name", type(problem).__name__)}
    for attr in ("horizon", "dt", "scheme"):
        if hasattr(problem, attr):
            s[attr] = getattr(problem, attr)
    if stage_weights is not None:
        s["stage_weights"] = stage_weights
    s.update({k: val for k, val in opts.items()
              if k not in ("gammas", "alphas", "gamma", "stage_weights")})
    if opt_kw:
        s["optimizer_options"] = dict(opt_kw)
    return s


def solve(problem, method: str = "gd", step=1.0, iters: Optional[int] = None, *,
          gamma: Optional[float] = None, w0=None, line_search: Optional[str] = None,
          stage_weights: Optional[str] = None,
          oracle_options: Optional[Mapping[str, Any]] = None,
          moreau_options: Optional[Mapping[str, Any]] = None,
          optimizer_options: Optional[Mapping[str, Any]] = None,
          epochs: Optional[int] = None, seed: Optional[int] = None,
          callback: Optional[Callable[[IterationInfo], Any]] = None, gtol: float = 0.0,
          divergence_factor: float = 1e8, max_backtracks: int = 60,
          verbose: bool = True, solver_options: Optional[Mapping[str, Any]] = None,
          ipopt_options: Optional[Mapping[str, Any]] = None) -> SolveResult:
    """Minimize a problem's objective with a named method.

    Parameters
    ----------
    problem : ControlProblem, or a problem with ``.chain`` (networks)
    method : str
        One of :data:`METHODS` (see the module docstring).
    step : float or schedule
        The learning rate (``alpha`` for ``moreau-gd``); a schedule ``count -> lr``
        (:mod:`moreauctl.optimizers.schedules`) for optimizers. With
        ``line_search="armijo"`` it is the initial trial step of every iteration.
    iters : int, optional
        Iterations ``K`` on problems without data (default 50).
    gamma : float, optional
        Moreau's ``gamma`` (required for Moreau methods, the paper uses 0.5), or the ratio
        of ``stage_weights="geometric"`` for gradient methods.
    w0 : array_like, optional
        Initial parameters (``(T, nw)`` for control, per-stage tuples for networks); zeros
        for control problems, the problem's ``init`` otherwise.
    line_search : {None, "armijo"}
    stage_weights : {None, "geometric"}
        Per-stage gradient weights (gradient methods only).
    oracle_options : mapping, optional
        Keyword arguments of the method's oracle (for Moreau methods those of
        :class:`~moreauctl.oracles.MoreauOracle`: ``schedule``, ``alpha_convention``,
        ``gammas``/``alphas``, ``rules``, ``inner``, ``inner_iters``, ``inner_tol``,
        ``diagnostics``, and ``alpha`` for ``moreau-<optimizer>``). Unknown keys raise.
    moreau_options : mapping, optional
        Alias of ``oracle_options`` (its older name).
    optimizer_options : mapping, optional
        Extra keyword arguments of the update rule (e.g. ``beta`` of momentum).
    epochs, seed : int, optional
        Problems with data: passes over reshuffled mini-batches, and the shuffling seed.
    callback, gtol, divergence_factor, max_backtracks, verbose
        See :func:`minimize`.
    solver_options : mapping, optional
        Options of a solver method (IPOPT's by their IPOPT names); ``ipopt_options`` is an
        alias.

    Returns
    -------
    SolveResult
    """
    m = get_method(method)
    if solver_options is not None and ipopt_options is not None:
        raise ValueError("give solver_options or its alias ipopt_options, not both")
    solver_opts = solver_options if solver_options is not None else ipopt_options
    if m.is_solver:
        for name, val in (("gamma", gamma), ("line_search", line_search),
                          ("stage_weights", stage_weights), ("oracle_options", oracle_options),
                          ("moreau_options", moreau_options),
                          ("optimizer_options", optimizer_options), ("epochs", epochs),
                          ("seed", seed), ("callback", callback)):
            if val is not None:
                raise ValueError(f"{name} does not apply to method {m.name!r}")
        if hasattr(problem, "start"):
            w0 = problem.start(w0)  # shape, finite, inside control_bounds (before any compute)
        return m.run(problem, w0=w0, iters=iters, verbose=verbose, options=solver_opts)
    if solver_opts is not None:
        raise ValueError(f"solver_options/ipopt_options apply to solver methods, not {m.name!r}")
    if not callable(step):
        step = v.positive_number("step", step)
    # the loop's settings (minimize checks them too): bad ones are errors before any
    # compute, and problem.chain below may compile kernels
    if line_search not in LINE_SEARCHES:
        raise ValueError(f"unknown line_search {line_search!r}; choose one of {list(LINE_SEARCHES)}")
    v.nonnegative_number("gtol", gtol)
    v.positive_number("divergence_factor", divergence_factor)
    v.positive_int("max_backtracks", max_backtracks)
    if iters is not None:
        v.nonnegative_int("iters", iters)
    opts = _oracle_options(m, oracle_options, moreau_options, gamma, stage_weights, step)
    if optimizer_options is not None and not isinstance(optimizer_options, Mapping):
        raise TypeError(f"optimizer_options must be a mapping; got {type(optimizer_options).__name__}")
    opt_kw = dict(optimizer_options or {})
    chain = problem.chain
    batches = eval_data = None
    if epochs is not None or hasattr(problem, "batches"):
        if not hasattr(problem, "batches"):
            raise ValueError("epochs applies to problems with data (networks); this problem "
                             "has none: use iters")
        if iters is not None:
            raise ValueError("this problem trains on mini-batches: give epochs, not iters")
        batches = problem.batches(seed)
        eval_data = problem.data
        epochs = 10 if epochs is None else epochs
    elif seed is not None:
        raise ValueError("seed applies to problems with data (the shuffling of mini-batches)")
    try:
        oracle = ORACLES[m.oracle](chain, **opts)
    except (TypeError, ValueError) as e:
        raise type(e)(f"method {m.name!r}: {e}") from None
    try:
        optimizer = OPTIMIZERS[m.optimizer](step, **opt_kw)
    except TypeError as e:
        raise TypeError(f"method {m.name!r}, optimizer {m.optimizer!r}: {e}") from None
    if w0 is None and hasattr(problem, "init_params"):
        w0 = problem.init_params()
    if hasattr(problem, "start"):
        w0 = problem.start(w0)  # default: zero projected onto control_bounds
    w0 = chain.layout.zeros() if w0 is None else w0
    bounds = _flat_bounds(problem, chain)
    n_iters = None if batches is not None else (50 if iters is None else iters)
    settings = _settings(problem, m, step, n_iters, gamma, line_search, stage_weights, opts,
                         opt_kw)
    if batches is not None:
        settings.update(epochs=epochs, seed=seed)
    T = chain.horizon
    return minimize(chain, oracle, optimizer, w0, iters=n_iters, batches=batches,
                    epochs=epochs, eval_data=eval_data, line_search=line_search,
                    callback=callback, gtol=gtol, divergence_factor=divergence_factor,
                    max_backtracks=max_backtracks, verbose=verbose,
                    label=f"{m.name} T={T}", method=m.name, settings=settings, bounds=bounds)


def _flat_bounds(problem, chain):
    """A problem's ``control_bounds`` (per stage, ``(nw,)`` each) repeated over the stages
    of the chain's flat layout, or None."""
    cb = getattr(problem, "control_bounds", None)
    if cb is None:
        return None
    T = chain.horizon
    return np.tile(cb[0], T), np.tile(cb[1], T)
