"""Horizon sweeps: for each horizon ``T``, grid-search each method's step, compare to IPOPT.

A sweep is a set of independent *cells*. One cell is one run ``(T, method settings, step)``
(``kind="run"``), or the IPOPT reference optimum of one horizon (``kind="reference"``).
Cells run on any :class:`concurrent.futures.Executor` (see :mod:`.executors`):

- default: a local :class:`~concurrent.futures.ProcessPoolExecutor` (one worker per core);
- ``executor="serial"`` (in this process) or ``"thread"``;
- a Dask cluster, when one machine is not enough::

      from moreauctl.studies import dask_executor
      with dask_executor("scheduler-address:8786") as ex:    # or dask_executor(workers=4)
          res = horizon_sweep("pendulum", [100, 1000], executor=ex, out="run1")

Only names and settings travel to workers (a plant name from :data:`moreauctl.models.MODELS`,
or a picklable top-level ``make_problem`` function, plus JSON-like settings), never CasADi
objects or compiled kernels. Each worker builds a problem once per
``(make_problem, T, dt, problem_kwargs)`` and keeps it in a module-level cache, so the
numba chain of a problem is compiled (or loaded from the disk cache ``$MOREAUCTL_CACHE``)
once per worker, not once per cell.

Two ways to scale the problem with the horizon ``T``:

``scaling="fixed-dt"`` (default; the paper's Sec. 4 setting)
    The time step stays ``dt`` (0.1 by default), so a longer horizon is a longer
    *physical* time ``T * dt``: more time to swing up, and more stages to back-propagate
    through.
``scaling="fixed-time"``
    The physical time stays ``total_time`` and ``dt = total_time / T``, so a longer horizon
    is a *finer discretization* of the same continuous-time problem. The optimal cost then
    converges as ``T`` grows, and what changes is only the conditioning seen by the methods.

Results survive interruptions: with ``out=DIR`` each finished cell is written atomically to
``DIR/cells/<key>.json`` (see :mod:`moreauctl.studies.store`) as soon as it completes; a
re-run loads finished cells instead of recomputing them (``force=True`` recomputes them all).
A study killed at any point and restarted loses nothing that had finished.

Stored results are never stale: each cell records the fingerprint of the problem it solved
(CasADi's serialization of the stage and objective, ``x0``, ``dt``, scheme, horizon) and of
the code (moreauctl's sources, casadi/numba/numpy versions), see :mod:`.fingerprint`. A cell
whose fingerprint differs from the problem and code of the current run is recomputed, and so
is a cell file that is readable but wrong (a field missing, empty or not numeric:
:func:`check_record`, named in a warning); the ``stale`` and ``invalid`` counts of
:class:`SweepResult` count them.

Steps are chosen per grid as in :mod:`.grid`; tables and figures come from :mod:`.report`,
which this module calls (the report never imports the sweep: it reads a
:class:`SweepResult` through its attributes).

Testing hook: when the environment variable ``MOREAUCTL_STUDY_CELL_DELAY`` holds a number of
seconds, every cell sleeps that long after computing (used to kill a study mid-run in tests).
"""
from __future__ import annotations

import inspect
import json
import math
import os
import time
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import __version__, models
from .._io import check_output_dir, write_json_atomic
from .._validate import choice, nonnegative_int, positive_int, positive_number
from ..ipopt import IPOPT_FAILED
from ..ipopt import check_options as check_ipopt_options
from ..solve import solve
from .cells import floats_from_json, floats_to_json, run_pending
from .executors import terminate_on_signal
from .fingerprint import fingerprint
from .grid import GridResult, StepRecord, choose, powers_of_two
from .metrics import check_criterion, normalized_gap
from .report import markdown_table, sweep_rows, write_report
from .store import CellStore, cell_key

__all__ = ["horizon_sweep", "SweepResult", "METHOD_PRESETS", "DEFAULT_METHODS",
           "FAMILY_METHODS", "SCALINGS", "run_cell", "DEFAULT_STEPS", "check_record"]

#: How the problem scales with the horizon ``T`` (see above): ``"fixed-dt"`` or
#: ``"fixed-time"``.
SCALINGS = ("fixed-dt", "fixed-time")

#: step grid used when a method's settings give none: ``2^-10..2^10``
DEFAULT_STEPS = powers_of_two(-10, 10)

