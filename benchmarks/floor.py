"""The physical floor of one stage: latency of the sequential dependency chain.

A chain ``x_t = phi(w_t, x_{t-1})`` cannot run faster than the latency of the longest
dependent path from ``x_{t-1}`` to ``x_t`` (forward), plus that from ``lam_t`` to
``lam_{t-1}`` (gradient backward, ``lam_{t-1} = dphi/dx^T lam_t``): everything off that path
(the controls, the trigonometry of stored states in the backward pass, the outputs ``g_t``)
can overlap with it in an out-of-order core, the path itself cannot.

How the floor is computed here:

1. **Count.** The dependency graph is read off CasADi's SX instruction list of the stage
   (forward: ``phi(w, x)``, inputs ``x``; backward: ``gradient(lam^T phi, x)``, inputs
   ``lam``, with ``w`` and ``x`` known constants, as they are in a backward pass that stores
   states). These are the very instructions the numba kernels execute (the code generator
   translates them one to one and numba keeps their order: no fast-math reassociation).
   With several state entries the carried dependency is a small graph, and the time per
   stage is its maximum cycle mean in (max, +) algebra; :func:`chain_floor` computes it by
   iterating the (max, +) matrix and reports which operations lie on the critical cycle.
   Paths are weighed by the measured latencies of step 2, so the critical path is the
   slowest one on this machine, not merely the one with most operations.
2. **Measure.** :func:`op_latencies` times, in tiny numba loops, a dependent chain of each
   operation (``v = v + c``, ``v = v * c``, ``v = v / c``, ``v = sin(a_i + 0*v)`` minus its
   ``a_i + 0*v`` baseline ...), with the same numba options as the kernels. Trigonometric
   latencies depend on the argument (glibc has several paths), so they are measured on the
   actual angles of the benchmark trajectory.
3. **Floor** = sum over the critical cycle of count x latency, forward plus backward.

What the floor leaves out: a backward pass that reuses trigonometry needs the forward pass
to produce it, and when a block needs ``sin`` and ``cos`` of one argument LLVM emits one
``sincos`` call, whose latency (``lat["sincos"]``) exceeds ``sin``'s. On the pendulum the
forward pass that stores ``cos(theta)`` has a ``sincos`` on its critical cycle instead of a
``sin``: with the latencies measured on the benchmark trajectory (11.7 against 6.9 ns, the
cycle spanning two stages) that is about 2.4 ns/stage above this floor; a separate ``cos`` call would be off the chain but costs
more in throughput (measured: 13.2 ns/stage against 8.2 with ``sincos``).

:func:`moreau_floor` applies the same count to the Moreau backward pass's costate line.

Usage: python benchmarks/floor.py [--plant pendulum] [--T 10000]
"""
from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter

import numba
import numpy as np

__all__ = ["op_latencies", "dependency_matrix", "chain_floor", "stage_floor"]

# latency class of each CasADi op (ops not listed are looked up by their own name)
_CLASS = {"OP_ADD": "add", "OP_SUB": "add", "OP_TWICE": "mul", "OP_MUL": "mul",
          "OP_SQ": "mul", "OP_NEG": "neg", "OP_DIV": "div", "OP_INV": "div",
          "OP_SIN": "sin", "OP_COS": "cos", "OP_SQRT": "sqrt", "OP_ASSIGN": None,
          "OP_FABS": "neg", "OP_EXP": "exp", "OP_LOG": "log", "OP_TANH": "tanh"}

_JIT = dict(nogil=True, error_model="numpy", fastmath=False)  # as moreauctl._config, uncached


def _op_names():
    import casadi as ca

    return {getattr(ca, a): a for a in dir(ca) if a.startswith("OP_")}


# ------------------------------------------------------------------------------------------
# 1. the dependency graph


