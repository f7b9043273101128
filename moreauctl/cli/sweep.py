"""``moreauctl sweep``: a horizon sweep from the command line.

::

    moreauctl sweep --plant pendulum --horizons 50,100,200,400 --methods gd,moreau-gd \\
        --iters 50 [--dt 0.1 | --total-time 5] --out DIR [--workers N] [--force] \\
        [--executor process|dask|serial] [--steps -10:10 | --steps gd=-10:1,moreau-gd=0:11]

Finished cells are kept under ``DIR/cells`` and reused by the next run with the same
settings (``--force`` recomputes); the CSV, markdown table and figures go to ``DIR``.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, Dict

from .._validate import choice
from ..studies.executors import dask_executor
from ..studies.grid import powers_of_two
from ..studies.metrics import CRITERIA
from ..studies.sweep import DEFAULT_METHODS, METHOD_PRESETS, horizon_sweep
from .args import (add_plant_arg, add_quiet, add_scheme_arg, allow_negative_ranges,
                   check_output_dir, int_list, nonnegative_int, positive_float, positive_int,
                   steps_arg)

__all__ = ["add_parser", "run", "method_settings", "print_summary"]


def method_settings(labels_text: str, steps) -> Dict[str, Dict[str, Any]]:
    """``--methods`` and ``--steps`` -> ``{label: settings}`` for :func:`~moreauctl.studies.horizon_sweep`.

    Parameters
    ----------
    labels_text : str
        Comma-separated presets of :data:`~moreauctl.studies.METHOD_PRESETS`.
    steps : None, ``(lo, hi)`` or ``{label: (lo, hi)}``
        From :func:`~moreauctl.cli.args.parse_steps`; None keeps each preset's grid.
    """
    labels = [choice("method", m.strip(), METHOD_PRESETS)
              for m in labels_text.split(",") if m.strip()]
    methods = {m: dict(METHOD_PRESETS[m]) for m in labels}
    if isinstance(steps, tuple):
        for st in methods.values():
            st["steps"] = powers_of_two(*steps)
    elif isinstance(steps, dict):
        unknown = set(steps) - set(labels)
        if unknown:
            raise ValueError(
                f"--steps names {sorted(unknown)}, which are not in --methods {labels}")
        for lab, rng in steps.items():
            methods[lab]["steps"] = powers_of_two(*rng)
    return methods


def print_summary(res, out: str) -> None:
    """A finished sweep: its markdown table on stdout; on stderr, how many cells were
    computed (and among them how many were stale or unusable on disk) and reused, and
    where the reports went."""
    print(res.to_markdown())
    redone = [f"{n} {what}" for n, what in
              ((res.stale, "stale: stored for another problem or code version"),
               (res.invalid, "from unusable cell files")) if n]
    print(f"{res.computed} cells computed{' (' + '; '.join(redone) + ')' if redone else ''}, "
          f"{res.loaded} loaded from {out}/cells in {res.seconds:.1f} s; wrote summary.csv, "
          f"summary.md and figures to {out}", file=sys.stderr)


def _executor(args):
    """A context yielding what ``horizon_sweep`` takes as ``executor``."""
    if args.executor == "dask":
        return dask_executor(args.dask_address, args.workers)
    return contextlib.nullcontext(None if args.executor == "process" else "serial")


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the sweep and print its table; returns the exit code."""
    check_output_dir(args.out, "--out")
    methods = method_settings(args.methods, args.steps)
    if args.total_time is not None:
        scaling = dict(scaling="fixed-time", total_time=args.total_time, dt=None)
    else:
        scaling = dict(scaling="fixed-dt", dt=args.dt)
    pkw = {"scheme": args.scheme} if args.scheme else None
    with _executor(args) as executor:
        res = horizon_sweep(args.plant, args.horizons, methods, iters=args.iters,
                            problem_kwargs=pkw, criterion=args.criterion, executor=executor,
                            workers=args.workers, out=args.out, force=args.force,
                            progress=not args.quiet,
                            reference=None if args.no_reference else "ipopt", **scaling)
    if not args.quiet:
        print_summary(res, args.out)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "sweep", help="horizon sweep: grid-search each method's step per horizon, vs IPOPT",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_plant_arg(p)
    p.add_argument("--horizons", type=int_list, default=[50, 100, 200, 400],
                   help="comma-separated horizons T (default 50,100,200,400)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated presets among {sorted(METHOD_PRESETS)} "
                        f"(default {','.join(DEFAULT_METHODS)})")
    p.add_argument("--iters", type=nonnegative_int, default=50,
                   help="iterations per run (default 50)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dt", type=positive_float, default=None,
                   help="fixed time step: longer T = longer physical time (default 0.1 for "
                        "the pendulum: the model's default)")
    g.add_argument("--total-time", type=positive_float, default=None,
                   help="fixed physical time: dt = total_time / T (finer as T grows)")
    add_scheme_arg(p)
    p.add_argument("--steps", type=steps_arg, default=None,
                   help="step grid as powers of two, LO:HI for all methods or "
                        "LABEL=LO:HI,... per method (default -10:10)")
    p.add_argument("--criterion", default="best", choices=list(CRITERIA),
                   help="how each grid picks its step (default: best cost reached)")
    p.add_argument("--out", default="results/sweep", help="study directory (default results/sweep)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes (default: one per core)")
    p.add_argument("--executor", default="process", choices=["process", "dask", "serial"],
                   help="where cells run; dask: a LocalCluster of --workers processes, or the "
                        "scheduler at --dask-address")
    p.add_argument("--dask-address", default=None, help="address of a running Dask scheduler")
    p.add_argument("--force", action="store_true", help="recompute finished cells")
    p.add_argument("--no-reference", action="store_true", help="skip the IPOPT reference optimum")
    add_quiet(p, help="no progress bar, no table")
    p.set_defaults(func=run)
    return allow_negative_ranges(p)