#: Named method settings for sweeps and the command line. ``steps`` is each method's grid;
#: every other key is passed to :func:`moreauctl.solve`.
METHOD_PRESETS: Dict[str, Dict[str, Any]] = {
    "gd": {"method": "gd"},
    # The ablation: Moreau GD's per-stage weights gamma^(T-t+1) without its prox steps.
    "gd-geometric": {"method": "gd", "stage_weights": "geometric", "gamma": 0.5},
    "moreau-gd": {"method": "moreau-gd", "gamma": 0.5},
    "gd-armijo": {"method": "gd", "line_search": "armijo"},
    # gamma = 0.5 per 0.1 s of the plant instead of per stage (the paper's 0.5 at dt = 0.1)
    "moreau-gd-time": {"method": "moreau-gd", "gamma": 0.5, "gamma_ref_dt": 0.1},
    # the oracle family of issue 11 (moreauctl.oracles): GBP costates with a weight prox
    "proxprop": {"method": "proxprop"},
    # Algo 7-9 with a small penalty; kappa = 0 would be moreau-gd
    "auglag": {"method": "auglag", "gamma": 0.5, "oracle_options": {"kappa": 0.1}},
    # Algo 10-11: plain inverses of the stages
    "target-prop": {"method": "target-prop"},
    # Algo 12-13: the constant schedule with gamma = 1 did best on the pendulum (the geometric
    # one starves every stage but the last few of targets)
    "prox-target-prop": {"method": "prox-target-prop", "gamma": 1.0,
                         "oracle_options": {"kappa": 1.0, "schedule": "constant"}},
    # Frerix et al.'s sweep on the penalized formulation with tau rho = 0.5: back-propagation
    # with stage weights 0.5^(T-t), i.e. gd-geometric with its step halved
    "penalized": {"method": "penalized", "oracle_options": {"rho": 0.5}},
}

#: the presets of issue 11's comparison (every oracle of the family, with the references)
FAMILY_METHODS = ("gd", "gd-geometric", "moreau-gd", "proxprop", "auglag", "target-prop",
                  "prox-target-prop", "penalized")

#: the methods of a default sweep: GD, GD with geometric stage weights, Moreau GD (gamma 0.5)
DEFAULT_METHODS = ("gd", "gd-geometric", "moreau-gd")

# keys a method's settings may not carry (they are sweep-level, or not JSON-like)
_FORBIDDEN_SETTINGS = {"step": "give a grid as 'steps'", "iters": "set iters for the sweep",
                       "w0": "sweeps start from zeros", "callback": "callbacks cannot be stored",
                       "verbose": "cells are always silent"}

# ---------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------

#: per-process cache: (problem id, T, dt, problem_kwargs) -> (ControlProblem, fingerprint);
#: the chain of a problem is compiled once per worker, its fingerprint computed once
_PROBLEMS: Dict[tuple, Tuple[Any, Dict[str, str]]] = {}


def _problem_id(make_problem) -> str:
    if isinstance(make_problem, str):
        return f"plant:{make_problem}"
    mod = getattr(make_problem, "__module__", None) or "?"
    qual = getattr(make_problem, "__qualname__", None) or repr(make_problem)
    return f"{mod}:{qual}"


def _resolve_factory(make_problem) -> Callable:
    if isinstance(make_problem, str):
        return models.MODELS[choice("plant", make_problem, models.MODELS)]
    if callable(make_problem):
        return make_problem
    raise TypeError("make_problem must be a plant name (see moreauctl.models.MODELS) or a "
                    f"function (horizon, dt, **problem_kwargs) -> ControlProblem; got "
                    f"{type(make_problem).__name__}")


def _accepts(make_problem, name: str) -> bool:
    """Whether the problem factory takes the keyword ``name``."""
    try:
        params = inspect.signature(_resolve_factory(make_problem)).parameters
    except (TypeError, ValueError):
        return False
    return name in params  # not through **kwargs: those may go to the plant