def dependency_matrix(fn, carried_in: int, lat, carried_out: int = 0):
    """Longest paths from the entries of input ``carried_in`` to those of output
    ``carried_out`` of an SX Function, weighing each op by its latency ``lat[class]`` (ns).

    Returns ``A`` as a nested list: ``A[i][j]`` is ``None`` (no path) or a Counter of the
    latency classes on the longest path from input entry ``j`` to output entry ``i``.
    """
    def weight(c):
        return sum(lat[k] * v for k, v in c.items())

    import casadi as ca

    names = _op_names()
    n_in = fn.nnz_in(carried_in)
    n_out = fn.nnz_out(carried_out)
    # work variable -> list over input entries j of (weight, Counter) or None
    work = {}
    A = [[None] * n_in for _ in range(n_out)]
    for k in range(fn.n_instructions()):
        op = fn.instruction_id(k)
        ins = fn.instruction_input(k)
        outs = fn.instruction_output(k)
        if op == ca.OP_INPUT:
            i_in, nz = ins
            paths = [None] * n_in
            if i_in == carried_in:
                paths[nz] = Counter()
            work[outs[0]] = paths
        elif op == ca.OP_CONST:
            work[outs[0]] = [None] * n_in
        elif op == ca.OP_OUTPUT:
            i_out, nz = outs
            if i_out == carried_out:
                A[nz] = list(work[ins[0]])
        else:
            cls = _CLASS.get(names.get(op, ""), names.get(op, str(op)))
            res = [None] * n_in
            for a in ins:
                for j, c in enumerate(work[a]):
                    if c is None:
                        continue
                    if res[j] is None or weight(c) > weight(res[j]):
                        res[j] = c
            if cls is not None:
                res = [None if c is None else c + Counter({cls: 1}) for c in res]
            work[outs[0]] = res
    return A


def chain_floor(A, lat, iters: int = 512):
    """Maximum cycle mean of the carried-dependency graph ``A`` under latencies ``lat``.

    Parameters
    ----------
    A : nested list from :func:`dependency_matrix`
    lat : dict latency class -> ns

    Returns
    -------
    ns_per_stage : float
    ops_per_stage : dict latency class -> average count per stage on the critical cycle
    """
    n = len(A)

    def weight(c):
        return sum(lat[k] * v for k, v in c.items())

    W = [[None if A[i][j] is None else weight(A[i][j]) for j in range(n)] for i in range(n)]
    # (max,+) iteration: d[i] = longest path of k stages ending at state entry i
    d = [(0.0, Counter()) for _ in range(n)]
    hist = []
    for _ in range(iters):
        nd = []
        for i in range(n):
            best = None
            for j in range(n):
                if W[i][j] is None:
                    continue
                cand = d[j][0] + W[i][j]
                if best is None or cand > best[0]:
                    best = (cand, d[j][1] + A[i][j])
            nd.append(best if best is not None else (-math.inf, Counter()))
        d = nd
        hist.append(max(d, key=lambda e: e[0]))
    half = iters // 2
    (v1, c1), (v0, c0) = hist[-1], hist[half - 1]
    k = iters - half
    ops = {key: (c1.get(key, 0) - c0.get(key, 0)) / k for key in set(c1) | set(c0)}
    return (v1 - v0) / k, {key: v for key, v in sorted(ops.items()) if v}


# ------------------------------------------------------------------------------------------
# 2. latencies measured in tiny numba loops


def _make_kernels():
    jit = numba.njit(**_JIT)

    @jit
    def k_add(n, v):
        for _ in range(n):
            v = v + 1e-9
        return v

    @jit
    def k_mul(n, v):
        for _ in range(n):
            v = v * 1.0000000001
        return v

    @jit
    def k_div(n, v):
        for _ in range(n):
            v = v / 1.0000000001
        return v

    @jit
    def k_negmul(n, v):
        for _ in range(n):
            v = -(v * 1.0000000001)
        return v

    @jit
    def k_sqrt(n, v):
        for _ in range(n):
            v = math.sqrt(v + 1.0)  # minus add; converges to the golden ratio
        return v

    @jit
    def k_base(n, a, v):
        m = a.shape[0] - 1
        for i in range(n):
            v = a[i & m] + v * 0.0
        return v

    @jit
    def k_sin(n, a, v):
        m = a.shape[0] - 1
        for i in range(n):
            v = math.sin(a[i & m] + v * 0.0)
        return v

    @jit
    def k_cos(n, a, v):
        m = a.shape[0] - 1
        for i in range(n):
            v = math.cos(a[i & m] + v * 0.0)
        return v

    @jit
    def k_sincos(n, a, v):  # LLVM fuses sin and cos of one argument into one sincos call
        m = a.shape[0] - 1
        for i in range(n):
            z = a[i & m] + v * 0.0
            v = math.sin(z) + math.cos(z)
        return v

    @jit
    def k_sin_tp(n, a):  # throughput: independent calls
        m = a.shape[0] - 1
        s = 0.0
        for i in range(n):
            s += math.sin(a[i & m])
        return s

    @jit
    def k_cos_tp(n, a):
        m = a.shape[0] - 1
        s = 0.0
        for i in range(n):
            s += math.cos(a[i & m])
        return s

    return locals()


