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
import os
import re
import sys

from .cli import _positive_float

__all__ = ["add_sweep_parser", "cmd_sweep", "parse_steps", "allow_negative_ranges",
           "add_study_arguments"]


def _int_list(s):
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {s!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected integers >= 1; got {s!r}")
    return vals


def _exponent_range(s):
    lo, sep, hi = s.partition(":")
    try:
        lo, hi = int(lo), int(hi)
    except ValueError:
        raise ValueError(f"a step grid is 'LO:HI' (powers of two 2^LO..2^HI); got {s!r}") from None
    if not sep or hi < lo:
        raise ValueError(f"a step grid is 'LO:HI' with LO <= HI; got {s!r}")
    return lo, hi


def parse_steps(s: str):
    """``"LO:HI"`` -> ``(lo, hi)`` for every method; ``"gd=-10:1,moreau-gd=0:11"`` ->
    ``{label: (lo, hi)}``. Steps are ``2^LO .. 2^HI``."""
    if "=" not in s:
        return _exponent_range(s)
    out = {}
    for part in s.split(","):
        label, eq, rng = part.partition("=")
        if not eq or not label.strip():
            raise ValueError(f"per-method step grids are 'LABEL=LO:HI,...'; got {s!r}")
        out[label.strip()] = _exponent_range(rng.strip())
    return out


def _steps_arg(s):
    try:
        return parse_steps(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def allow_negative_ranges(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``parser`` read values such as ``-10:10`` (a step grid) as values, not options.

    argparse treats any argument starting with ``-`` as an option unless it looks like a
    negative number; this widens its "negative number" pattern to ``-LO:HI`` ranges
    (``--steps=-10:10`` works with any parser).
    """
    parser._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+:-?\d+$")
    return parser


def _range_arg(s):
    try:
        return _exponent_range(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_study_arguments(parser: argparse.ArgumentParser, *, horizons: str, steps: str,
                        horizons_help: str = "comma-separated horizons",
                        steps_help: str = "step grid 2^LO..2^HI") -> argparse.ArgumentParser:
    """Options shared by the study scripts in ``demos/``, validated like ``moreauctl sweep``'s:
    ``--horizons`` (-> list of int), ``--steps LO:HI`` (-> ``(lo, hi)``), ``--workers``,
    ``--executor`` (process or serial; default: the study's own) and ``--quiet``."""
    parser.add_argument("--horizons", type=_int_list, default=_int_list(horizons),
                        help=f"{horizons_help} (default {horizons})")
    parser.add_argument("--steps", type=_range_arg, default=_exponent_range(steps),
                        help=f"{steps_help} (default {steps})")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--executor", default=None, choices=["process", "serial"])
    parser.add_argument("--quiet", action="store_true")
    return allow_negative_ranges(parser)


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to an argparse ``subparsers`` object."""
    from . import models
    from .studies.sweep import DEFAULT_METHODS, METHOD_PRESETS
    p = subparsers.add_parser(
        "sweep", help="horizon sweep: grid-search each method's step per horizon, vs IPOPT",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plant", default="pendulum", choices=sorted(models.MODELS))
    p.add_argument("--horizons", type=_int_list, default=[50, 100, 200, 400],
                   help="comma-separated horizons T (default 50,100,200,400)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated presets among {sorted(METHOD_PRESETS)} "
                        f"(default {','.join(DEFAULT_METHODS)})")
    p.add_argument("--iters", type=int, default=50, help="iterations per run (default 50)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dt", type=_positive_float, default=None,
                   help="fixed time step: longer T = longer physical time (default 0.1 for "
                        "the pendulum: the model's default)")
    g.add_argument("--total-time", type=_positive_float, default=None,
                   help="fixed physical time: dt = total_time / T (finer as T grows)")
    p.add_argument("--scheme", default=None, help="euler | heun | rk4 (default: the model's)")
    p.add_argument("--steps", type=_steps_arg, default=None,
                   help="step grid as powers of two, LO:HI for all methods or "
                        "LABEL=LO:HI,... per method (default -10:10)")
    p.add_argument("--criterion", default="best", choices=["best", "final", "auc"],
                   help="how each grid picks its step (default: best cost reached)")
    p.add_argument("--out", default="results/sweep", help="study directory (default results/sweep)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--executor", default="process", choices=["process", "dask", "serial"],
                   help="where cells run; dask: a LocalCluster of --workers processes, or the "
                        "scheduler at --dask-address")
    p.add_argument("--dask-address", default=None, help="address of a running Dask scheduler")
    p.add_argument("--force", action="store_true", help="recompute finished cells")
    p.add_argument("--no-reference", action="store_true", help="skip the IPOPT reference optimum")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no table")
    p.set_defaults(func=cmd_sweep)
    return allow_negative_ranges(p)


def _methods(args):
    from .studies.grid import powers_of_two
    from .studies.sweep import METHOD_PRESETS
    labels = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in labels:
        if m not in METHOD_PRESETS:
            raise ValueError(f"unknown method {m!r}; choose among {sorted(METHOD_PRESETS)}")
    methods = {m: dict(METHOD_PRESETS[m]) for m in labels}
    if isinstance(args.steps, tuple):
        for st in methods.values():
            st["steps"] = powers_of_two(*args.steps)
    elif isinstance(args.steps, dict):
        unknown = set(args.steps) - set(labels)
        if unknown:
            raise ValueError(f"--steps names {sorted(unknown)}, which are not in --methods {labels}")
        for lab, rng in args.steps.items():
            methods[lab]["steps"] = powers_of_two(*rng)
    return methods


def cmd_sweep(args) -> int:
    from .studies.sweep import horizon_sweep
    methods = _methods(args)
    if args.iters < 0:
        raise ValueError(f"--iters must be >= 0; got {args.iters}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1; got {args.workers}")
    kw = {}
    if args.total_time is not None:
        kw.update(scaling="fixed-time", total_time=args.total_time, dt=None)
    else:
        kw.update(scaling="fixed-dt", dt=args.dt)
    pkw = {"scheme": args.scheme} if args.scheme else None
    client = cluster = None
    executor = None if args.executor == "process" else "serial"
    if args.executor == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--executor dask needs dask.distributed: pip install "
                             "'moreauctl[dask]'") from None
        if args.dask_address:
            client = Client(args.dask_address)
        else:
            cluster = LocalCluster(n_workers=args.workers or os.cpu_count() or 1,
                                   threads_per_worker=1, processes=True)
            client = Client(cluster)
        executor = client.get_executor()
    try:
        res = horizon_sweep(args.plant, args.horizons, methods, iters=args.iters,
                            problem_kwargs=pkw, criterion=args.criterion, executor=executor,
                            workers=args.workers, out=args.out, force=args.force,
                            progress=not args.quiet,
                            reference=None if args.no_reference else "ipopt", **kw)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if not args.quiet:
        print(res.to_markdown())
        print(f"{res.computed} cells computed, {res.loaded} loaded from {args.out}/cells "
              f"in {res.seconds:.1f} s; wrote summary.csv, summary.md and figures to {args.out}",
              file=sys.stderr)
    return 0
