"""The ``moreauctl`` command line (argparse: standard library, no extra dependency)."""
from __future__ import annotations

import argparse
import json
import math
import sys


from . import models
from .discretize import SCHEMES
from .solve import METHODS, solve


def _write_json(obj, dest: str):
    text = json.dumps(obj, indent=1)
    if dest == "-":
        sys.stdout.write(text + "\n")
        return
    from .studies.store import write_text_atomic  # complete or absent, never half-written
    write_text_atomic(dest, text)


def _positive_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0; got {s!r}")
    return v


def _add_problem_args(p):
    p.add_argument("--plant", default="pendulum", choices=sorted(models.MODELS))
    p.add_argument("--horizon", type=int, default=100, help="number of stages T")
    p.add_argument("--dt", type=_positive_float, default=None,
                   help="time step (default: the model's, 0.1 for the pendulum)")
    p.add_argument("--scheme", default=None, choices=sorted(SCHEMES),
                   help="discretization (default: the model's)")


def _make_problem(args):
    kw = {"horizon": args.horizon}
    if args.dt is not None:
        kw["dt"] = args.dt
    if args.scheme is not None:
        kw["scheme"] = args.scheme
    return models.MODELS[args.plant](**kw)


def _cost_table(costs, every=None) -> str:
    n = len(costs)
    every = every or max(1, (n - 1) // 10)
    rows = ["  iter  cost"]
    for k in list(range(0, n, every)) + ([n - 1] if (n - 1) % every else []):
        rows.append(f"  {k:4d}  {costs[k]:.6g}")
    return "\n".join(rows)


def cmd_swingup(args) -> int:
    prob = _make_problem(args)
    mo = {}
    if args.inner is not None:
        mo["inner"] = args.inner
    if args.alpha_convention is not None:
        mo["alpha_convention"] = args.alpha_convention
    res = solve(prob, method=args.method, step=args.step, iters=args.iters, gamma=args.gamma,
                line_search=args.line_search, stage_weights=args.stage_weights,
                moreau_options=mo or None, verbose=not args.quiet)
    out = sys.stderr if args.json == "-" else sys.stdout
    if not args.quiet or args.json != "-":
        print(f"{prob!r}", file=out)
        print(f"method={args.method} step={args.step} gamma={args.gamma} "
              f"line_search={args.line_search}", file=out)
        print(_cost_table(res.costs), file=out)
        print(f"status {res.status}: {res.message}; success={res.success}; "
              f"final cost {res.fun:.6g}; best cost {res.best_cost:.6g}", file=out)
    if args.json:
        _write_json(res.to_dict(), args.json)
    if args.plot:
        from .plots import plot_solve
        plot_solve(res, prob, args.plot)
        print(f"wrote {args.plot}", file=out)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    run_demo(out=args.out, iters=args.iters, horizons=args.horizons, verbose=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="moreauctl", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("swingup", help="solve a swing-up with one method")
    _add_problem_args(p)
    p.add_argument("--method", default="gd", choices=[m for m in METHODS])
    p.add_argument("--step", type=_positive_float, default=0.5,
                   help="step size (alpha for moreau-gd)")
    p.add_argument("--gamma", type=_positive_float, default=None,
                   help="Moreau gamma (or the ratio of --stage-weights geometric)")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--line-search", default=None, choices=["armijo"])
    p.add_argument("--stage-weights", default=None, choices=["geometric"])
    p.add_argument("--inner", default=None, choices=["paper", "gd", "newton"],
                   help="inner algorithm of the Moreau prox subproblems")
    p.add_argument("--alpha-convention", default=None, choices=["eq52", "text"])
    p.add_argument("--json", default=None, metavar="PATH|-", help="write the result as JSON")
    p.add_argument("--plot", default=None, metavar="PATH", help="write a figure (PNG/PDF)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_swingup)

    p = sub.add_parser("demo", help="the main job: GD vs Moreau GD on the paper's swing-up")
    p.add_argument("--out", default="results/demo")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--horizons", type=lambda s: [int(v) for v in s.split(",")], default=[50, 100])
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    from .cli_sweep import add_sweep_parser; add_sweep_parser(sub)  # noqa: E702 (owned by cli_sweep.py)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as e:
        # Bad settings are the user's to fix: one clear line, no traceback.
        print(f"moreauctl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