def _get_problem(make_problem, T: int, dt: Optional[float], problem_kwargs: Mapping[str, Any],
                 expected: Optional[Mapping[str, str]] = None, fresh: bool = False):
    """``(problem, fingerprint)`` of one horizon, built once per process; built again with
    ``fresh`` (a sweep starting in this process), or when ``expected`` is given and the
    cached problem's fingerprint differs (a factory edited in a long-lived process, a
    notebook or a Dask worker, since it was cached)."""
    key = (_problem_id(make_problem), int(T), dt, json.dumps(problem_kwargs, sort_keys=True))
    got = _PROBLEMS.get(key)
    if fresh or got is None or (expected is not None and got[1] != expected):
        factory = _resolve_factory(make_problem)
        kw = dict(problem_kwargs)
        if dt is not None:
            kw["dt"] = dt
        prob = factory(horizon=int(T), **kw)
        for attr in ("stage", "objective", "x0_chain", "horizon", "dt"):
            if not hasattr(prob, attr):
                raise TypeError(f"make_problem(horizon={T}, ...) must return a ControlProblem; "
                                f"got {type(prob).__name__} (without .{attr})")
        got = _PROBLEMS[key] = (prob, fingerprint(prob))
    return got


def run_cell(spec: Mapping[str, Any], make_problem: Union[str, Callable],
             fingerprint: Optional[Mapping[str, str]] = None) -> dict:
    """Compute one cell (in a worker) and return its record (a JSON-ready dict).

    Parameters
    ----------
    spec : mapping
        The cell's settings (``kind``, ``horizon``, ``dt``, ``problem_kwargs``, ``method``,
        ``step``, ``iters``, ``solve_kwargs`` or ``ipopt_options``); its key is
        ``cell_key(spec)``.
    make_problem : str or callable
        Plant name or problem factory.
    fingerprint : mapping, optional
        The fingerprint the caller expects (:func:`~moreauctl.studies.fingerprint.fingerprint`
        of its own problem): a problem cached in this process with another one is rebuilt.
        The record holds the fingerprint of the problem actually solved.
    """
    T, dt = int(spec["horizon"]), spec["dt"]
    prob, fp = _get_problem(make_problem, T, dt, spec.get("problem_kwargs") or {}, fingerprint)
    if spec["kind"] == "reference":
        t0 = time.perf_counter()
        try:
            res = solve(prob, method="ipopt",
                        ipopt_options=dict(spec.get("ipopt_options") or {}), verbose=False)
        except Exception as e:  # noqa: BLE001 (a failed reference is a result of the sweep)
            return _failed_reference(spec, prob, fp, e, time.perf_counter() - t0)
        extra = {"fun": res.fun if math.isfinite(res.fun) else "nan",
                 "return_status": res.settings.get("return_status"),
                 "tol": res.settings.get("tol")}
    elif spec["kind"] == "run":
        t0 = time.perf_counter()
        res = solve(prob, method=spec["method"], step=float(spec["step"]), iters=int(spec["iters"]),
                    verbose=False, **dict(spec.get("solve_kwargs") or {}))
        extra = {}
    else:
        raise ValueError(f"unknown cell kind {spec['kind']!r}; expected 'run' or 'reference'")
    seconds = time.perf_counter() - t0
    delay = os.environ.get("MOREAUCTL_STUDY_CELL_DELAY")
    if delay:
        time.sleep(float(delay))
    return _record(spec, prob, fp, res.costs, bool(res.success), int(res.status),
                   str(res.message), int(res.nit), seconds, **extra)


def _record(spec, prob, fp, costs, success, status, message, nit, seconds, **extra) -> dict:
    return {"key": cell_key(spec), "spec": dict(spec), "costs": floats_to_json(costs),
            "success": success, "status": status, "message": message, "nit": nit,
            "seconds": float(seconds), "dt": float(prob.dt), "scheme": str(prob.scheme),
            "pid": os.getpid(), "finished_at": time.time(), "moreauctl_version": __version__,
            "fingerprint": dict(fp), **extra}


def _failed_reference(spec, prob, fp, error: Exception, seconds: float) -> dict:
    """The record of a reference cell whose IPOPT run raised: a failed cell (no ``c*``
    for that horizon), so the rest of the sweep goes on."""
    first = (str(error).strip().splitlines() or [""])[-1]
    return _record(spec, prob, fp, [math.nan, math.nan], False, IPOPT_FAILED,
                   f"IPOPT failed: {type(error).__name__}: {first}", 0, seconds,
                   fun="nan", return_status=None, tol=None)


#: required fields of a cell record and their types (checked before a stored cell is used)
_RECORD_FIELDS = {"key": str, "spec": dict, "costs": list, "success": bool, "status": int,
                  "message": str, "nit": int, "seconds": (int, float), "dt": (int, float),
                  "fingerprint": dict}