def _time_ns(fn, n, *args, repeats=7):
    fn(10, *args)  # compile
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(n, *args)
        ts.append(time.perf_counter() - t)
    return 1e9 * float(np.median(ts)) / n


def op_latencies(trig_args=None, n: int = 2_000_000, repeats: int = 7):
    """Latency in ns of one dependent operation of each class, on this machine.

    ``trig_args``: angles at which sin/cos are evaluated (the benchmark trajectory's; the
    default is 1.0). Also returns ``sincos`` (one fused call computing both, what LLVM emits
    when a block needs sin and cos of one argument) and ``sin_tp`` / ``cos_tp``: the time
    per *independent* call (throughput), useful to explain passes that are not latency
    bound.
    """
    k = _make_kernels()
    a = np.array([1.0]) if trig_args is None else np.asarray(trig_args, dtype=float)
    size = 1 << max(0, int(math.log2(max(1, a.size))))
    a = np.ascontiguousarray(a[:size])
    lat = {}
    lat["add"] = _time_ns(k["k_add"], n, 1.0, repeats=repeats)
    lat["mul"] = _time_ns(k["k_mul"], n, 1.0, repeats=repeats)
    lat["div"] = _time_ns(k["k_div"], n, 1.0, repeats=repeats)
    lat["neg"] = max(0.0, _time_ns(k["k_negmul"], n, 1.0, repeats=repeats) - lat["mul"])
    lat["sqrt"] = max(0.0, _time_ns(k["k_sqrt"], n, 1.0, repeats=repeats) - lat["add"])
    base = _time_ns(k["k_base"], n, a, 0.0, repeats=repeats)
    lat["sin"] = _time_ns(k["k_sin"], n, a, 0.0, repeats=repeats) - base
    lat["cos"] = _time_ns(k["k_cos"], n, a, 0.0, repeats=repeats) - base
    lat["sincos"] = max(0.0, _time_ns(k["k_sincos"], n, a, 0.0, repeats=repeats) - base
                        - lat["add"])
    lat["sin_tp"] = _time_ns(k["k_sin_tp"], n, a, repeats=repeats)
    lat["cos_tp"] = _time_ns(k["k_cos_tp"], n, a, repeats=repeats)
    return lat


# ------------------------------------------------------------------------------------------
# 3. the floor of one stage


def stage_functions(p):
    """Forward ``phi(w, x)`` (carried input 1) and backward ``lam -> dphi/dx^T lam``
    (carried input 2) as SX Functions of problem ``p``."""
    import casadi as ca

    w = ca.SX.sym("w", p.nw)
    x = ca.SX.sym("x", p.nx)
    lam = ca.SX.sym("lam", p.nx)
    phi = p.stage(w, x)
    fwd = ca.Function("fwd", [w, x], [phi])
    bwd = ca.Function("bwd", [w, x, lam], [ca.gradient(ca.dot(lam, phi), x)])
    return fwd, bwd


def vjp_function(p):
    """``(w, x, lam) -> (dphi/dw^T lam, dphi/dx^T lam)``: what the gradient backward pass
    evaluates per stage (as ``_vjp`` in moreauctl's generated kernels)."""
    import casadi as ca

    w = ca.SX.sym("w", p.nw)
    x = ca.SX.sym("x", p.nx)
    lam = ca.SX.sym("lam", p.nx)
    lp = ca.dot(lam, p.stage(w, x))
    return ca.Function("vjp", [w, x, lam], [ca.gradient(lp, w), ca.gradient(lp, x)])


def _trig_calls(fn):
    import casadi as ca

    ids = [fn.instruction_id(k) for k in range(fn.n_instructions())]
    return sum(1 for i in ids if i in (ca.OP_SIN, ca.OP_COS, ca.OP_TAN))


