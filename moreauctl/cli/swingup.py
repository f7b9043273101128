"""``moreauctl swingup``: solve one swing-up with one method, print the costs, write JSON/plot.

::

    moreauctl swingup --horizon 100 --method moreau-gd --step 128 --gamma 0.5 --iters 50 \\
        --json - --plot out.png
    moreauctl swingup --method auglag --step 1024 --gamma 0.5 --kappa 0.1
    moreauctl swingup --method proxprop --step 0.004 --tau 1
    moreauctl swingup --plant acrobot --horizon 50 --method ddp --animate acrobot.gif

With ``--json -`` the result goes to stdout (the same field names as
:class:`moreauctl.SolveResult`, plus the settings used) and the log to stderr.
"""
from __future__ import annotations

import argparse
import sys

from .. import models
from ..plots import animate, plot_solve
from ..solve import METHODS, solve
from .args import (add_oracle_args, add_problem_args, add_quiet, check_output_file,
                   cost_table, make_problem, nonnegative_int, oracle_options, positive_float,
                   report_write_error, write_json_or_stdout)

__all__ = ["add_parser", "run", "cost_table"]


def run(args: argparse.Namespace) -> int:
    """Check the output paths, solve, print, write; returns the exit code (1 when a file
    could not be written after all: the result is then kept on stdout)."""
    if args.json and args.json != "-":
        check_output_file(args.json, "--json")
    if args.plot:
        check_output_file(args.plot, "--plot")
    if args.animate:
        check_output_file(args.animate, "--animate")
    prob = make_problem(args)
    geometry = None
    if args.animate:  # before any compute: a plant without a drawing is a usage error
        geometry = models.GEOMETRY.get(prob.plant.name)
        if geometry is None:
            raise SystemExit(f"moreauctl swingup: error: --animate: no drawing for plant "
                             f"{prob.plant.name!r}; plants with one: {sorted(models.GEOMETRY)}")
    res = solve(prob, method=args.method, step=args.step, iters=args.iters, gamma=args.gamma,
                line_search=args.line_search, stage_weights=args.stage_weights,
                oracle_options=oracle_options(args) or None, verbose=not args.quiet)
    out = sys.stderr if args.json == "-" else sys.stdout
    if not args.quiet or args.json != "-":
        print(f"{prob!r}", file=out)
        print(f"method={args.method} step={args.step} gamma={args.gamma} "
              f"line_search={args.line_search}", file=out)
        print(cost_table(res.costs), file=out)
        print(f"status {res.status}: {res.message}; success={res.success}; "
              f"final cost {res.fun:.6g}; best cost {res.best_cost:.6g}", file=out)
    ok = True
    if args.json:
        ok = write_json_or_stdout(res.to_dict(), args.json)
    if args.plot:
        try:
            plot_solve(res, prob, args.plot)
            print(f"wrote {args.plot}", file=out)
        except OSError as e:
            report_write_error("--plot", args.plot, e)
            ok = False
    if args.animate:
        try:
            n = animate(res.states, geometry, args.animate, prob.dt,
                        title=f"{prob.name} {args.method}", trail=30)
            print(f"wrote {args.animate} ({n} frames)", file=out)
        except OSError as e:
            report_write_error("--animate", args.animate, e)
            ok = False
    return 0 if ok else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``swingup`` sub-command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("swingup", help="solve a swing-up with one method",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_problem_args(p)
    p.add_argument("--method", default="gd", choices=list(METHODS))
    p.add_argument("--step", type=positive_float, default=0.5,
                   help="step size (alpha for moreau-gd, auglag, prox-target-prop and "
                        "target-prop; tau_theta for proxprop; tau_w for penalized)")
    p.add_argument("--gamma", type=positive_float, default=None,
                   help="Moreau gamma (or the ratio of --stage-weights geometric)")
    p.add_argument("--iters", type=nonnegative_int, default=50)
    p.add_argument("--line-search", default=None, choices=["armijo"])
    p.add_argument("--stage-weights", default=None, choices=["geometric"])
    add_oracle_args(p)
    p.add_argument("--json", default=None, metavar="PATH|-", help="write the result as JSON")
    p.add_argument("--plot", default=None, metavar="PATH", help="write a figure (PNG/PDF)")
    p.add_argument("--animate", default=None, metavar="PATH.gif",
                   help="write an animation of the solution (GIF)")
    add_quiet(p)
    p.set_defaults(func=run)
    return p