def _cost_entry_ok(c) -> bool:
    if isinstance(c, bool):
        return False
    if isinstance(c, (int, float)):
        return math.isfinite(c)
    return c in ("nan", "inf", "-inf")


def check_record(rec: Mapping[str, Any], spec: Mapping[str, Any]) -> Optional[str]:
    """Why a stored record cannot be the result of the cell ``spec`` (None when it can).

    Checks every field a sweep reads: types, the settings it was computed for, a non-empty
    cost curve of numbers (JSON spells non-finite costs ``"nan"``, ``"inf"``, ``"-inf"``)
    as long as the iterations allow, ``nit`` within the iterations, a finite ``dt > 0``.
    """
    for name, typ in _RECORD_FIELDS.items():
        if name not in rec:
            return f"it has no {name!r}"
        v = rec[name]
        if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
            return f"its {name!r} is {type(v).__name__}, expected {_type_names(typ)}"
    if cell_key(rec["spec"]) != cell_key(spec):
        return "its settings are not those of this cell"
    costs = rec["costs"]
    if not costs:
        return "its cost curve 'costs' is empty"
    bad = [c for c in costs if not _cost_entry_ok(c)]
    if bad:
        return f"its cost curve holds non-numbers (e.g. {bad[0]!r})"
    longest = 2 if spec["kind"] == "reference" else int(spec["iters"]) + 2
    if len(costs) > longest:
        return f"its cost curve has {len(costs)} entries; at most {longest} expected"
    if rec["nit"] < 0 or (spec["kind"] == "run" and rec["nit"] > int(spec["iters"])):
        return f"its nit {rec['nit']} is out of range"
    if not (math.isfinite(rec["dt"]) and rec["dt"] > 0 and math.isfinite(rec["seconds"])):
        return "its dt or seconds is not a finite number"
    return None


def _type_names(typ) -> str:
    return " or ".join(t.__name__ for t in typ) if isinstance(typ, tuple) else typ.__name__


def _record_to_step(rec: Mapping[str, Any]) -> StepRecord:
    spec = rec["spec"]
    step = float(spec["step"]) if spec.get("kind") == "run" else math.nan
    iters = int(spec.get("iters", max(len(rec["costs"]) - 1, 0)))
    return StepRecord(step=step, success=bool(rec["success"]), status=int(rec["status"]),
                      message=str(rec["message"]), nit=int(rec["nit"]),
                      costs=floats_from_json(rec["costs"]), seconds=float(rec["seconds"]),
                      iters=iters)


# ---------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepResult:
    """Everything a horizon sweep found.

    Attributes
    ----------
    horizons : tuple of int
    labels : tuple of str
        Method labels, in the order given.
    grids : mapping ``(T, label) -> GridResult``
        Each with its records (one per step) and the chosen step by ``criterion``.
    references : mapping ``T -> StepRecord or None``
        The IPOPT run of each horizon (``costs = [c_0, c*]``), or None without reference.
    dts : mapping ``T -> float``
        The time step actually used for each horizon.
    settings : mapping
        ``problem``, ``scaling``, ``dt``, ``total_time``, ``iters``, ``criterion``,
        ``methods`` (label -> settings incl. ``steps``), ``problem_kwargs``.
    computed, loaded : int
        Cells computed by this call, and cells found finished on disk.
    stale, invalid : int
        Among the computed cells, those found on disk but recomputed: computed for another
        problem content or code version (see :mod:`.fingerprint`), or a cell file that could
        not be used (unreadable, or a field missing or wrong; named in a warning).
    seconds : float
        Wall time of the call.
    out : str or None
    """

    horizons: Tuple[int, ...]
    labels: Tuple[str, ...]
    grids: Mapping[Tuple[int, str], GridResult]
    references: Mapping[int, Optional[StepRecord]]
    dts: Mapping[int, float]
    settings: Mapping[str, Any]
    computed: int = 0
    loaded: int = 0
    stale: int = 0
    invalid: int = 0
    seconds: float = 0.0
    out: Optional[str] = None

    def grid(self, T: int, label: str) -> GridResult:
        try:
            return self.grids[(T, label)]
        except KeyError:
            raise KeyError(f"no grid for T={T!r}, label={label!r}; horizons {list(self.horizons)}, "
                           f"labels {list(self.labels)}") from None

    def c_star(self, T: int) -> float:
        """IPOPT's optimal cost at horizon ``T`` (NaN without a finite reference)."""
        ref = self.references.get(T)
        if ref is None:
            return math.nan
        c = ref.costs[-1]
        return float(c) if math.isfinite(c) else math.nan

    def gap_curve(self, T: int, label: str) -> np.ndarray:
        """Normalized gap of the winner's min-so-far curve, ``(y_k - c*) / (c_0 - c*)``,
        shape (K'+1,); NaN without a reference or a winner."""
        g = self.grid(T, label)
        if g.winner is None:
            return np.full(1, math.nan)
        y = g.winner.min_so_far()
        return normalized_gap(y, g.winner.costs[0], self.c_star(T))

    def rows(self):
        """One dict per (T, method) row of the summary (see :func:`.report.sweep_rows`)."""
        return sweep_rows(self)

    def to_markdown(self) -> str:
        """The summary as a markdown table (see :func:`.report.markdown_table`)."""
        return markdown_table(self)

    def write_report(self, out: Optional[str] = None, figures: bool = True) -> Dict[str, str]:
        """Write ``summary.csv``, ``summary.md``, ``sweep.json`` and the figures under
        ``out`` (default: the sweep's own ``out``); returns ``{name: path}``."""
        d = out or self.out
        if d is None:
            raise ValueError("no output directory: pass out=")
        return write_report(self, d, figures=figures)