def trajectory_angles(p, w):
    """Angles at which the stage evaluates sin/cos along the benchmark trajectory (column 0
    for the pendulum, column 1 (theta) for the cart-pole), for representative latencies."""
    X = p.chain.forward(w)[1]
    col = 0 if p.plant.name == "pendulum" else 1
    return X[:, col]


def stage_floor(p, w=None, lat=None, n: int = 2_000_000):
    """Floor in ns/stage of forward + gradient backward for problem ``p``.

    Returns a dict with the op counts on each critical cycle, the latencies used, and
    ``forward_ns``, ``backward_ns``, ``total_ns``.
    """
    if lat is None:
        args = None if w is None else trajectory_angles(p, w)
        lat = op_latencies(args, n=n)
    fwd, bwd = stage_functions(p)
    f_ns, f_ops = chain_floor(dependency_matrix(fwd, 1, lat), lat)
    b_ns, b_ops = chain_floor(dependency_matrix(bwd, 2, lat), lat)
    # not a floor, an explanation: trigonometric calls per stage as the kernels run them
    # (forward phi; backward the full VJP, which recomputes the stage's trigonometry from
    # the stored state) times their measured throughput
    f_trig, b_trig = _trig_calls(fwd), _trig_calls(vjp_function(p))
    tp = 0.5 * (lat["sin_tp"] + lat["cos_tp"])
    m_ns, m_ops = moreau_floor(p, lat)
    return {"latency_ns": lat, "forward_ops": f_ops, "backward_ops": b_ops,
            "moreau_backward_ns": m_ns, "moreau_backward_ops": m_ops,
            "forward_ns": f_ns, "backward_ns": b_ns, "total_ns": f_ns + b_ns,
            "forward_trig_calls": f_trig, "backward_trig_calls": b_trig,
            "forward_trig_throughput_ns": f_trig * tp, "backward_trig_throughput_ns": b_trig * tp,
            "forward_instructions": int(fwd.n_instructions()),
            "backward_instructions": int(bwd.n_instructions())}


def moreau_function(p, c: float = 0.5):
    """``lam_t -> lam_{t-1}``: the state line of the Moreau pass (MBP, inner "paper") on the
    path the kernels take on almost every stage, where the Goldstein search accepts its
    first (unit) trial. With ``g0 = c dphi/dx(w, x)^T lam``, ``y = -g0`` and
    ``q = c dphi/dx(w, x + y)^T lam + y`` (the subproblem gradient at ``y``), the
    Barzilai-Borwein step gives ``lam_{t-1} = g0 + (y.y / y.(q - g0)) q``. The Goldstein
    test itself (a stage value at ``x + y``) only steers a predicted branch, so it is off
    the data dependency chain. ``c`` is a numeric step (its value does not change the ops).
    """
    import casadi as ca

    w = ca.SX.sym("w", p.nw)
    x = ca.SX.sym("x", p.nx)
    lam = ca.SX.sym("lam", p.nx)

    z = ca.SX.sym("z", p.nx)
    zl = ca.SX.sym("zl", p.nx)
    vjp = ca.Function("vjp_x", [w, z, zl], [ca.gradient(ca.dot(zl, p.stage(w, z)), z)])

    def vjp_x(at):
        return vjp(w, at, lam)

    g0 = c * vjp_x(x)
    y = -g0
    q = c * vjp_x(x + y) + y
    bb = ca.dot(y, y) / ca.dot(y, q - g0)
    return ca.Function("moreau_x", [w, x, lam], [g0 + bb * q])


def moreau_floor(p, lat):
    """Floor in ns/stage of the Moreau backward pass (:func:`moreau_function`'s carried
    chain), sin and cos of one argument counted as one ``sincos`` call."""
    lat2 = dict(lat, sin=lat["sincos"], cos=lat["sincos"])
    ns, ops = chain_floor(dependency_matrix(moreau_function(p), 2, lat2), lat2)
    ops = {("sincos" if k in ("sin", "cos") else k): v for k, v in ops.items()}
    return ns, ops


def main(argv=None):
    import sys
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peers

    ap = argparse.ArgumentParser(description="Dependency-chain floor of one stage.")
    ap.add_argument("--plant", default="pendulum", choices=sorted(peers.PLANTS))
    ap.add_argument("--T", type=int, default=10000)
    a = ap.parse_args(argv)
    p = peers.make_problem(a.plant, a.T)
    res = stage_floor(p, peers.controls(p))
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
