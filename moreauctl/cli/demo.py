"""``moreauctl demo``: the main job, GD vs Moreau GD on the paper's swing-up (``make demo``).

Runs :func:`moreauctl.demo.run_demo`: a step grid per method and horizon, the table on
stdout, and ``table.md``, ``results.json`` and ``fig3.png`` under ``--out``.
"""
from __future__ import annotations

import argparse

from ..demo import run_demo
from .args import add_quiet, int_list, nonnegative_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    run_demo(out=args.out, iters=args.iters, horizons=args.horizons, verbose=not args.quiet)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("demo", help="the main job: GD vs Moreau GD on the paper's swing-up",
                              description=__doc__)
    p.add_argument("--out", default="results/demo")
    p.add_argument("--iters", type=nonnegative_int, default=50)
    p.add_argument("--horizons", type=int_list, default=[50, 100])
    add_quiet(p, help="no per-grid progress lines")
    p.set_defaults(func=run)
    return p