def _check_methods(methods) -> Dict[str, Dict[str, Any]]:
    if methods is None:
        methods = DEFAULT_METHODS
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if not isinstance(methods, Mapping):
        out = {}
        for name in methods:
            if name not in METHOD_PRESETS:
                raise ValueError(f"unknown method preset {name!r}; choose one of "
                                 f"{sorted(METHOD_PRESETS)} or pass {{label: settings}}")
            out[name] = dict(METHOD_PRESETS[name])
        methods = out
    if not methods:
        raise ValueError("methods is empty; expected at least one method")
    checked = {}
    for label, st in methods.items():
        if not isinstance(st, Mapping) or "method" not in st:
            raise ValueError(f"settings of {label!r} must be a mapping with a 'method' key; got {st!r}")
        st = dict(st)
        if st["method"] == "ipopt":
            raise ValueError(f"{label!r}: IPOPT is the reference (reference='ipopt'), not a method")
        for k, why in _FORBIDDEN_SETTINGS.items():
            if k in st:
                raise ValueError(f"settings of {label!r} may not set {k!r}: {why}")
        if "gamma_ref_dt" in st:
            # a shortcut for the oracles' own option gamma_time (gamma per unit of time)
            ref = positive_number(f"gamma_ref_dt of {label!r}", st.pop("gamma_ref_dt"))
            if st.get("gamma") is None:
                raise ValueError(f"settings of {label!r}: gamma_ref_dt rescales gamma, so gamma "
                                 "is needed too")
            key = "moreau_options" if "moreau_options" in st else "oracle_options"
            opts = dict(st.get(key) or {})
            if "gamma_time" in opts:
                raise ValueError(f"settings of {label!r}: gamma_ref_dt and "
                                 f"{key}['gamma_time'] say the same thing; give one")
            opts["gamma_time"] = ref
            st[key] = opts
        steps = tuple(positive_number(f"every step of {label!r}", s)
                      for s in st.pop("steps", DEFAULT_STEPS))
        if not steps:
            raise ValueError(f"steps of {label!r} is empty; expected at least one step size")
        st["steps"] = steps
        checked[str(label)] = st
    return checked


def _check_horizons(horizons) -> Tuple[int, ...]:
    hs = [positive_int("every horizon", T) for T in horizons]
    if not hs:
        raise ValueError("horizons is empty")
    if len(set(hs)) != len(hs):
        raise ValueError(f"horizons has duplicates: {hs}")
    return tuple(hs)


