"""moreauctl against its peers: gradient (and Moreau) passes through long nonlinear chains.

Measured in one run, for the pendulum (Euler, 10 s) and the cart-pole (RK4, 5 s) at fixed
total time, T in {1e2, ..., 1e6}:

- time of one objective + gradient (forward + backward) for every tool of ``peers.TOOLS``
  that is installed (skipped with a note otherwise), median over repeats, ratio to
  moreauctl, ns per stage, agreement of the gradient with moreauctl's;
- moreauctl's Moreau direction (``MoreauOracle``, inner="paper") and its ratio to the
  gradient; the forward and backward kernels timed on their own (this reaches into
  ``chain.kernels`` to isolate a pass);
- first-call latency (build + first evaluation) and peak memory, each in a fresh process
  (``worker.py``): moreauctl uncached (empty ``$MOREAUCTL_CACHE``) and cached (warm);
- the dependency-chain floor of one stage (``floor.py``) against achieved ns/stage.

Peers that would take too long are capped and the cap is written into the results: CasADi's
SX graph beyond ``--sx-max-T``, gcc on the generated C beyond ``--c-max-T``, and any cell
whose predicted time (extrapolated linearly from the previous horizon, gcc
super-linearly) exceeds ``--budget`` seconds.

Writes ``results.json`` and ``results.md`` into ``--out`` (default: this directory).

Usage:
    python benchmarks/suite.py                       # full run (tens of minutes)
    python benchmarks/suite.py --quick               # T = 100, 1000; one repeat; seconds
    python benchmarks/suite.py --horizons 1e3,1e5 --plants pendulum --tools moreauctl,jax
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import floor  # noqa: E402
import peers  # noqa: E402

DEFAULT_HORIZONS = "1e2,1e3,1e4,1e5,1e6"
# CasADi builds the SX rollout graph node by node: 3-4 s at 1e5 for the pendulum, 32 s for
# the cart-pole (RK4), growing linearly with the graph's memory; at 1e6 that is minutes and
# gigabytes. gcc's time on the generated C grows faster than linearly (pendulum: 5 s at 1e3,
# 200 s at 1e4; cart-pole: 8 s at 1e2, 155 s at 1e3 on this machine).
DEFAULT_SX_MAX_T = {"pendulum": 100_000, "cartpole": 100_000}
DEFAULT_C_MAX_T = {"pendulum": 10_000, "cartpole": 1_000}


def _source_state():
    """Commit of the tree and a hash of the kernel and oracle sources, so a result says which
    code it measured (and whether that code changed during the run)."""
    import hashlib

    root = os.path.dirname(HERE)
    h = hashlib.sha256()
    for sub in ("moreauctl/_kernels", "moreauctl/oracles", "moreauctl/codegen"):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.endswith(".py"):
                    with open(os.path.join(d, name), "rb") as f:
                        h.update(name.encode() + f.read())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "moreauctl"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    return {"commit": commit, "moreauctl_dirty": bool(dirty), "kernels_sha": h.hexdigest()[:12]}


def _horizons(text):
    return [int(float(s)) for s in text.split(",") if s.strip()]


def _per_plant(text, default):
    """"pendulum:1e4,cartpole:100" or a single number for every plant."""
    if text is None:
        return dict(default)
    if ":" not in text:
        return {k: int(float(text)) for k in default}
    out = dict(default)
    for part in text.split(","):
        k, v = part.split(":")
        out[k.strip()] = int(float(v))
    return out


def timeit(fn, arg, repeats, min_sample_s=0.02, max_inner=2000):
    """Median over ``repeats`` samples of the time of ``fn(arg)``; each sample averages
    enough calls to last ``min_sample_s`` (fast calls are too short for one timer read).
    Returns (median seconds, list of samples, calls per sample)."""
    t = time.perf_counter()
    fn(arg)
    one = time.perf_counter() - t
    inner = int(min(max_inner, max(1, min_sample_s / max(one, 1e-9))))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn(arg)
        samples.append((time.perf_counter() - t) / inner)
    return statistics.median(samples), samples, inner


def rel_diff(a, b):
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# -------------------------------------------------------------------------------------------
# in-process timings


def bench_moreauctl(p, w, repeats):
    ev = peers.build("moreauctl", p, w)
    row = {"tool": "moreauctl", "status": "ok", "build_s": ev.build_s, "first_s": ev.first_s,
           "T": p.horizon}
    row["median_s"], row["samples_s"], row["inner"] = timeit(ev.grad, w, repeats)
    t = time.perf_counter()
    ev.moreau(w)
    row["moreau_first_s"] = time.perf_counter() - t
    row["moreau_s"], row["moreau_samples_s"], _ = timeit(ev.moreau, w, repeats)
    row["moreau_gamma_stage"] = peers.moreau_gamma(p)
    # share of stages whose direction is exactly zero (a costate that underflowed): a
    # sanity check that the Moreau pass did real work on every stage
    row["moreau_zero_rows"] = float(np.mean(np.all(ev.moreau(w)[1] == 0.0, axis=1)))
    # isolate the passes: the raw kernels (private internals, used only for this split),
    # the same ones the oracles run: the fused kernels, with the values the forward pass
    # stores (Jacobian entries or transcendental values, see Chain.stored) when it stores any
    ch = p.chain
    X = np.empty((p.horizon + 1, p.nx))
    G = np.empty_like(w)
    lam0 = np.empty(p.nx)
    k = ch.kernels
    store = bool(getattr(ch, "store_jacobians", False))
    JV = np.empty((p.horizon if store else 0, ch.njv))
    mor = ev.extra["moreau_oracle"]
    if store:
        row["passes"] = f"f_forward_jac + f_backward_gradient_jac (stored: {ch.stored})"
        row["forward_s"], _, _ = timeit(lambda w: k.f_forward_jac(w, ch.x0, X, JV, ch.params), w, repeats)
        row["backward_s"], _, _ = timeit(lambda w: k.f_backward_gradient_jac(w, JV, X, G, lam0, ch.params),
                                         w, repeats)
    else:
        row["passes"] = "f_forward + f_backward_gradient"
        row["forward_s"], _, _ = timeit(lambda w: k.f_forward(w, ch.x0, X, ch.params), w, repeats)
    # the backward pass that re-evaluates each stage's VJP: the cost model of Prop. D.6
    # (one VJP oracle call per stage), against which the Moreau pass's (1 + K) is stated
    row["backward_recompute_s"], _, _ = timeit(
        lambda w: k.f_backward_gradient(w, X, G, lam0, ch.params), w, repeats)
    if not store:
        row["backward_s"] = row["backward_recompute_s"]
    row["moreau_backward_s"], _, _ = timeit(
        lambda w: k.f_backward_moreau_paper(w, X, JV, store, mor.gam_h, mor.gam, mor.alp,
                                            mor.rules, G, lam0, ch.params), w, repeats)
    _backward_ratios(row)
    return row, ev


def _backward_ratios(row):
    """Per-stage figures and ratios derived from a moreauctl row's medians (recomputed
    after merging runs)."""
    T = row["T"]
    for key in ("", "forward_", "backward_", "moreau_"):
        src = {"": "median_s"}.get(key, key + "s")
        if src in row:
            row[key + "ns_per_stage"] = 1e9 * row[src] / T
    row["moreau_over_grad"] = row["moreau_s"] / row["median_s"]
    if "moreau_backward_s" in row:
        row["moreau_backward_ns_per_stage"] = 1e9 * row["moreau_backward_s"] / row["T"]
        row["moreau_over_grad_backward"] = row["moreau_backward_s"] / row["backward_s"]
        row["moreau_over_recompute_backward"] = (row["moreau_backward_s"]
                                                 / row["backward_recompute_s"])
    else:  # older results: oracle time minus the forward kernel
        row["moreau_over_grad_backward"] = ((row["moreau_s"] - row["forward_s"])
                                            / max(row["median_s"] - row["forward_s"], 1e-12))


# XLA's CPU runtime spreads a scan's small ops over its thread pool; on this 2-core machine
# that made JAX up to 3x slower than the same process pinned to one core (taskset). Such
# runtimes are therefore also timed in a fresh process pinned to one core (worker.py
# --one-core: the affinity is set before the runtime starts its threads), and the faster of
# the two is reported (both are kept in the row).
PIN_BOTH_WAYS = ("jax",)


def bench_peer(tool, p, w, repeats, ref_grad, c_workdir=None):
    kw = {"workdir": c_workdir} if tool == "casadi_c" and c_workdir else {}
    ev = peers.build(tool, p, w, **kw)
    row = {"tool": tool, "status": "ok", "build_s": ev.build_s, "first_s": ev.first_s}
    x = peers.native_input(ev, w)
    reps = repeats if ev.first_s < 1.0 else max(1, min(repeats, 3))
    row["median_s"], row["samples_s"], row["inner"] = timeit(ev.grad, x, reps)
    row["repeats"] = reps
    if tool in PIN_BOTH_WAYS and hasattr(os, "sched_setaffinity"):
        r = run_worker(tool, p.plant.name, p.horizon, os.environ.get("MOREAUCTL_CACHE", ""),
                       extra_args=["--time", str(reps), "--one-core"])
        if r.get("status") == "ok":
            row["all_cores_s"], row["one_core_s"] = row["median_s"], r["median_s"]
            if r["median_s"] < row["median_s"]:
                row["median_s"], row["samples_s"] = r["median_s"], r["samples_s"]
                row["config"] = "one core"
            else:
                row["config"] = "all cores"
    _, g = peers.gradient_numpy(ev, w)
    row["max_rel_diff"] = rel_diff(g, ref_grad)
    row["ns_per_stage"] = 1e9 * row["median_s"] / p.horizon
    row.update({k: v for k, v in ev.extra.items() if isinstance(v, (int, float, str))
                and k != "workdir"})
    if tool == "casadi_c" and not c_workdir:
        shutil.rmtree(ev.extra["workdir"], ignore_errors=True)
    return row


def _predict(history, T, tool):
    """Predicted seconds for build + a few calls at T from the last measured horizon."""
    if not history:
        return 0.0
    T0, build0, call0 = history[-1]
    r = T / T0
    bexp = 1.6 if tool == "casadi_c" else 1.0
    return build0 * r ** bexp + 4 * call0 * r


def _budget_for(tool, budget, c_budget):
    return c_budget if tool == "casadi_c" else budget


# -------------------------------------------------------------------------------------------
# subprocess measurements (first-call latency, memory)


def run_worker(tool, plant, T, cache_dir, moreau=False, timeout=1800, extra_args=()):
    env = dict(os.environ)
    if cache_dir:
        env["MOREAUCTL_CACHE"] = cache_dir
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"  # large blocks go back to the OS when freed
    root = os.path.dirname(HERE)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), tool, plant, str(T)]
    if moreau:
        cmd.append("--moreau")
    cmd.extend(extra_args)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        return {"tool": tool, "plant": plant, "T": T, "status": "error",
                "note": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    out["status"] = "ok"
    return out


def startup_and_memory(plants, lat_Ts, mem_Ts, tools_ok, skipped, log):
    """First-call latency and memory in fresh processes."""
    rows = []
    for plant in plants:
        # moreauctl: uncached then cached, gradient and Moreau, for every horizon asked
        for T in sorted(set(lat_Ts) | set(mem_Ts)):
            # an empty cache for the gradient alone; another empty one for the Moreau
            # direction (every kernel compiled in that process), then both again warm
            d1 = tempfile.mkdtemp(prefix="mc_bench_cache_")
            d2 = tempfile.mkdtemp(prefix="mc_bench_cache_")
            try:
                for mode, d, moreau in (("uncached", d1, False), ("uncached", d2, True),
                                        ("cached", d2, False), ("cached", d2, True)):
                    r = run_worker("moreauctl", plant, T, d, moreau=moreau)
                    r.update(cache=mode, what="moreau" if moreau else "gradient")
                    rows.append(r)
                    log(f"  [process] moreauctl {plant} T={T} {mode} {r['what']}: "
                        f"{_fmt_worker(r)}")
            finally:
                shutil.rmtree(d1, ignore_errors=True)
                shutil.rmtree(d2, ignore_errors=True)
        for tool in tools_ok:
            if tool == "moreauctl":
                continue
            for T in lat_Ts:
                if (plant, tool, T) in skipped:
                    continue
                d = tempfile.mkdtemp(prefix="mc_bench_cache_")
                try:
                    r = run_worker(tool, plant, T, d)
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                r.update(cache="n/a", what="gradient")
                rows.append(r)
                log(f"  [process] {tool} {plant} T={T}: {_fmt_worker(r)}")
    return rows


def _fmt_worker(r):
    if r.get("status") != "ok":
        return f"error: {r.get('note')}"
    s = (f"first gradient {r['first_total_s']:.3f} s (build {r['build_s']:.3f} + first eval "
         f"{r['first_s']:.3f}), call peak +{r['peak_call_mib']:.1f} MiB "
         f"(trajectory {r['traj_mib']:.1f} MiB), first-call peak +{r['peak_first_mib']:.1f} MiB")
    if "moreau_first_s" in r:
        s += f", Moreau first call {r['moreau_first_s']:.3f} s"
    return s


# -------------------------------------------------------------------------------------------
# acceptance (issue 5)


def _row(rows, plant, T, tool):
    for r in rows:
        if r["plant"] == plant and r["T"] == T and r["tool"] == tool:
            return r
    return None


def acceptance(rows, procs, floors, plant="pendulum"):
    """Each acceptance item of issue 5, with the measured value and whether it holds.
    Items are evaluated on ``plant`` (the pendulum, whose stage is the issue's reference)
    and repeated for the other plants where they apply."""
    items = []

    def add(name, plant, value, target, holds, note=""):
        items.append({"item": name, "plant": plant, "value": value, "target": target,
                      "holds": holds, "note": note})

    plants = sorted({r["plant"] for r in rows}, key=lambda s: s != plant)
    for pl in plants:
        m = {r["T"]: r for r in rows if r["plant"] == pl and r["tool"] == "moreauctl"
             and r["status"] == "ok"}
        for T in (10_000, 100_000):
            c = _row(rows, pl, T, "casadi_sx")
            if T in m and c and c["status"] == "ok":
                v = c["median_s"] / m[T]["median_s"]
                add(f"gradient vs CasADi SX VM, T={T:.0e}", pl, v, ">= 2.5x", v >= 2.5)
        # time to first gradient at 1e5: CasADi SX build + first eval vs ours, fresh processes
        T = 100_000
        cs = [p for p in procs if p.get("plant") == pl and p.get("T") == T
              and p.get("tool") == "casadi_sx" and p.get("status") == "ok"]
        for mode in ("uncached", "cached"):
            ms = [p for p in procs if p.get("plant") == pl and p.get("T") == T
                  and p.get("tool") == "moreauctl" and p.get("cache") == mode
                  and p.get("what") == "gradient" and p.get("status") == "ok"]
            if cs and ms:
                v = cs[0]["first_total_s"] / ms[0]["first_total_s"]
                add(f"time to first gradient vs CasADi SX (graph + first eval), T=1e5, "
                    f"moreauctl {mode}", pl, v, ">= 5x", v >= 5)
        for tool in ("casadi_mx", "jax"):
            vals = []
            for T in sorted(m):
                r = _row(rows, pl, T, tool)
                if r and r["status"] == "ok":
                    vals.append((T, r["median_s"] / m[T]["median_s"]))
            if vals:
                worst = min(vals, key=lambda e: e[1])
                add(f"gradient vs {peers.LABELS[tool]} (worst over T)", pl, worst[1], ">= 10x",
                    worst[1] >= 10, f"worst at T={worst[0]:.0e}; all: "
                    + ", ".join(f"{T:.0e}: {v:.1f}x" for T, v in vals))
        vals = []
        for T in sorted(m):
            r = _row(rows, pl, T, "casadi_c")
            if r and r["status"] == "ok":
                vals.append((T, m[T]["median_s"] / r["median_s"]))
        if vals:
            worst = max(vals, key=lambda e: e[1])
            add("time relative to CasADi-generated C (worst over T where it compiled)", pl,
                worst[1], "<= 1.0x", worst[1] <= 1.0,
                f"worst at T={worst[0]:.0e}; all: " + ", ".join(f"{T:.0e}: {v:.2f}x" for T, v in vals))
        if 10_000 in m and 1_000_000 in m:
            v = m[1_000_000]["median_s"] / m[10_000]["median_s"]
            add("scaling t(1e6)/t(1e4)", pl, v, "in [70, 130]", 70 <= v <= 130)
        if 100_000 in m:
            r = m[100_000]
            v = r["moreau_over_grad"]
            add("Moreau direction / gradient, T=1e5 (whole oracles)", pl, v, "<= 4x", v <= 4,
                f"backward passes alone: {r['moreau_over_grad_backward']:.1f}x")
            if "moreau_backward_s" in r:
                v = r["moreau_over_grad_backward"]
                fl = floors.get(pl, {})
                add("Moreau backward pass / gradient backward pass, T=1e5", pl, v, "<= 4x",
                    v <= 4, f"{1e9 * r['moreau_backward_s'] / 1e5:.1f} vs "
                    f"{r['backward_ns_per_stage']:.1f} ns/stage; against the backward pass "
                    f"that re-evaluates each VJP (Prop. D.6's unit): "
                    f"{r['moreau_over_recompute_backward']:.1f}x"
                    + (f"; Moreau backward floor {fl['moreau_backward_ns']:.1f} ns/stage, "
                       f"achieved / floor {1e9 * r['moreau_backward_s'] / 1e5 / fl['moreau_backward_ns']:.2f}x"
                       if "moreau_backward_ns" in fl else ""))
        # start-up at the smallest horizon measured in fresh processes, where the
        # evaluations themselves are negligible (at 1e6 they add up to 0.7 s of compute)
        for mode, target in (("uncached", 5.0), ("cached", 1.0)):
            for what in ("gradient", "moreau"):
                ps = [p for p in procs if p.get("plant") == pl and p.get("tool") == "moreauctl"
                      and p.get("cache") == mode and p.get("what") == what
                      and p.get("status") == "ok"]
                if ps:
                    p0 = min(ps, key=lambda p: p["T"])
                    v = p0["first_total_s"] + p0.get("moreau_first_s", 0.0)
                    add(f"start-up, first {what}, {mode}, T={p0['T']:.0e}", pl, v,
                        f"<= {target:g} s", v <= target,
                        "fresh process, imports excluded: build (code generation + JIT or "
                        "cache load) + first gradient" + (" + first Moreau direction"
                                                          if what == "moreau" else "")
                        + "; all T: " + ", ".join(
                            f"{p['T']:.0e}: {p['first_total_s'] + p.get('moreau_first_s', 0.0):.2f} s"
                            for p in sorted(ps, key=lambda p: p["T"])))
        ps = [p for p in procs if p.get("plant") == pl and p.get("tool") == "moreauctl"
              and p.get("T") == 1_000_000 and p.get("status") == "ok"]
        for p in ps:
            if p.get("cache") == "cached":
                v = p["peak_call_mib"] / p["traj_mib"]
                add(f"peak memory of one {p['what']} call at T=1e6 / trajectory arrays (w, X)",
                    pl, v, "<= 3x", v <= 3,
                    f"+{p['peak_call_mib']:.1f} MiB over {p['traj_mib']:.1f} MiB")
        if pl in floors and 100_000 in m:
            v = m[100_000]["ns_per_stage"] / floors[pl]["total_ns"]
            add("achieved ns/stage (gradient, T=1e5) / dependency-chain floor", pl, v,
                "<= 1.5x", v <= 1.5,
                f"{m[100_000]['ns_per_stage']:.1f} ns vs floor {floors[pl]['total_ns']:.1f} ns "
                f"(forward {m[100_000]['forward_ns_per_stage']:.1f} vs "
                f"{floors[pl]['forward_ns']:.1f}, backward "
                f"{m[100_000]['backward_ns_per_stage']:.1f} vs {floors[pl]['backward_ns']:.1f})")
    return items


# -------------------------------------------------------------------------------------------
# markdown


def _ms(s):
    return "—" if s is None else (f"{s*1e3:.3g} ms" if s < 10 else f"{s:.3g} s")


def markdown(data):
    meta, rows, procs = data["meta"], data["rows"], data["processes"]
    nruns = len(meta.get("runs", [])) or 1
    out = [f"# moreauctl benchmarks against peers\n",
           f"Generated by `benchmarks/suite.py` on {meta['date']}. Machine: {meta['machine']}, "
           f"{meta['cpu']}, {meta['cpus']} cores; load average at start "
           f"{meta['load_start']}, at end {meta['load_end']} (highest over runs). Code: commit "
           f"{meta['source']['commit']}" + (" with uncommitted changes under moreauctl/"
                                            if meta['source']['moreauctl_dirty'] else "")
           + f" (kernels/oracles/codegen sha {meta['source']['kernels_sha']}"
           + ("; **changed during the run**" if meta["source_changed_during_run"] else "")
           + f"). Python {meta['python']}; "
           + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
           (f"Each number is the median over {nruns} full runs (" + "; ".join(
               f"{r['date']}, load {r['load_start']}-{r['load_end']}" for r in meta["runs"])
            + "; per-run values of the main timings are kept in results.json as `*_runs`) of "
            "medians" if nruns > 1 else "Medians")
           + f" of {meta['repeats']} repeats (fewer for calls over 1 s; fast calls are "
           "averaged within each repeat). Gradient = one objective + gradient "
           "(forward + backward). Ratio = peer time / moreauctl time (> 1: moreauctl faster). "
           "Fixed total time: pendulum (Euler) 10 s, cart-pole (RK4) 5 s, dt = total / T.\n"]
    if meta.get("unavailable"):
        out.append("Not measured (not installed here): " + "; ".join(
            f"{k}: {v}" for k, v in meta["unavailable"].items()) + ".\n")
    for plant in data["settings"]["plants"]:
        Ts = sorted({r["T"] for r in rows if r["plant"] == plant})
        tools = [t for t in peers.TOOLS if any(r["tool"] == t and r["plant"] == plant
                                               for r in rows)]
        out.append(f"## {plant} — objective + gradient\n")
        out.append("| tool | " + " | ".join(f"T={T:.0e}" for T in Ts) + " |")
        out.append("|---|" + "---|" * len(Ts))
        for tool in tools:
            cells = []
            for T in Ts:
                r = _row(rows, plant, T, tool)
                if r is None:
                    cells.append("—")
                elif r["status"] != "ok":
                    cells.append("skipped")
                elif tool == "moreauctl":
                    cells.append(f"{_ms(r['median_s'])} ({r['ns_per_stage']:.1f} ns/stage)")
                else:
                    m = _row(rows, plant, T, "moreauctl")
                    cells.append(f"{_ms(r['median_s'])} ({r['median_s']/m['median_s']:.1f}×)")
            out.append(f"| {peers.LABELS[tool]} | " + " | ".join(cells) + " |")
        pinned = [r for r in rows if r["plant"] == plant and r.get("config")]
        if pinned:
            out.append("\nJAX timed with its threads free (this process) and in a fresh process "
                       "pinned to one core, the faster reported: " + "; ".join(
                           f"T={r['T']:.0e}: {_ms(r['all_cores_s'])} / {_ms(r['one_core_s'])}"
                           for r in pinned) + ".")
        notes = sorted({f"{peers.LABELS[r['tool']]}: {r['note']}" for r in rows
                        if r["plant"] == plant and r["status"] != "ok" and r.get("note")})
        if notes:
            out.append("\nSkipped cells: " + "; ".join(notes) + ".")
        builds = [r for r in rows if r["plant"] == plant and r["status"] == "ok"
                  and r["tool"] == "casadi_c"]
        if builds:
            out.append("\nCasADi C: " + "; ".join(
                f"T={r['T']:.0e}: graph {r['graph_s']:.2f} s, code generation "
                f"{r['codegen_s']:.2f} s, gcc {r['cflags']} {r['gcc_s']:.1f} s "
                f"({r['c_bytes']/1e6:.1f} MB of C)" for r in builds) + ".")
        passes = sorted({r.get("passes", "forward + backward_gradient") for r in rows
                         if r["plant"] == plant and r["tool"] == "moreauctl"})
        out.append("\nmoreauctl details (forward and backward kernels timed alone: "
                   + "; ".join(f"`{x}`" for x in passes) + "; Moreau = "
                   "`MoreauOracle(alpha=1, gamma=0.5**dt)`, i.e. 0.5 per second of simulated time, "
                   "inner=\"paper\"):\n")
        out.append("| T | gradient ns/stage | forward | backward | backward, recomputing VJPs | "
                   "Moreau direction | Moreau backward | Moreau / gradient | "
                   "backward passes Moreau / gradient | Moreau backward / recomputing "
                   "backward | max rel. diff of peers |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for T in Ts:
            r = _row(rows, plant, T, "moreauctl")
            if r is None or r["status"] != "ok":
                continue
            diffs = [x.get("max_rel_diff", 0.0) for x in rows if x["plant"] == plant
                     and x["T"] == T and x["tool"] != "moreauctl" and x["status"] == "ok"]
            rec = r.get("backward_recompute_s")
            mb = r.get("moreau_backward_s")
            out.append(f"| {T:.0e} | {r['ns_per_stage']:.1f} | {r['forward_ns_per_stage']:.1f} | "
                       f"{r['backward_ns_per_stage']:.1f} | "
                       + (f"{1e9 * rec / T:.1f}" if rec else "—") + f" | {_ms(r['moreau_s'])} | "
                       + (f"{1e9 * mb / T:.1f} ns/stage" if mb else "—") + " | "
                       f"{r['moreau_over_grad']:.1f}× | {r['moreau_over_grad_backward']:.1f}× | "
                       + (f"{r['moreau_over_recompute_backward']:.1f}×" if mb else "—") + " | "
                       f"{max(diffs) if diffs else float('nan'):.1e} |")
        if data["meta"].get("moreau_runs"):
            out.append("\nThe Moreau columns come from " + str(len(data["meta"]["moreau_runs"]))
                       + " runs of moreauctl alone (" + "; ".join(
                           r["date"] for r in data["meta"]["moreau_runs"]) + ", same code), "
                       "medians; the ratios divide them by the gradient times above.")
        fl = data["floor"].get(plant)
        if fl:
            lat = fl["latency_ns"]
            out.append(f"\nFloor (dependency chain, `benchmarks/floor.py`): forward "
                       f"{fl['forward_ns']:.1f} ns/stage (ops per stage on the critical cycle: "
                       f"{_ops(fl['forward_ops'])}), backward {fl['backward_ns']:.1f} ns/stage "
                       f"({_ops(fl['backward_ops'])}), total {fl['total_ns']:.1f} ns/stage. "
                       f"Measured latencies (ns): " + ", ".join(
                           f"{k} {v:.2f}" for k, v in lat.items()) + " (`_tp`: independent "
                       "calls, throughput). Trigonometric calls per stage as the kernels run "
                       f"them: forward {fl['forward_trig_calls']}, gradient backward "
                       f"{fl['backward_trig_calls']} (the VJP recomputes the stage's "
                       f"trigonometry), about {fl['forward_trig_throughput_ns']:.1f} + "
                       f"{fl['backward_trig_throughput_ns']:.1f} ns/stage at their throughput"
                       " (the kernels' backward pass reads the values stored by the forward "
                       "pass instead, when the chain stores them).")
            if "moreau_backward_ns" in fl:
                out.append(f"\nMoreau backward floor (`floor.moreau_floor`: the state line of "
                           f"the pass when the Goldstein search accepts its unit trial, as on "
                           f"almost every stage): {fl['moreau_backward_ns']:.1f} ns/stage "
                           f"({_ops(fl['moreau_backward_ops'])}); the sin and cos of the "
                           f"trial point lie on the costate recursion, so no stored value "
                           f"can take them off it.")
        pr = [p for p in procs if p.get("plant") == plant and p.get("status") == "ok"]
        if pr:
            out.append(f"\n### {plant}: first-call latency and memory, fresh process per line "
                       "(imports excluded; peak = resident-set growth):\n")
            out.append("| tool | T | cache | what | build | first eval | total | "
                       "peak, one call | trajectory w+X | peak, build + first call |")
            out.append("|---|---|---|---|---|---|---|---|---|---|")
            for p in pr:
                first = p["first_s"] + p.get("moreau_first_s", 0.0)
                out.append(f"| {p['tool']} | {p['T']:.0e} | {p.get('cache')} | {p.get('what')} | "
                           f"{p['build_s']:.2f} s | {first:.2f} s | "
                           f"{p['build_s'] + first:.2f} s | "
                           f"{p['peak_call_mib']:.1f} MiB | {p['traj_mib']:.1f} MiB | "
                           f"{p['peak_first_mib']:.0f} MiB |")
    out.append("\n## Acceptance (issue 5)\n")
    out.append("| item | plant | measured | target | holds | note |")
    out.append("|---|---|---|---|---|---|")
    for it in data["acceptance"]:
        v = it["value"]
        vs = f"{v:.2f}" + (" s" if it["target"].split()[-1] == "s" else "×")
        out.append(f"| {it['item']} | {it['plant']} | {vs} | {it['target']} | "
                   f"{'yes' if it['holds'] else '**no**'} | {it['note']} |")
    return "\n".join(out) + "\n"


def _ops(d):
    return ", ".join(f"{v:g} {k}" for k, v in d.items())


# -------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizons", default=None, help=f"comma list (default {DEFAULT_HORIZONS})")
    ap.add_argument("--quick", action="store_true",
                    help="T = 100, 1000, one repeat, small caps (a smoke run)")
    ap.add_argument("--plants", default="pendulum,cartpole")
    ap.add_argument("--tools", default=",".join(peers.TOOLS))
    ap.add_argument("--repeats", type=int, default=None, help="default 5 (1 with --quick)")
    ap.add_argument("--budget", type=float, default=None,
                    help="skip a peer's cell when its predicted time exceeds this (s); "
                    "default 150 (20 with --quick)")
    ap.add_argument("--c-budget", type=float, default=None,
                    help="the same for CasADi C, whose gcc time dominates (default 400 s)")
    ap.add_argument("--sx-max-T", default=None,
                    help="largest T for CasADi SX, one number or plant:T,... "
                    f"(default {DEFAULT_SX_MAX_T})")
    ap.add_argument("--c-max-T", default=None,
                    help=f"largest T for CasADi C (default {DEFAULT_C_MAX_T})")
    ap.add_argument("--latency-horizons", default=None,
                    help="T for fresh-process latency/memory of every tool (default 1e5)")
    ap.add_argument("--memory-horizons", default=None,
                    help="extra T for moreauctl's fresh-process latency/memory "
                    "(default 1e4,1e6)")
    ap.add_argument("--process-plants", default=None,
                    help="plants for the fresh-process measurements (default: --plants)")
    ap.add_argument("--process-tools", default=None,
                    help="tools for the fresh-process measurements (default: --tools)")
    ap.add_argument("--no-processes", action="store_true",
                    help="skip the fresh-process latency and memory measurements")
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--floor-n", type=int, default=None,
                    help="iterations of each latency loop (default 2e6; 2e5 with --quick)")
    ap.add_argument("--out", default=HERE, help="directory for results.json and results.md")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="only rewrite results.md (in --out) from a results.json; no measuring")
    ap.add_argument("--moreau-from", metavar="JSON", nargs="+", default=None,
                    help="with --merge: take moreauctl's Moreau columns from these runs "
                    "(medians) instead of from the merged runs")
    ap.add_argument("--merge", metavar="JSON", nargs="+", default=None,
                    help="combine the results.json of repeated full runs: every number of "
                    "every cell becomes its median over the runs (written to --out)")
    a = ap.parse_args(argv)
    if a.merge:
        data = merge_runs([json.load(open(p)) for p in a.merge])
        if a.moreau_from:
            data = replace_moreau(data, merge_runs([json.load(open(p)) for p in a.moreau_from]))
        os.makedirs(a.out, exist_ok=True)
        _write(os.path.join(a.out, "results.json"), json.dumps(data, indent=1, default=float))
        _write(os.path.join(a.out, "results.md"), markdown(data))
        return data
    if a.render:
        with open(a.render) as f:
            data = json.load(f)
        data["acceptance"] = acceptance(data["rows"], data["processes"], data["floor"])
        _write(os.path.join(a.out, "results.md"), markdown(data))
        return data

    quick = a.quick
    horizons = _horizons(a.horizons or ("1e2,1e3" if quick else DEFAULT_HORIZONS))
    repeats = a.repeats or (1 if quick else 5)
    budget = a.budget or (20.0 if quick else 150.0)
    c_budget = a.c_budget or (20.0 if quick else 400.0)
    plants = [s for s in a.plants.split(",") if s]
    for pl in plants:
        if pl not in peers.PLANTS:
            raise SystemExit(f"unknown plant {pl!r}; choose from {sorted(peers.PLANTS)}")
    tools = [s for s in a.tools.split(",") if s]
    for t in tools:
        if t not in peers.TOOLS:
            raise SystemExit(f"unknown tool {t!r}; choose from {list(peers.TOOLS)}")
    if "moreauctl" not in tools:
        tools.insert(0, "moreauctl")
    sx_max = _per_plant(a.sx_max_T, {k: min(v, 1000) if quick else v
                                     for k, v in DEFAULT_SX_MAX_T.items()})
    c_max = _per_plant(a.c_max_T, {k: (100 if quick else v) for k, v in DEFAULT_C_MAX_T.items()})
    lat_Ts = _horizons(a.latency_horizons) if a.latency_horizons else (
        [max(horizons)] if quick else [100_000])
    mem_Ts = _horizons(a.memory_horizons) if a.memory_horizons else (
        [] if quick else [10_000, 1_000_000])
    lat_Ts = [T for T in lat_Ts if T in horizons]
    mem_Ts = [T for T in mem_Ts if T in horizons]

    def log(msg):
        if not a.quiet:
            print(msg, flush=True)

    load_start = os.getloadavg()[0]
    src_start = _source_state()
    avail = {t: peers.availability(t) for t in tools}
    unavailable = {t: note for t, (ok, note) in avail.items() if not ok}
    tools_ok = [t for t in tools if avail[t][0]]
    for t, note in unavailable.items():
        log(f"skipping {t}: {note}")

    rows, skipped, floors = [], set(), {}
    for plant in plants:
        history = {t: [] for t in tools_ok}
        for T in horizons:
            p = peers.make_problem(plant, T)
            w = peers.controls(p)
            m, _ = bench_moreauctl(p, w, repeats)
            m.update(plant=plant, T=T)
            rows.append(m)
            log(f"{plant} T={T:.0e} moreauctl: gradient {_ms(m['median_s'])} "
                f"({m['ns_per_stage']:.1f} ns/stage: forward {m['forward_ns_per_stage']:.1f}, "
                f"backward {m['backward_ns_per_stage']:.1f}), Moreau {_ms(m['moreau_s'])} "
                f"({m['moreau_over_grad']:.1f}x)")
            ref = p.chain.gradient(w, p.chain.forward(w)[1])[0].reshape(w.shape)
            for tool in tools_ok:
                if tool == "moreauctl":
                    continue
                row = {"tool": tool, "plant": plant, "T": T}
                cap = {"casadi_sx": sx_max.get(plant), "casadi_c": c_max.get(plant)}.get(tool)
                pred = _predict(history[tool], T, tool)
                if cap is not None and T > cap:
                    row.update(status="skipped", note=f"capped at T={cap:.0e} (build time; "
                               "raise with --sx-max-T / --c-max-T)")
                elif pred > _budget_for(tool, budget, c_budget):
                    row.update(status="skipped", note=f"predicted {pred:.0f} s from "
                               f"T={history[tool][-1][0]:.0e} > budget "
                               f"{_budget_for(tool, budget, c_budget):.0f} s")
                elif history[tool] == [] and T != horizons[0] and tool in {
                        r["tool"] for r in rows if r.get("status") == "skipped"
                        and r["plant"] == plant}:
                    row.update(status="skipped", note="skipped at a smaller T")
                else:
                    try:
                        row.update(bench_peer(tool, p, w, repeats, ref))
                    except Exception as e:  # a peer failing is reported, not fatal
                        row.update(status="error", note=f"{type(e).__name__}: {e}"[:300])
                if row["status"] == "ok":
                    history[tool].append((T, row["build_s"], row["median_s"]))
                    log(f"{plant} T={T:.0e} {tool}: {_ms(row['median_s'])} "
                        f"({row['median_s']/m['median_s']:.1f}x moreauctl; build "
                        f"{row['build_s']:.2f} s, first {row['first_s']:.2f} s; rel diff "
                        f"{row['max_rel_diff']:.1e})")
                else:
                    skipped.add((plant, tool, T))
                    log(f"{plant} T={T:.0e} {tool}: {row['status']}: {row.get('note')}")
                rows.append(row)
        if not a.no_floor:
            Tf = 10_000 if 10_000 in horizons else max(horizons)
            p = peers.make_problem(plant, Tf)
            floors[plant] = floor.stage_floor(p, peers.controls(p),
                                              n=a.floor_n or (200_000 if quick else 2_000_000))
            log(f"{plant} floor: {floors[plant]['total_ns']:.1f} ns/stage (forward "
                f"{floors[plant]['forward_ns']:.1f}, backward {floors[plant]['backward_ns']:.1f})")

    p_plants = [s for s in (a.process_plants or a.plants).split(",") if s in plants]
    p_tools = [t for t in tools_ok if a.process_tools is None
               or t in a.process_tools.split(",") or t == "moreauctl"]
    procs = [] if a.no_processes else startup_and_memory(p_plants, lat_Ts, mem_Ts, p_tools,
                                                        skipped, log)
    import casadi
    import numba

    versions = {"casadi": casadi.__version__, "numba": numba.__version__,
                "numpy": np.__version__}
    for t in ("jax", "torch"):
        if t in tools_ok:
            versions[t] = __import__(t).__version__
    if "casadi_c" in tools_ok:
        versions["cc"] = avail["casadi_c"][1]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "versions": versions, "repeats": repeats, "quick": quick,
            "load_start": round(load_start, 2), "load_end": round(os.getloadavg()[0], 2),
            "unavailable": unavailable, "source": src_start,
            "source_changed_during_run": _source_state()["kernels_sha"] != src_start["kernels_sha"]}
    data = {"meta": meta,
            "settings": {"horizons": horizons, "plants": plants, "tools": tools,
                         "budget_s": budget, "c_budget_s": c_budget, "sx_max_T": sx_max, "c_max_T": c_max,
                         "latency_horizons": lat_Ts, "memory_horizons": mem_Ts},
            "rows": rows, "processes": procs, "floor": floors}
    data["acceptance"] = acceptance(rows, procs, floors)
    os.makedirs(a.out, exist_ok=True)
    for name, text in (("results.json", json.dumps(data, indent=1, default=float)),
                       ("results.md", markdown(data))):
        _write(os.path.join(a.out, name), text)
        log(f"wrote {os.path.join(a.out, name)}")
    return data


def merge_runs(runs):
    """Median over repeated runs, cell by cell (rows keyed by plant, T, tool; processes also
    by cache and what; floors by plant). A cell skipped in any run stays as in the first run
    that has it; numbers present in only some runs take the median of those."""
    def key_row(r):
        return (r["plant"], r["T"], r["tool"])

    def key_proc(r):
        return (r.get("plant"), r.get("T"), r.get("tool"), r.get("cache"), r.get("what"))

    def med(objs):
        out = dict(objs[0])
        for k, v in objs[0].items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            vals = [o[k] for o in objs if isinstance(o.get(k), (int, float))]
            out[k] = float(statistics.median(vals))
            if len(vals) > 1 and k in ("median_s", "first_total_s", "moreau_s", "total_ns"):
                out[k + "_runs"] = vals
        for k, v in objs[0].items():
            if isinstance(v, dict):
                out[k] = med([o[k] for o in objs if isinstance(o.get(k), dict)])
        return out

    def combine(lists, key):
        groups = {}
        for lst in lists:
            for r in lst:
                groups.setdefault(key(r), []).append(r)
        out = []
        for rs in groups.values():
            ok = [r for r in rs if r.get("status", "ok") == "ok"]
            out.append(med(ok) if ok else rs[0])
        return out

    data = dict(runs[0])
    data["rows"] = combine([r["rows"] for r in runs], key_row)
    for r in data["rows"]:  # ratios derived from medians, recomputed where they are stored
        if r["tool"] == "moreauctl" and r.get("status") == "ok":
            _backward_ratios(r)
    data["processes"] = combine([r["processes"] for r in runs], key_proc)
    data["floor"] = {pl: med([r["floor"][pl] for r in runs if pl in r["floor"]])
                     for pl in runs[0]["floor"]}
    meta = dict(runs[0]["meta"])
    meta["runs"] = [{"date": r["meta"]["date"], "load_start": r["meta"]["load_start"],
                     "load_end": r["meta"]["load_end"], "source": r["meta"]["source"]}
                    for r in runs]
    meta["date"] = runs[-1]["meta"]["date"]
    meta["load_start"] = max(r["meta"]["load_start"] for r in runs)
    meta["load_end"] = max(r["meta"]["load_end"] for r in runs)
    data["meta"] = meta
    data["acceptance"] = acceptance(data["rows"], data["processes"], data["floor"])
    return data


MOREAU_FIELDS = ("moreau_s", "moreau_s_runs", "moreau_samples_s", "moreau_first_s",
                 "moreau_gamma_stage", "moreau_zero_rows", "moreau_backward_s")


def replace_moreau(data, mdata):
    """moreauctl's Moreau columns of ``data`` replaced by those of ``mdata`` (same plants and
    horizons); the ratios are recomputed against ``data``'s gradient times."""
    src = {(r["plant"], r["T"]): r for r in mdata["rows"] if r["tool"] == "moreauctl"}
    for r in data["rows"]:
        m = src.get((r["plant"], r["T"]))
        if r["tool"] != "moreauctl" or m is None or r.get("status") != "ok":
            continue
        for k in MOREAU_FIELDS:
            if k in m:
                r[k] = m[k]
        _backward_ratios(r)
    data["meta"]["moreau_runs"] = mdata["meta"].get("runs", [])
    data["acceptance"] = acceptance(data["rows"], data["processes"], data["floor"])
    return data


def _write(path, text):
    """Complete or absent: write a temporary file, then rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
