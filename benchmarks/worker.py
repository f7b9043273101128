"""One measurement in a fresh process: first-call latency and peak memory of one tool.

Run by ``suite.py`` (one subprocess per tool x plant x T); prints one JSON object.

Timings (seconds): ``import_s`` (importing the tool and moreauctl's models), ``build_s``
(graph building, code generation, JIT or disk-cache load: see ``peers.Evaluator``),
``first_s`` (first evaluation, which includes lazy JIT compilation), and ``first_total_s =
build_s + first_s``: the time to the first gradient of a new problem once Python is up.

Memory (MiB), read from ``/proc/self/status`` with the high-water mark reset through
``/proc/self/clear_refs`` (Linux): ``rss_base_mib`` after imports; ``peak_first_mib``, the
peak resident-set growth over that base during build + first evaluation; ``peak_call_mib``,
the peak growth during one further evaluation (outputs included) over the resident set just
before it. glibc's allocator is told to return large blocks to the system at once
(``MALLOC_MMAP_THRESHOLD_``, set by the suite; plus ``malloc_trim``) so freed arrays of the
first call are not counted as resident baseline. ``traj_mib`` is the size of the stored
trajectory arrays: controls ``w`` (T, nw) and states ``X`` (T+1, nx), float64.

With ``--time R`` the worker also reports ``median_s``, the median of R timed evaluations
(as ``suite.timeit``); with ``--one-core`` the process is pinned to one CPU before anything
is imported, so every thread a runtime starts later inherits that (used for JAX, whose CPU
runtime spreads a scan's small operations over a thread pool).

Usage: python benchmarks/worker.py TOOL PLANT T [--moreau] [--time R] [--one-core]
(``$MOREAUCTL_CACHE`` chooses the disk cache: empty for "uncached", warm for "cached").
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import time


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB -> MiB
    return float("nan")


def _reset_peak():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    tool, plant, T = argv[0], argv[1], int(argv[2])
    moreau = "--moreau" in argv
    repeats = int(argv[argv.index("--time") + 1]) if "--time" in argv else 0
    if "--one-core" in argv:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    t = time.perf_counter()
    import numpy as np  # noqa: F401

    import peers

    if tool in ("jax", "torch"):
        __import__(tool)
    import moreauctl  # noqa: F401  (the problem is defined with moreauctl's models)

    import_s = time.perf_counter() - t
    p = peers.make_problem(plant, T)
    w = peers.controls(p)
    out = {"tool": tool, "plant": plant, "T": T, "import_s": import_s,
           "traj_mib": (w.nbytes + (T + 1) * p.nx * 8) / 2**20}
    can_reset = _reset_peak()
    base = _status("VmRSS")
    ev = peers.build(tool, p, w)
    out.update(build_s=ev.build_s, first_s=ev.first_s, first_total_s=ev.build_s + ev.first_s,
               rss_base_mib=base, peak_first_mib=_status("VmHWM") - base,
               hwm_reset=can_reset)
    x = peers.native_input(ev, w)
    fn = ev.moreau if moreau else ev.grad
    if moreau:
        t = time.perf_counter()
        fn(x)  # the Moreau kernel's own first call (JIT or cache load)
        out["moreau_first_s"] = time.perf_counter() - t
    _reset_peak()
    base2 = _status("VmRSS")
    t = time.perf_counter()
    res = fn(x)
    out["call_s"] = time.perf_counter() - t
    out["peak_call_mib"] = _status("VmHWM") - base2
    del res
    if repeats:
        import suite

        out["median_s"], out["samples_s"], out["inner"] = suite.timeit(fn, x, repeats)
    out["extra"] = {k: v for k, v in ev.extra.items() if isinstance(v, (int, float, str))}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