def _load_cells(store: CellStore, specs: Mapping[str, dict],
                expected: Mapping[int, Mapping[str, str]]) -> Tuple[Dict[str, dict], int, int]:
    """The stored cells that can be reused: ``(records, n_stale, n_invalid)``.

    A cell file that cannot be used (unreadable, not a record of its cell, a field missing or
    of the wrong type: see :func:`check_record`) is named in a warning and recomputed
    (``n_invalid``). A valid record computed for another problem content or code version
    (its fingerprint differs from ``expected[T]``) is stale: recomputed too (``n_stale``),
    with one warning for all of them.
    """
    records: Dict[str, dict] = {}
    n_invalid, stale = 0, []
    for k, spec in specs.items():
        rec, why = store.read(k)
        if rec is not None:
            why = check_record(rec, spec)
        if why is not None:
            n_invalid += 1
            warnings.warn(f"ignoring cell file {store.path(k)}: {why}; it will be recomputed",
                          RuntimeWarning, stacklevel=3)
        elif rec is not None:
            if rec["fingerprint"] == expected[spec["horizon"]]:
                records[k] = rec
            else:
                stale.append((k, rec["fingerprint"], expected[spec["horizon"]]))
    if stale:
        k, got, want = stale[0]
        what = [name for name in ("problem", "code") if got.get(name) != want.get(name)]
        warnings.warn(
            f"{len(stale)} stored cells under {store.cells_dir} were computed for another "
            f"{' and '.join(what) or 'fingerprint'} (e.g. {k}.json: {_fp_diff(got, want)}); "
            "they are recomputed", RuntimeWarning, stacklevel=3)
    return records, len(stale), n_invalid


def _fp_diff(got: Mapping[str, str], want: Mapping[str, str]) -> str:
    return "; ".join(f"{name} {str(got.get(name))[:40]!r} != now {str(want.get(name))[:40]!r}"
                     for name in ("problem", "code") if got.get(name) != want.get(name))


def _check_computed(rec: Mapping[str, Any], spec: Mapping[str, Any],
                    want: Mapping[str, str]) -> None:
    """A worker must have computed what this process asked for: the same problem content
    and code version (a worker with other code, or a factory that does not return the same
    problem on every call, would otherwise store numbers of another problem)."""
    if rec.get("fingerprint") != want:
        raise RuntimeError(
            f"cell T={spec['horizon']} method={spec['method']} step={spec.get('step')} was "
            f"computed for another problem or code version than this process's "
            f"({_fp_diff(rec.get('fingerprint') or {}, want)}): workers must run the same "
            "moreauctl, and make_problem must build the same problem on every call")


def _dt_for(T, scaling, dt, total_time):
    if scaling == "fixed-dt":
        return None if dt is None else float(dt)
    return float(total_time) / T


def _run_cells(pending, specs, expected, make_problem, executor, workers, store, records,
               progress, n_loaded) -> None:
    """Compute the ``pending`` cells on the executor, storing each as it finishes (into
    ``records`` and the store), each checked against this process's fingerprints
    (:func:`.cells.run_pending`: on any exception, Ctrl-C or SIGTERM included, a pool it
    created is stopped at once; finished cells stay)."""
    def describe(sp):
        return f"T={sp['horizon']} method={sp['method']} step={sp.get('step')}"

    run_pending(pending, specs, run_cell,
                lambda sp: (make_problem, expected[sp["horizon"]]), records, store=store,
                executor=executor, workers=workers, progress=progress, n_loaded=n_loaded,
                describe=describe,
                verify=lambda rec, sp: _check_computed(rec, sp, expected[sp["horizon"]]))


