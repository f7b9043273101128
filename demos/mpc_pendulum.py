"""Receding-horizon swing-up of the pendulum (model predictive control with DDP).

Every ``dt`` the controller re-solves the running-cost swing-up of issue 12 over the next
``--horizon`` steps from the measured state, warm-started from the shifted previous plan,
and applies the first control; torques are bounded by ``--umax``. The closed loop swings the
pendulum up and holds it inverted.

    python demos/mpc_pendulum.py --out results/mpc

Writes ``mpc.png`` (closed-loop states and controls, a few predicted plans, iterations and
milliseconds per solve) and ``mpc.json`` (the MPCResult, field by field).
"""
from __future__ import annotations

import argparse
import os
import sys

import moreauctl as mc
from moreauctl import models
from moreauctl.cli.args import add_quiet, nonnegative_int, positive_float, positive_int, write_json
from moreauctl.plots import plot_mpc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="results/mpc")
    ap.add_argument("--horizon", type=positive_int, default=60, help="prediction stages H")
    ap.add_argument("--dt", type=positive_float, default=0.05, help="control period")
    ap.add_argument("--steps", type=positive_int, default=120, help="closed-loop periods N >= H")
    ap.add_argument("--umax", type=positive_float, default=3.0, help="torque bound |u| <= umax")
    ap.add_argument("--method", default="ddp", choices=sorted(mc.METHODS))
    ap.add_argument("--iters", type=nonnegative_int, default=50, help="iterations per solve")
    add_quiet(ap)
    args = ap.parse_args(argv)
    # dt a run-time input of the kernels: any --dt reuses the compiled module
    prob = models.pendulum_swingup_running(horizon=args.horizon, dt=args.dt,
                                           control_bounds=([-args.umax], [args.umax]),
                                           runtime_params=True)
    res = mc.mpc(prob, args.steps, method=args.method, iters=args.iters, keep_plans=True,
                 verbose=not args.quiet)
    os.makedirs(args.out, exist_ok=True)
    plot_mpc(res, prob, os.path.join(args.out, "mpc.png"))
    write_json(res.to_dict(), os.path.join(args.out, "mpc.json"))
    x = res.states[-1]
    print(f"{res.message}\nclosed-loop cost {res.cost:.6g}; final state theta = {x[0]:.6f}, "
          f"omega = {x[1]:.3g}; iterations per solve: first {res.iterations[0]}, median "
          f"{int(sorted(res.iterations)[len(res.iterations) // 2])}; wrote {args.out}/mpc.png")
    return 0 if res.success else 1


if __name__ == "__main__":
    sys.exit(main())
