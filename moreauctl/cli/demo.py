"""``moreauctl demo``: the main job, GD vs Moreau GD on the paper's swing-up (``make demo``).

Runs :func:`moreauctl.demo.run_demo`: a step grid per method and horizon, the table on
stdout, and ``table.md``, ``results.json`` and ``fig3.png`` under ``--out``.
"""
from __future__ import annotations

import argparse

from ..demo import compute, write_outputs
from .args import add_quiet, check_output_dir, int_list, nonnegative_int

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Check ``--out``, run the demo; returns the exit code (1 when a file could not be
    written after all: the results JSON is then on stdout)."""
    check_output_dir(args.out, "--out")
    best, table = compute(args.horizons, args.iters, verbose=not args.quiet)
    return 0 if write_outputs(args.out, best, table) else 1


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