def horizon_sweep(make_problem: Union[str, Callable], horizons: Sequence[int],
                  methods: Union[None, Sequence[str], Mapping[str, Mapping[str, Any]]] = None,
                  iters: int = 50, *, scaling: str = "fixed-dt", dt: Optional[float] = 0.1,
                  total_time: Optional[float] = None,
                  problem_kwargs: Optional[Mapping[str, Any]] = None, criterion: str = "best",
                  executor: Union[None, str, Executor] = None, workers: Optional[int] = None,
                  out: Optional[str] = None, force: bool = False, progress: bool = True,
                  reference: Optional[str] = "ipopt",
                  ipopt_options: Optional[Mapping[str, Any]] = None,
                  report: bool = True) -> SweepResult:
    """Grid-search every method's step at every horizon; compare against IPOPT.

    Parameters
    ----------
    make_problem : str or callable
        A plant name of :data:`moreauctl.models.MODELS` (``"pendulum"``, ``"cartpole"``), or
        a picklable top-level function ``make_problem(horizon=T, dt=dt, **problem_kwargs)
        -> ControlProblem``. Cell keys name it by ``module:qualname``; each stored cell
        also records the problem's content and the code version
        (:mod:`~moreauctl.studies.fingerprint`), so editing the factory or the code
        recomputes the cells (counted in ``SweepResult.stale``).
    horizons : sequence of int
    methods : sequence of preset names, or mapping ``label -> settings``
        Presets are :data:`~moreauctl.studies.METHOD_PRESETS`; the default is
        :data:`~moreauctl.studies.DEFAULT_METHODS` (GD, GD with geometric stage weights
        ``gamma=0.5``, Moreau GD ``gamma=0.5``). Settings hold
        ``method``, an optional ``steps`` grid (default ``2^-10 .. 2^10``), and any keyword
        of :func:`moreauctl.solve` (``gamma``, ``stage_weights``, ``line_search``,
        ``moreau_options``, ...). One more key, ``gamma_ref_dt``, makes ``gamma`` a decay
        per unit of *physical time* (a shortcut for the oracle option ``gamma_time``, see
        :func:`moreauctl.oracles.base.gamma_per_stage`): at time step ``dt`` the run uses
        ``gamma ** (dt / gamma_ref_dt)`` per stage, so the weights ``gamma_t`` decay by
        ``gamma`` every ``gamma_ref_dt`` seconds whatever the discretization (with
        ``scaling="fixed-time"`` a fixed ``gamma`` would otherwise confine the updates to the
        last few stages, a shorter and shorter stretch of time as ``T`` grows).
    iters : int
        Iterations ``K`` of every run.
    scaling : {"fixed-dt", "fixed-time"}
        How the problem scales with ``T`` (see the module docstring).
    dt : float or None
        Time step for ``"fixed-dt"`` (None: the factory's default). Not used with
        ``"fixed-time"`` (leave it at its default or None).
    total_time : float
        Physical horizon for ``"fixed-time"`` (``dt = total_time / T``).
    problem_kwargs : mapping, optional
        Extra factory keywords (e.g. ``{"scheme": "rk4"}``).
    criterion : {"best", "final", "auc"}
        How each grid picks its step (see :mod:`moreauctl.studies.grid`).
    executor : Executor, or "process" | "thread" | "serial", optional
        Where cells run; default a local process pool of ``workers`` processes (one per
        core). An executor passed in is not shut down.
    out : str, optional
        Study directory: finished cells are stored there atomically and reused on the next
        call; the CSV, markdown table and figures are written there when ``report``.
    force : bool
        Recompute cells even when finished on disk.
    progress : bool
        A tqdm bar over cells (on stderr).
    reference : {"ipopt", None}
        Compute IPOPT's optimum for each horizon (one more cell per horizon) and report the
        normalized gap ``(c_k - c*) / (c_0 - c*)``.
    ipopt_options : mapping, optional
        IPOPT options of the reference cells.

    Returns
    -------
    SweepResult
    """
    t_start = time.perf_counter()
    hs = _check_horizons(horizons)
    meths = _check_methods(methods)
    nonnegative_int("iters", iters)
    choice("scaling", scaling, SCALINGS)
    if scaling == "fixed-time":
        if total_time is None:
            raise ValueError("scaling='fixed-time' needs total_time > 0 (dt = total_time / T); "
                             "got total_time=None")
        positive_number("total_time", total_time)
        if dt is not None and float(dt) != 0.1:
            raise ValueError(f"with scaling='fixed-time' the time step is total_time / T; "
                             f"do not also set dt (got dt={dt!r})")
    elif total_time is not None:
        raise ValueError("total_time is only used with scaling='fixed-time'; with 'fixed-dt' set dt")
    if dt is not None:
        positive_number("dt", dt)
    check_criterion(criterion)
    if reference not in ("ipopt", None):
        raise ValueError(f"unknown reference {reference!r}; choose 'ipopt' or None")
    if reference == "ipopt":
        check_ipopt_options(ipopt_options)  # IPOPT's own message, before any cell runs
    _resolve_factory(make_problem)  # fail fast on an unknown plant name
    if out is not None:
        check_output_dir(out, "out")  # a file, or not writable: say so before any compute
    pkw = dict(problem_kwargs or {})
    if scaling == "fixed-time" and "runtime_params" not in pkw and _accepts(make_problem,
                                                                            "runtime_params"):
        # every cell has its own dt: with dt a run-time input of the kernels, one compiled
        # module serves them all (ControlProblem(runtime_params=True)); pass
        # problem_kwargs={"runtime_params": False} to compile dt in (bitwise the fixed-dt
        # kernels, ~10% faster per pass, one compilation per horizon)
        pkw["runtime_params"] = True
    pid = _problem_id(make_problem)

    # -- the cells -----------------------------------------------------------------
    specs: Dict[str, dict] = {}
    run_keys: Dict[Tuple[int, str], list] = {}
    ref_keys: Dict[int, str] = {}
    expected: Dict[int, Dict[str, str]] = {}  # T -> fingerprint of the problem and code
    for T in hs:
        dt_T = _dt_for(T, scaling, dt, total_time)
        # built here too (symbolic, cheap; workers build their own): a factory that fails
        # fails before any compute, and stored cells are checked against its content
        expected[T] = _get_problem(make_problem, T, dt_T, pkw, fresh=True)[1]
        base = {"problem": pid, "problem_kwargs": pkw, "horizon": T, "dt": dt_T}
        if reference == "ipopt":
            spec = dict(base, kind="reference", method="ipopt",
                        ipopt_options=dict(ipopt_options or {}))
            k = cell_key(spec)
            specs[k] = spec
            ref_keys[T] = k
        for label, st in meths.items():
            skw = {k: v for k, v in st.items() if k not in ("method", "steps")}
            keys = []
            for s in st["steps"]:
                spec = dict(base, kind="run", method=st["method"], step=s, iters=int(iters),
                            solve_kwargs=skw)
                k = cell_key(spec)  # raises TypeError on non-JSON-like settings
                specs[k] = spec
                keys.append(k)
            run_keys[(T, label)] = keys

    store = CellStore(out) if out is not None else None
    records: Dict[str, dict] = {}
    n_stale = n_invalid = 0
    if store is not None:
        store.clean_temporaries()
        if not force:
            records, n_stale, n_invalid = _load_cells(store, specs, expected)
    n_loaded = len(records)
    pending = [k for k in specs if k not in records]
    # Alternate horizons in submission order: when each T has its own stage (fixed-time
    # scaling changes dt), the first cells of different T compile their kernels on different
    # workers at once, and later cells load them from the disk cache.
    rank: Dict[int, int] = {}
    order = {}
    for k in pending:
        T = specs[k]["horizon"]
        order[k] = (rank.get(T, 0), hs.index(T))
        rank[T] = rank.get(T, 0) + 1
    pending.sort(key=order.__getitem__)

    # -- run what is missing --------------------------------------------------------
    if pending:
        with terminate_on_signal():  # SIGTERM stops the study the way Ctrl-C does
            _run_cells(pending, specs, expected, make_problem, executor, workers, store,
                       records, progress, n_loaded)

    # -- assemble -------------------------------------------------------------------
    grids = {}
    for (T, label), keys in run_keys.items():
        recs = tuple(_record_to_step(records[k]) for k in keys)
        win = choose(recs, criterion)
        st = meths[label]
        grids[(T, label)] = GridResult(method=label, criterion=criterion, records=recs,
                                       step=None if win is None else win.step, winner=win,
                                       settings={**st, "iters": int(iters)})
    refs = {T: (_record_to_step(records[ref_keys[T]]) if T in ref_keys else None) for T in hs}
    dts = {}
    for T in hs:
        k = ref_keys.get(T) or run_keys[(T, next(iter(meths)))][0]
        dts[T] = float(records[k]["dt"])
    settings = {"problem": pid, "problem_kwargs": pkw, "scaling": scaling, "dt": dt,
                "total_time": total_time, "iters": int(iters), "criterion": criterion,
                "reference": reference,
                "methods": {lab: {**st, "steps": list(st["steps"])} for lab, st in meths.items()}}
    res = SweepResult(horizons=hs, labels=tuple(meths), grids=grids, references=refs, dts=dts,
                      settings=settings, computed=len(pending), loaded=n_loaded,
                      stale=n_stale, invalid=n_invalid,
                      seconds=time.perf_counter() - t_start, out=out)
    if out is not None:
        write_json_atomic(os.path.join(out, "sweep.json"),
                          {"settings": settings, "horizons": list(hs), "labels": list(meths),
                           "cells": sorted(specs), "fingerprints": {str(T): expected[T] for T in hs},
                           "counts": {"computed": len(pending), "loaded": n_loaded,
                                      "stale": n_stale, "invalid": n_invalid}})
        if report:
            res.write_report(out)
    return res
