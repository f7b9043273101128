"""The tools measured by the benchmark suite: moreauctl and its peers.

Every tool is built for one problem (a :class:`moreauctl.ControlProblem`, pendulum with
Euler or cart-pole with RK4) and returns an :class:`Evaluator` whose ``grad(w)`` computes
the objective ``h(x_T)`` and its gradient with respect to the controls ``w`` (shape
``(T, nw)``): one forward and one backward pass.

The peers implement the same dynamics as moreauctl, read from the problem (``dt``, scheme,
plant parameters, ``x0``), and their gradients are checked against moreauctl's in every
run (``max_rel_diff`` in the results), so a peer that computed something else would show.

Tools (``TOOLS`` below):

``moreauctl``    the public oracles: ``GradientOracle(p.chain)(w)``, ``MoreauOracle(...)``
                 (alpha = 1, gamma = 0.5 per second of simulated time: ``moreau_gamma``)
``casadi_sx``    ``p.casadi_rollout()`` (one SX Function of the whole rollout), its reverse
                 gradient ``ca.gradient``, evaluated by CasADi's virtual machine on a DM
``casadi_mx``    ``p.stage.mapaccum`` over ``T`` stages as MX, reverse gradient, CasADi's VM
``casadi_c``     the C that CasADi generates for the ``casadi_sx`` gradient Function,
                 compiled by gcc into a shared library and loaded with ``ca.external``
``jax``          ``jit(value_and_grad)`` over ``lax.scan``, float64, CPU
``torch``        autograd over a Python loop of float64 scalar tensors
``numpy``        a plain Python loop over NumPy arrays with a hand-written adjoint
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

__all__ = ["TOOLS", "PLANTS", "make_problem", "Evaluator", "availability", "build"]

#: plant name -> (factory name in moreauctl.models, total time in seconds); dt = total / T
PLANTS = {"pendulum": ("pendulum_swingup", 10.0), "cartpole": ("cartpole_swingup", 5.0)}

TOOLS = ("moreauctl", "casadi_sx", "casadi_mx", "casadi_c", "jax", "torch", "numpy")

LABELS = {
    "moreauctl": "moreauctl (numba kernels)",
    "casadi_sx": "CasADi SX, VM, reverse",
    "casadi_mx": "CasADi MX mapaccum, reverse",
    "casadi_c": "CasADi SX -> C, gcc",
    "jax": "JAX jit(grad) over lax.scan",
    "torch": "PyTorch autograd, Python loop",
    "numpy": "NumPy loop, hand adjoint",
}


def make_problem(plant: str, T: int):
    """The benchmark problem: fixed total time (10 s pendulum, 5 s cart-pole), dt = total/T."""
    from moreauctl import models

    factory, total = PLANTS[plant]
    return getattr(models, factory)(horizon=T, dt=total / T)


def controls(p, seed: int = 0) -> np.ndarray:
    """Random controls, shape (T, nw): small torques/forces so every tool stays finite."""
    return np.random.default_rng(seed).normal(scale=0.1, size=(p.horizon, p.nw))


@dataclass
class Evaluator:
    """A built tool. ``grad(w) -> (cost, G)`` with ``G`` of shape (T, nw).

    ``build_s`` is the time spent building (graphs, code generation, compilation) before the
    first evaluation; ``first_s`` the first evaluation itself (JIT compilation for JAX).
    ``extra`` holds tool-specific timings (e.g. gcc's compile time) and notes.
    ``moreau``, when set, computes one Moreau direction (moreauctl only).
    """

    grad: Callable
    build_s: float = 0.0
    first_s: float = 0.0
    extra: Dict = field(default_factory=dict)
    moreau: Optional[Callable] = None


def availability(tool: str):
    """``(True, version)`` if the tool can run here, else ``(False, reason)``."""
    if tool in ("moreauctl", "casadi_sx", "casadi_mx", "numpy"):
        import casadi

        return True, f"casadi {casadi.__version__}"
    if tool == "casadi_c":
        cc = os.environ.get("CC", "gcc")
        if shutil.which(cc) is None:
            return False, f"no C compiler ({cc}) on PATH"
        out = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        return True, out.splitlines()[0] if out else cc
    mod = {"jax": "jax", "torch": "torch"}[tool]
    if importlib.util.find_spec(mod) is None:
        return False, f"{mod} is not installed (pip install -e '.[bench]')"
    m = __import__(mod)
    return True, f"{mod} {m.__version__}"


# -------------------------------------------------------------------------------------------
# moreauctl


#: Moreau oracle of the benchmark: alpha = 1 and the paper's geometric schedule with gamma
#: given per second of simulated time, gamma_stage = MOREAU_GAMMA_PER_SECOND ** dt, so the
#: problem stays the same as T grows at fixed total time (a per-stage 0.99 would shrink the
#: costates by 0.99^T: below 1e-308 after ~70,000 stages, where they become exactly zero and
#: the pass takes its cheap exit on most stages).
MOREAU_GAMMA_PER_SECOND = 0.5


def moreau_gamma(p):
    return MOREAU_GAMMA_PER_SECOND ** p.dt


def _build_moreauctl(p, w):
    from moreauctl.oracles import GradientOracle, MoreauOracle

    t = time.perf_counter()
    chain = p.chain  # code generation + JIT, or the disk cache
    build_s = time.perf_counter() - t
    grad_o = GradientOracle(chain)
    mor_o = MoreauOracle(chain, alpha=1.0, gamma=moreau_gamma(p))

    def grad(w):
        out, _ = grad_o(w)
        return out.cost, out.gradient.reshape(w.shape)

    def moreau(w):
        out, _ = mor_o(w)
        return out.cost, out.info["g"].reshape(w.shape)

    return Evaluator(grad=grad, build_s=build_s, moreau=moreau,
                     extra={"moreau_oracle": mor_o})


# -------------------------------------------------------------------------------------------
# CasADi


def _sx_gradient_function(p):
    import casadi as ca

    T, nw = p.horizon, p.nw
    J = p.casadi_rollout()
    W = ca.SX.sym("W", T * nw)
    Jw = J(W)
    return ca.Function("gJ", [W], [Jw, ca.gradient(Jw, W)], ["W"], ["J", "g"])


def _wrap_casadi(fn, T, nw):
    import casadi as ca

    def grad(w):
        # a ready DM: the conversion from NumPy is paid by the caller (see wrap_input)
        J, g = fn(w)
        return float(J), g

    def wrap_input(w):
        return ca.DM(np.ascontiguousarray(w).reshape(T * nw, 1))

    def to_numpy(g):
        return np.asarray(g).reshape(T, nw)

    return grad, wrap_input, to_numpy


def _build_casadi_sx(p, w):
    t = time.perf_counter()
    fn = _sx_gradient_function(p)
    build_s = time.perf_counter() - t
    grad, wrap, to_np = _wrap_casadi(fn, p.horizon, p.nw)
    return Evaluator(grad=grad, build_s=build_s,
                     extra={"wrap_input": wrap, "to_numpy": to_np,
                            "n_instructions": int(fn.n_instructions())})


def _build_casadi_mx(p, w):
    import casadi as ca

    T, nw = p.horizon, p.nw
    t = time.perf_counter()
    roll = p.stage.mapaccum("roll", T, ["x"], ["x_next"])
    W = ca.MX.sym("W", nw, T)
    X = roll(w=W, x=ca.DM(p.x0_chain))["x_next"]
    J = p.objective(X[:, -1])
    fn = ca.Function("gJ", [W], [J, ca.gradient(J, W)], ["W"], ["J", "g"])
    build_s = time.perf_counter() - t

    def grad(wdm):
        J, g = fn(wdm)
        return float(J), g

    def wrap(w):
        return ca.DM(np.ascontiguousarray(w).T)  # (nw, T): stage t is column t

    def to_np(g):
        return np.asarray(g).T.reshape(T, nw)

    return Evaluator(grad=grad, build_s=build_s, extra={"wrap_input": wrap, "to_numpy": to_np})


def _build_casadi_c(p, w, cflags=("-O1",), workdir=None):
    import casadi as ca

    T, nw = p.horizon, p.nw
    t = time.perf_counter()
    fn = _sx_gradient_function(p)
    graph_s = time.perf_counter() - t
    d = workdir or tempfile.mkdtemp(prefix="mc_bench_c_")
    src = os.path.join(d, f"gJ_{T}.c")
    lib = os.path.join(d, f"gJ_{T}.so")
    t = time.perf_counter()
    cg = ca.CodeGenerator(f"gJ_{T}.c", {"with_header": False})
    cg.add(fn)
    cg.generate(d + os.sep)
    gen_s = time.perf_counter() - t
    cc = os.environ.get("CC", "gcc")
    t = time.perf_counter()
    subprocess.run([cc, *cflags, "-shared", "-fPIC", src, "-o", lib, "-lm"], check=True,
                   capture_output=True)
    compile_s = time.perf_counter() - t
    ext = ca.external("gJ", lib)
    grad, wrap, to_np = _wrap_casadi(ext, T, nw)
    return Evaluator(grad=grad, build_s=graph_s + gen_s + compile_s,
                     extra={"wrap_input": wrap, "to_numpy": to_np, "graph_s": graph_s,
                            "codegen_s": gen_s, "gcc_s": compile_s, "cflags": " ".join(cflags),
                            "c_bytes": os.path.getsize(src), "workdir": d})


# -------------------------------------------------------------------------------------------
# Hand-written dynamics shared by the NumPy, JAX and PyTorch peers.
# Each plant is f(x, u) -> dx/dt written with a namespace `m` (math/numpy, jax.numpy, torch)
# so the three peers run the same formulas as moreauctl's CasADi model.


def _pendulum_rhs(params):
    g, l, mu, mass = params["g"], params["l"], params["mu"], params["m"]
    ml2 = mass * l * l

    def f(m, x, u):
        th, om = x
        return (om, -g / l * m.sin(th) - mu / ml2 * om + u[0] / ml2)

    return f


def _cartpole_rhs(params):
    mc_, mp, l, g = params["m_cart"], params["m_pole"], params["l"], params["g"]
    mt = mc_ + mp

    def f(m, x, u):
        _p, th, v, om = x
        F = u[0]
        s, c = m.sin(th), m.cos(th)
        th_dd = (g * s + c * (-F - mp * l * om ** 2 * s) / mt) / (l * (4.0 / 3.0 - mp * c ** 2 / mt))
        p_dd = (F + mp * l * (om ** 2 * s - th_dd * c)) / mt
        return (v, om, p_dd, th_dd)

    return f


def _rhs(p):
    return {"pendulum": _pendulum_rhs, "cartpole": _cartpole_rhs}[p.plant.name](p.plant.params)


def _objective(p):
    """h(x) as written in moreauctl.models, for the hand-written peers."""
    if p.plant.name == "pendulum":
        return lambda x: (x[0] - math.pi) ** 2 + 0.1 * x[1] ** 2
    return lambda x: x[1] ** 2 + 0.1 * x[0] ** 2 + 0.1 * (x[2] ** 2 + x[3] ** 2)


def _step(f, scheme, dt):
    """One step of the scheme on tuples of scalars/tensors (same formulas as discretize.py)."""
    def axpy(a, xs, ys):
        return tuple(x + a * y for x, y in zip(xs, ys))

    if scheme == "euler":
        def step(m, x, u):
            return axpy(dt, x, f(m, x, u))
    elif scheme == "rk4":
        def step(m, x, u):
            k1 = f(m, x, u)
            k2 = f(m, axpy(0.5 * dt, x, k1), u)
            k3 = f(m, axpy(0.5 * dt, x, k2), u)
            k4 = f(m, axpy(dt, x, k3), u)
            return tuple(xi + (dt / 6.0) * (a + 2.0 * b + 2.0 * c + d)
                         for xi, a, b, c, d in zip(x, k1, k2, k3, k4))
    else:
        raise ValueError(f"scheme {scheme!r} has no hand-written peer; expected 'euler' or 'rk4'")
    return step


# -------------------------------------------------------------------------------------------
# NumPy: a Python loop over float64 arrays with a hand-written adjoint (VJPs of f by hand,
# then the reverse sweep of the scheme).


def _pendulum_vjp(params):
    g, l, mu, mass = params["g"], params["l"], params["mu"], params["m"]
    ml2 = mass * l * l

    def vjp(x, u, a):
        """a = (a_th, a_om) -> (d f/dx^T a (2,), d f/du^T a (1,))."""
        return (np.array([-g / l * np.cos(x[0]) * a[1], a[0] - mu / ml2 * a[1]]),
                np.array([a[1] / ml2]))

    return vjp


def _cartpole_vjp(params):
    mc_, mp, l, g = params["m_cart"], params["m_pole"], params["l"], params["g"]
    mt = mc_ + mp

    def vjp(x, u, a):
        _p, th, v, om = x
        F = u[0]
        s, c = np.sin(th), np.cos(th)
        Q = -F - mp * l * om * om * s
        N = g * s + c * Q / mt
        D = l * (4.0 / 3.0 - mp * c * c / mt)
        th_dd = N / D
        b_pdd = a[2]
        b_thdd = a[3] - b_pdd * mp * l * c / mt
        b_F = b_pdd / mt
        b_om = b_pdd * mp * l * 2.0 * om * s / mt
        b_s = b_pdd * mp * l * om * om / mt
        b_c = -b_pdd * mp * l * th_dd / mt
        b_N = b_thdd / D
        b_D = -b_thdd * th_dd / D
        b_s += b_N * g
        b_c += b_N * Q / mt
        b_Q = b_N * c / mt
        b_F -= b_Q
        b_om -= b_Q * mp * l * 2.0 * om * s
        b_s -= b_Q * mp * l * om * om
        b_c -= b_D * l * mp * 2.0 * c / mt
        b_th = b_s * c - b_c * s
        return np.array([0.0, b_th, a[0], a[1] + b_om]), np.array([b_F])

    return vjp


def _build_numpy(p, w):
    t = time.perf_counter()
    T, nx, nw, dt = p.horizon, p.nx, p.nw, p.dt
    f_s = _rhs(p)
    f = lambda x, u: np.array(f_s(np, x, u))  # noqa: E731
    vjp = {"pendulum": _pendulum_vjp, "cartpole": _cartpole_vjp}[p.plant.name](p.plant.params)
    x0 = np.array(p.x0_chain)
    if p.plant.name == "pendulum":
        h_grad = lambda x: np.array([2.0 * (x[0] - math.pi), 0.2 * x[1]])  # noqa: E731
    else:
        h_grad = lambda x: np.array([0.2 * x[0], 2.0 * x[1], 0.2 * x[2], 0.2 * x[3]])  # noqa: E731
    h = _objective(p)
    scheme = p.scheme

    def grad(w):
        X = np.empty((T + 1, nx))
        X[0] = x0
        if scheme == "euler":
            for t in range(T):
                X[t + 1] = X[t] + dt * f(X[t], w[t])
        else:
            for t in range(T):
                x, u = X[t], w[t]
                k1 = f(x, u)
                k2 = f(x + 0.5 * dt * k1, u)
                k3 = f(x + 0.5 * dt * k2, u)
                k4 = f(x + dt * k3, u)
                X[t + 1] = x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        G = np.empty((T, nw))
        lam = h_grad(X[T])
        for t in range(T - 1, -1, -1):
            x, u = X[t], w[t]
            if scheme == "euler":
                ax, au = vjp(x, u, lam)
                lam = lam + dt * ax
                G[t] = dt * au
            else:  # reverse sweep of RK4 (recompute the stages)
                k1 = f(x, u)
                x2 = x + 0.5 * dt * k1
                k2 = f(x2, u)
                x3 = x + 0.5 * dt * k2
                k3 = f(x3, u)
                x4 = x + dt * k3
                b4 = (dt / 6.0) * lam
                b3 = (dt / 3.0) * lam
                b2 = (dt / 3.0) * lam
                b1 = (dt / 6.0) * lam
                bx = lam.copy()
                ax, bu = vjp(x4, u, b4)
                bx += ax
                b3 = b3 + dt * ax
                ax, au = vjp(x3, u, b3)
                bx += ax
                b2 = b2 + 0.5 * dt * ax
                bu = bu + au
                ax, au = vjp(x2, u, b2)
                bx += ax
                b1 = b1 + 0.5 * dt * ax
                bu = bu + au
                ax, au = vjp(x, u, b1)
                bx += ax
                bu = bu + au
                lam = bx
                G[t] = bu
        return float(h(X[T])), G

    return Evaluator(grad=grad, build_s=time.perf_counter() - t)


# -------------------------------------------------------------------------------------------
# JAX


def _build_jax(p, w):
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import jax.numpy as jnp

    t = time.perf_counter()
    f = _rhs(p)
    step = _step(f, p.scheme, p.dt)
    h = _objective(p)
    x0 = tuple(float(v) for v in p.x0_chain)

    def loss(w):
        def body(x, u):
            return step(jnp, x, u), None

        xT, _ = jax.lax.scan(body, tuple(jnp.asarray(v) for v in x0), w)
        return h(xT)

    vg = jax.jit(jax.value_and_grad(loss))
    build_s = time.perf_counter() - t

    def grad(wj):
        J, g = vg(wj)
        g.block_until_ready()
        return J, g

    return Evaluator(grad=grad, build_s=build_s,
                     extra={"wrap_input": lambda w: jax.device_put(jnp.asarray(w)),
                            "to_numpy": lambda g: np.asarray(g),
                            "device": str(jax.devices()[0])})


# -------------------------------------------------------------------------------------------
# PyTorch


def _build_torch(p, w):
    import torch

    t = time.perf_counter()
    f = _rhs(p)
    step = _step(f, p.scheme, p.dt)
    h = _objective(p)
    x0 = [float(v) for v in p.x0_chain]
    T = p.horizon

    def grad(w):
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        us = [(u,) for u in wt[:, 0].unbind()]  # one view op, one backward stack (not T)
        x = tuple(torch.tensor(v, dtype=torch.float64) for v in x0)
        for k in range(T):
            x = step(torch, x, us[k])
        J = h(x)
        J.backward()
        return float(J.detach()), wt.grad.numpy()

    return Evaluator(grad=grad, build_s=time.perf_counter() - t,
                     extra={"threads": torch.get_num_threads()})


_BUILDERS = {
    "moreauctl": _build_moreauctl,
    "casadi_sx": _build_casadi_sx,
    "casadi_mx": _build_casadi_mx,
    "casadi_c": _build_casadi_c,
    "jax": _build_jax,
    "torch": _build_torch,
    "numpy": _build_numpy,
}


def build(tool: str, p, w, **kw) -> Evaluator:
    """Build ``tool`` for problem ``p`` (controls ``w`` only fix shapes) and time the first
    evaluation. The returned evaluator's ``grad`` takes the tool's native input, made by
    ``ev.extra["wrap_input"](w)`` when present (DM for CasADi, a device array for JAX):
    conversions are not timed."""
    if tool not in _BUILDERS:
        raise ValueError(f"unknown tool {tool!r}; choose one of {list(TOOLS)}")
    ev = _BUILDERS[tool](p, w, **kw)
    x = native_input(ev, w)
    t = time.perf_counter()
    ev.grad(x)
    ev.first_s = time.perf_counter() - t
    return ev


def native_input(ev: Evaluator, w):
    wrap = ev.extra.get("wrap_input")
    return wrap(w) if wrap is not None else w


def gradient_numpy(ev: Evaluator, w):
    """(cost, G as an ndarray (T, nw)) for comparing tools."""
    J, g = ev.grad(native_input(ev, w))
    conv = ev.extra.get("to_numpy")
    return float(J), (conv(g) if conv is not None else np.asarray(g))
