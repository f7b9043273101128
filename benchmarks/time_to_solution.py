"""Time to solution on long horizons (issue 12, item 7): seconds until the gap to the best
known optimum is <= 1e-2 and <= 1e-3, per method, horizon and plant.

Problems (fixed total time, so T only refines the discretization):

- ``pendulum``: the running-cost swing-up of issue 12 (``models.pendulum_swingup_running``:
  RK4, 5 s, ``(theta - pi)^2 + 0.1 omega^2 + 1e-2 int u^2``), T = 1e3 ... 1e6;
- ``cartpole``: the cart-pole swing-up with a running cost (RK4, 5 s, ``theta^2 + 0.1 p^2 +
  0.1 (v^2 + omega^2)`` at the end, ``1e-3 int F^2``), T = 1e3 ... 1e5.

Methods: IPOPT (T <= ``--ipopt-max-T``: it fails at T = 1e5 after minutes), iLQR, DDP,
L-BFGS (``"lbfgs"``), Adam, GD with Armijo backtracking, Moreau GD with gamma per unit time
(``gamma_t = gamma_u ** dt``: the same weight per second at every T), and the user's script
of issue 12: scipy's L-BFGS-B called by hand on ``mc.objective``/``mc.gradient`` with scipy's
default options but tight stopping tolerances (``user-lbfgsb``), the baseline of the speed
target; ``user-lbfgsb-1blas`` is the same script with OpenBLAS limited to one thread (on
this loaded 2-core machine its threads make each L-BFGS-B iteration about 10x slower).

Each (plant, T, method) cell runs in a fresh process (memory high-water mark per cell),
after a warm-up solve at T = 10 with the same ``dt`` so the timings exclude compilation;
cells are stored as JSON in ``--out/cells`` and skipped when present (the study resumes).

Gaps: ``normalized = (c - c*) / (c_0 - c*)`` with ``c*`` the best cost any method reached at
that (plant, T); for the pendulum also ``relative to IPOPT T=1e4 = (c - c*_1e4) / c*_1e4``
with IPOPT's T = 1e4 optimum (the acceptance target: <= 1e-3 within 2 s at T = 1e5 and
within 20 s at T = 1e6). Memory: peak resident growth of the solve over the trajectory
arrays (controls and states).

    python benchmarks/time_to_solution.py --out benchmarks/tts
    python benchmarks/time_to_solution.py --quick          # T = 1e3, 1e4; a few minutes

Writes ``--out/results.json``, ``--out/results.md`` and ``--out/gap_vs_time.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: method label -> (solve method, keyword arguments); first-order steps were picked on a
#: grid of powers of two at T = 1e3 (pendulum) and kept for every T (the problems have a
#: fixed total time, so the gradient's scale per unit time does not change with T)
METHODS = {
    "ipopt": ("ipopt", {}),
    "ilqr": ("ilqr", {"iters": 300}),
    "ddp": ("ddp", {"iters": 300}),
    "lbfgs": ("lbfgs", {"iters": 2000}),
    "user-lbfgsb": (None, {"iters": 2000}),
    "user-lbfgsb-1blas": (None, {"iters": 2000, "blas_threads": 1}),
    "adam": ("adam", {"iters": 300, "step": 0.5}),
    "gd-armijo": ("gd", {"iters": 300, "step": 1.0, "line_search": "armijo"}),
    "moreau-gd": ("moreau-gd", {"iters": 300, "step": 4.0, "gamma_per_second": 0.5}),
}
PLANTS = {"pendulum": (1e3, 1e4, 1e5, 1e6), "cartpole": (1e3, 1e4, 1e5)}


def make_problem(plant: str, T: int):
    from moreauctl import models
    import moreauctl as mc
    import casadi as ca
    if plant == "pendulum":
        return models.pendulum_swingup_running(horizon=T)
    base = models.cartpole()
    return mc.ControlProblem(
        base, horizon=T, dt=5.0 / T, x0=[0.0, math.pi, 0.0, 0.0],
        terminal_cost=lambda x: x[1] ** 2 + 0.1 * x[0] ** 2 + 0.1 * (x[2] ** 2 + x[3] ** 2),
        stage_cost=lambda x, u: 1e-3 * u[0] ** 2, scheme="rk4", name=f"cartpole-running-T{T}")


def user_lbfgsb(problem, iters):
    """Issue 12's script: scipy's L-BFGS-B with its defaults on the public API."""
    import numpy as np
    import scipy.optimize as so
    import moreauctl as mc
    T, nw = problem.horizon, problem.nw
    t0 = time.perf_counter()
    costs, times = [mc.objective(problem)], [0.0]

    def f(v):
        return mc.objective(problem, v.reshape(T, nw))

    def g(v):
        return mc.gradient(problem, v.reshape(T, nw)).ravel()

    def cb(xk):
        costs.append(f(xk))              # the script's own bookkeeping (one more rollout)
        times.append(time.perf_counter() - t0)

    # scipy's defaults but for the stopping tolerances (its ftol = 2.2e-9 stops at a 1e-1
    # gap at T = 1e4), and no control of BLAS threads: what a user writes
    so.minimize(f, np.zeros(T * nw), jac=g, method="L-BFGS-B", callback=cb,
                options={"maxiter": iters, "ftol": 1e-15, "gtol": 1e-10})
    return costs, times


def run_cell(plant: str, T: int, label: str) -> dict:
    """One measurement in this process (called with ``--cell``)."""
    sys.path.insert(0, HERE)
    from worker import _reset_peak, _status  # the suite's memory probes
    import numpy as np
    import moreauctl as mc

    method, kw = METHODS[label]
    kw = dict(kw)
    prob = make_problem(plant, T)
    gamma_u = kw.pop("gamma_per_second", None)
    if gamma_u is not None:
        kw["gamma"] = gamma_u ** prob.dt

    def solve(p):
        if method is None and "blas_threads" in kw:
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=kw["blas_threads"], user_api="blas"):
                return user_lbfgsb(p, kw["iters"])
        if method is None:
            return user_lbfgsb(p, kw["iters"])
        kwargs = dict(kw)
        iters = kwargs.pop("iters", None)
        r = mc.solve(p, method, iters=iters, verbose=False, **kwargs)
        return list(map(float, r.costs)), list(map(float, r.history.times))

    solve(prob.with_horizon(10))   # compile (same dt: same kernels) and warm the caches
    prob.chain                     # build this T's chain before the clock starts
    traj_mib = ((T + 1) * prob.nx + T * prob.nw) * 8 / 2**20
    _reset_peak()
    base = _status("VmRSS")
    t0 = time.perf_counter()
    costs, times = solve(prob)
    wall = time.perf_counter() - t0
    peak = _status("VmHWM") - base
    return {"plant": plant, "T": T, "method": label, "costs": costs, "times": times,
            "wall_s": wall, "peak_mib": peak, "traj_mib": traj_mib,
            "load": os.getloadavg()[0]}


def first_time(costs, times, cstar, c0, tol, scale=None):
    """Seconds until the gap is <= tol (None if never); gap normalized by ``c0 - c*`` or by
    ``scale``."""
    den = (c0 - cstar) if scale is None else scale
    for c, t in zip(costs, times):
        if math.isfinite(c) and (c - cstar) / den <= tol:
            return t
    return None


def _fmt(t):
    return "" if t is None else f"{t:.3g}"


def summarize(cells, ipopt_1e4):
    """Rows of the table and the best-known optimum per (plant, T)."""
    stopped = [c for c in cells if "timeout_s" in c]
    cells = [c for c in cells if "timeout_s" not in c]
    best = {}
    for c in cells:
        key = (c["plant"], c["T"])
        fin = [x for x in c["costs"] if math.isfinite(x)]
        if fin:
            best[key] = min(best.get(key, math.inf), min(fin))
    rows = []
    for c in cells:
        key = (c["plant"], c["T"])
        cs, c0 = best[key], c["costs"][0]
        row = {"plant": c["plant"], "T": c["T"], "method": c["method"],
               "final": c["costs"][-1], "t_1e-2": first_time(c["costs"], c["times"], cs, c0, 1e-2),
               "t_1e-3": first_time(c["costs"], c["times"], cs, c0, 1e-3),
               "wall_s": c["wall_s"], "mem_x_traj": c["peak_mib"] / c["traj_mib"],
               "load": c["load"]}
        if c["plant"] == "pendulum" and ipopt_1e4 is not None:
            row["t_rel1e-3_vs_ipopt1e4"] = first_time(c["costs"], c["times"], ipopt_1e4, c0,
                                                      1e-3, scale=ipopt_1e4)
        rows.append(row)
    for c in stopped:
        rows.append({"plant": c["plant"], "T": c["T"], "method": c["method"],
                     "final": None, "t_1e-2": None, "t_1e-3": None,
                     "wall_s": f"stopped at {c['timeout_s']:g} s"})
    return rows, best


def write_report(rows, best, ipopt_1e4, out):
    lines = ["# Time to solution (issue 12, item 7)", "",
             "Seconds until the normalized gap `(c - c*) / (c_0 - c*)` is <= 1e-2 and 1e-3, "
             "`c*` the best cost any method reached at that (plant, T); compilation excluded "
             "(a warm-up solve at T = 10 with the same dt). Pendulum: also the seconds until "
             f"`(c - c*_1e4) / c*_1e4 <= 1e-3` with IPOPT's T = 1e4 optimum c*_1e4 = "
             f"{ipopt_1e4!r} (the acceptance target). mem: peak resident growth of the solve "
             "/ trajectory arrays. load: 1-min load average of this 2-core machine at the "
             "cell's end (other jobs were running).", ""]
    cols = ["plant", "T", "method", "final", "t_1e-2", "t_1e-3", "t_rel1e-3_vs_ipopt1e4",
            "wall_s", "mem_x_traj", "load"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in sorted(rows, key=lambda r: (r["plant"], r["T"], r["method"])):
        vals = []
        for k in cols:
            x = r.get(k)
            if isinstance(x, float):
                vals.append(f"{x:.10g}" if k == "final" else _fmt(x))
            else:
                vals.append("" if x is None else str(x))
        lines.append("| " + " | ".join(vals) + " |")
    lines += ["", "Best known optimum per (plant, T): " + ", ".join(
        f"{p} T={T}: {c:.12g}" for (p, T), c in sorted(best.items())), ""]
    text = "\n".join(lines)
    from moreauctl._io import write_text_atomic
    write_text_atomic(os.path.join(out, "results.md"), text)
    return text


def plot(cells, best, out):
    """Normalized gap against wall time: one row per plant, one panel per horizon."""
    import numpy as np
    from moreauctl.plots import _plt, save_figure
    plt = _plt()
    cells = [c for c in cells if "timeout_s" not in c]
    plants = sorted({c["plant"] for c in cells}, reverse=True)
    ncol = max(len({c["T"] for c in cells if c["plant"] == p}) for p in plants)
    fig, axes = plt.subplots(len(plants), ncol, figsize=(3.6 * ncol, 3.2 * len(plants)),
                             squeeze=False)
    labels = sorted({c["method"] for c in cells})
    colors = {m: f"C{i}" for i, m in enumerate(labels)}
    for row, plant in zip(axes, plants):
        Ts = sorted({c["T"] for c in cells if c["plant"] == plant})
        for ax in row[len(Ts):]:
            ax.set_visible(False)
        for ax, T in zip(row, Ts):
            key = (plant, T)
            for c in (c for c in cells if (c["plant"], c["T"]) == key):
                cs, c0 = best[key], c["costs"][0]
                gap = np.maximum((np.asarray(c["costs"]) - cs) / (c0 - cs), 1e-12)
                t = np.asarray(c["times"])
                if c["method"] == "ipopt":   # one point: its optimum when it returns
                    ax.loglog(t[-1:], gap[-1:], "o", color=colors["ipopt"], label="ipopt")
                else:
                    ax.loglog(t[1:], gap[1:], lw=1.1, color=colors[c["method"]],
                              label=c["method"])
            for tol in (1e-2, 1e-3):
                ax.axhline(tol, color="k", lw=0.5, ls=":")
            ax.set_title(f"{plant}, T = {T:.0e}", fontsize=9)
            ax.set_xlabel("wall time (s)")
            ax.set_ylabel("normalized gap")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(names), fontsize=8,
               bbox_to_anchor=(0.5, 1.02))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save_figure(fig, os.path.join(out, "gap_vs_time.png"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "tts"))
    ap.add_argument("--quick", action="store_true", help="T = 1e3 and 1e4 only")
    ap.add_argument("--plants", default="pendulum,cartpole")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--max-T", type=float, default=1e6)
    ap.add_argument("--ipopt-max-T", type=float, default=1e4)
    ap.add_argument("--first-order-max-T", type=float, default=1e6)
    ap.add_argument("--cell-timeout", type=float, default=300.0,
                    help="seconds after which a cell is stopped and reported as such")
    ap.add_argument("--cell", nargs=3, metavar=("PLANT", "T", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(float(args.cell[1])), args.cell[2])))
        return 0
    cells_dir = os.path.join(args.out, "cells")
    os.makedirs(cells_dir, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        ap.error(f"unknown methods {sorted(unknown)}; choose among {list(METHODS)}")
    plants = [p for p in args.plants.split(",") if p]
    from moreauctl._io import write_json_atomic
    cells = []
    for plant in plants:
        if plant not in PLANTS:
            ap.error(f"unknown plant {plant!r}; choose among {list(PLANTS)}")
        for T in PLANTS[plant]:
            if T > args.max_T or (args.quick and T > 1e4):
                continue
            for m in methods:
                if m == "ipopt" and T > args.ipopt_max_T:
                    continue
                if m in ("adam", "gd-armijo", "moreau-gd") and T > args.first_order_max_T:
                    continue
                path = os.path.join(cells_dir, f"{plant}_T{int(T)}_{m}.json")
                if not os.path.exists(path):
                    t0 = time.perf_counter()
                    try:
                        proc = subprocess.run([sys.executable, __file__, "--cell", plant,
                                               str(int(T)), m], capture_output=True, text=True,
                                              timeout=args.cell_timeout)
                    except subprocess.TimeoutExpired:
                        write_json_atomic(path, {"plant": plant, "T": int(T), "method": m,
                                                 "timeout_s": args.cell_timeout})
                        print(f"{plant} T={T:.0e} {m}: stopped after {args.cell_timeout} s",
                              file=sys.stderr, flush=True)
                        proc = None
                    if proc is not None and proc.returncode != 0:
                        print(f"{plant} T={T:.0e} {m}: FAILED\n{proc.stderr[-2000:]}",
                              file=sys.stderr)
                        continue
                    if proc is not None:
                        write_json_atomic(path, json.loads(proc.stdout.strip().splitlines()[-1]),
                                          indent=None, separators=(",", ":"))
                        print(f"{plant} T={T:.0e} {m}: {time.perf_counter() - t0:.1f} s",
                              file=sys.stderr, flush=True)
                with open(path) as f:
                    cells.append(json.load(f))
    ipopt = [c for c in cells if c["plant"] == "pendulum" and c["T"] == 10000
             and c["method"] == "ipopt"]
    ipopt_1e4 = ipopt[0]["costs"][-1] if ipopt else None
    rows, best = summarize(cells, ipopt_1e4)
    write_json_atomic(os.path.join(args.out, "results.json"),
                      {"rows": rows, "best": {f"{p} T={T}": c for (p, T), c in best.items()},
                       "ipopt_T1e4": ipopt_1e4})
    print(write_report(rows, best, ipopt_1e4, args.out))
    plot(cells, best, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
