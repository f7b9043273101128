"""Tests of moreauctl.codegen: CasADi SX Function -> numba kernels.

Reference for every numeric comparison: CasADi's own VM evaluation (``fn.call(...)``),
i.e. the ``fcn`` definitions in casadi/core/calculus.hpp as compiled into the casadi wheel.
Metric: ``max|a - b| / max(1, max|b|)`` over the flattened (column-major) outputs.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import casadi as ca
import numpy as np
import pytest

from moreauctl.codegen import SUPPORTED_OPS, UnsupportedOperationError, build_module, translate
from moreauctl.codegen.translate import float_literal, op_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RTOL = 1e-12
N_SAMPLES = 20
# Ops the walker handles itself. OP_ASSIGN is never emitted into an SX instruction list by
# casadi 3.8 (SX.unary(OP_ASSIGN, x) simplifies to x), so it cannot be covered.
STRUCTURAL = frozenset({"OP_INPUT", "OP_OUTPUT", "OP_CONST", "OP_ASSIGN"})


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max|a-b| / max(1, max|b|); reference b is CasADi's own VM evaluation."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def ops_of(fn: ca.Function) -> set:
    """Names of the ops in an SX Function's instruction list."""
    return {op_name(fn.instruction_id(k)) for k in range(fn.n_instructions())}


def casadi_outputs(fn: ca.Function, inputs) -> list:
    """CasADi VM evaluation, each output densified and flattened column-major."""
    return [np.asarray(ca.DM(r).full()).ravel(order="F") for r in fn.call(list(inputs))]


def kernel_outputs(kernel, fn: ca.Function, inputs) -> list:
    """Call a generated kernel; outputs start as NaN so unwritten entries show up."""
    outs = [np.full(fn.numel_out(k), np.nan) for k in range(fn.n_out())]
    kernel(*[np.ascontiguousarray(v, dtype=float) for v in inputs], *outs)
    return outs


def assert_same_values(got: np.ndarray, ref: np.ndarray, context: str) -> None:
    """NaN where the reference is NaN, equal infinities, finite entries within RTOL."""
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    bad_nan = np.isnan(got) != np.isnan(ref)
    assert not bad_nan.any(), f"{context}: NaN mismatch at {np.flatnonzero(bad_nan)}"
    inf = np.isinf(ref)
    assert np.array_equal(got[inf], ref[inf]), f"{context}: infinities differ"
    fin = np.isfinite(ref)
    assert np.all(np.isfinite(got[fin])), f"{context}: finite reference, non-finite result"
    assert rel_err(got[fin], ref[fin]) <= RTOL, f"{context}: rel err {rel_err(got[fin], ref[fin])}"


# ---------------------------------------------------------------------------------------
# the test plant: every supported op, arguments kept in valid domains
# ---------------------------------------------------------------------------------------

NX, NW = 4, 3
x = ca.SX.sym("x", NX)
w = ca.SX.sym("w", NW)


def _plant_expr() -> ca.SX:
    """Right-hand side using every op in SUPPORTED_OPS.

    Sampling domain (see :func:`sample`): x in (-0.9, 0.9), w in (0.5, 2).
    """
    x0, x1, x2, x3 = (x[i] for i in range(NX))
    w0, w1, w2 = (w[i] for i in range(NW))
    terms = [
        x0 + x1, x0 - x2, x1 * x3, x2 / w1, -x3,                      # ADD SUB MUL DIV NEG
        ca.sin(x0), ca.cos(x1), ca.tan(x2),                           # SIN COS TAN
        ca.asin(x0), ca.acos(x1), ca.atan(x2 * w0), ca.atan2(x0, w1),  # ASIN ACOS ATAN ATAN2
        ca.sinh(x1), ca.cosh(x2), ca.tanh(x3),                        # SINH COSH TANH
        ca.asinh(x0 * w0), ca.acosh(1 + w0), ca.atanh(x3),            # ASINH ACOSH ATANH
        ca.exp(x0), ca.log(w0), ca.log1p(x1), ca.expm1(x2),           # EXP LOG LOG1P EXPM1
        ca.sqrt(w1),                                                  # SQRT
        w0 ** 3.5,                                                    # CONSTPOW
        w1 ** x0,                                                     # POW
        1 / w2, x3 ** 2, 2 * x0,                                      # INV SQ TWICE
        ca.fabs(x0), ca.sign(x1),                                     # FABS SIGN
        ca.floor(3 * x2), ca.ceil(3 * x3),                            # FLOOR CEIL
        ca.fmod(3 * x0, w1), ca.remainder(3 * x1, w2),                # FMOD REMAINDER
        ca.fmin(x0, x1), ca.fmax(x2, x3),                             # FMIN FMAX
        ca.if_else(x0 < x1, ca.sin(x2), w0),                          # LT IF_ELSE_ZERO NOT
        x0 <= x2, x1 != x3,                                           # LE NE
        ca.floor(3 * x0) == ca.floor(3 * x1),                         # EQ
        ca.logic_and(x0 < x1, x2 < x3), ca.logic_or(x0 < x2, x1 < x3),  # AND OR
        ca.erf(x0), ca.erfinv(x1),                                    # ERF ERFINV
        ca.hypot(x0, w0), ca.copysign(w0, x1),                        # HYPOT COPYSIGN
        x2.printme(0),                                                # PRINTME
        0.1 * x0 + 1.0 / 3.0,                                         # CONST (non-representable)
    ]
    return ca.vertcat(*terms)


def sample(rng: np.random.Generator):
    """One random input pair (x, w) inside the plant's domain."""
    return rng.uniform(-0.9, 0.9, NX), rng.uniform(0.5, 2.0, NW)


def _plant_functions() -> dict:
    """Kernel name -> SX Function: the plant, its (sparse) Jacobians and two vjps."""
    f = _plant_expr()
    lam = ca.SX.sym("lam", f.numel())
    jac_x = ca.jacobian(f, x)
    return {
        "plant": ca.Function("plant", [x, w], [f]),
        "plant_jac": ca.Function("plant_jac", [x, w], [jac_x, ca.jacobian(f, w)]),
        "plant_vjp": ca.Function("plant_vjp", [x, w, lam], [ca.jtimes(f, x, lam, True)]),
        "plant_vjp_mat": ca.Function(
            "plant_vjp_mat", [x, w, lam], [ca.mtimes(jac_x.T, lam), ca.mtimes(ca.jacobian(f, w).T, lam)]
        ),
    }


PLANT = _plant_functions()


@pytest.fixture(scope="module")
def plant_module(tmp_path_factory):
    return build_module(PLANT, cache_dir=str(tmp_path_factory.mktemp("plant_cache")), tag="plant")


# ---------------------------------------------------------------------------------------
# op coverage and numerics
# ---------------------------------------------------------------------------------------


def test_plant_covers_every_supported_op():
    present = set().union(*(ops_of(fn) for fn in PLANT.values()))
    missing = (SUPPORTED_OPS - STRUCTURAL) - present
    assert not missing, f"test plant does not exercise {sorted(missing)}"
    assert {"OP_INPUT", "OP_OUTPUT", "OP_CONST"} <= present
    # and nothing outside the supported set sneaks in
    assert present <= SUPPORTED_OPS, sorted(present - SUPPORTED_OPS)


def test_jacobian_output_is_structurally_sparse():
    sp = PLANT["plant_jac"].sparsity_out(0)
    assert 0 < sp.nnz() < sp.numel()  # otherwise the zero-fill path is not tested


@pytest.mark.parametrize("name", sorted(PLANT))
def test_kernels_match_casadi_on_random_inputs(plant_module, name):
    fn = PLANT[name]
    kernel = getattr(plant_module, name)
    rng = np.random.default_rng(1234)
    for _ in range(N_SAMPLES):
        xs, ws = sample(rng)
        inputs = [xs, ws] + ([rng.standard_normal(fn.numel_in(2))] if fn.n_in() == 3 else [])
        for k, (got, ref) in enumerate(zip(kernel_outputs(kernel, fn, inputs), casadi_outputs(fn, inputs))):
            assert not np.isnan(got).any()
            assert rel_err(got, ref) <= RTOL, f"{name} output {k}: rel err {rel_err(got, ref)}"


def test_vjp_forms_agree(plant_module):
    """jtimes(f, x, lam, True) and jacobian(f, x).T @ lam are the same vector."""
    rng = np.random.default_rng(7)
    xs, ws = sample(rng)
    lam = rng.standard_normal(PLANT["plant"].numel_out(0))
    a = kernel_outputs(plant_module.plant_vjp, PLANT["plant_vjp"], [xs, ws, lam])[0]
    b = kernel_outputs(plant_module.plant_vjp_mat, PLANT["plant_vjp_mat"], [xs, ws, lam])[0]
    assert rel_err(a, b) <= RTOL


# Special values: every elementwise op applied straight to two scalar symbols, evaluated
# on a grid that includes 0, -0, ties, domain edges, subnormals, +-inf and NaN.
a_sym, b_sym = ca.SX.sym("a"), ca.SX.sym("b")
UNARY_SPECIAL = [
    ca.sin, ca.cos, ca.tan, ca.asin, ca.acos, ca.atan, ca.sinh, ca.cosh, ca.tanh, ca.asinh,
    ca.acosh, ca.atanh, ca.exp, ca.log, ca.log1p, ca.expm1, ca.sqrt, ca.fabs, ca.sign,
    ca.floor, ca.ceil, ca.erf, ca.erfinv, ca.logic_not, lambda v: -v, lambda v: 1 / v,
    lambda v: v ** 2, lambda v: 2 * v, lambda v: v ** 0.3, lambda v: v ** -2.5,
]
BINARY_SPECIAL = [
    lambda p, q: p + q, lambda p, q: p - q, lambda p, q: p * q, lambda p, q: p / q,
    lambda p, q: p ** q, ca.atan2, ca.hypot, ca.copysign, ca.fmod, ca.remainder, ca.fmin,
    ca.fmax, lambda p, q: p < q, lambda p, q: p <= q, lambda p, q: p == q,
    lambda p, q: p != q, ca.logic_and, ca.logic_or, lambda p, q: ca.if_else(p, q, 0),
]
SPECIAL = ca.Function(
    "special", [a_sym, b_sym],
    [ca.vertcat(*[f(a_sym) for f in UNARY_SPECIAL], *[f(a_sym, b_sym) for f in BINARY_SPECIAL])],
)
SPECIAL_VALUES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.5, 0.7, -0.7, 0.69,
                  -0.75, 0.99, -0.99, 5e-324, 1e300, -1e300, math.inf, -math.inf, math.nan]


def test_special_values_match_casadi(tmp_path):
    mod = build_module({"special": SPECIAL}, cache_dir=str(tmp_path))
    for a in SPECIAL_VALUES:
        for b in SPECIAL_VALUES:
            got = kernel_outputs(mod.special, SPECIAL, [[a], [b]])[0]
            ref = casadi_outputs(SPECIAL, [a, b])[0]
            assert_same_values(got, ref, f"special(a={a!r}, b={b!r})")


def test_sign_of_zero_and_nan_semantics(tmp_path):
    """CasADi specifics: sign(0)=0, fmin/fmax skip a NaN, if_else_zero(nan, y)=y."""
    s = ca.SX.sym("s", 2)
    fn = ca.Function("sem", [s], [ca.vertcat(ca.sign(s[0]), ca.fmin(s[0], s[1]), ca.fmax(s[0], s[1]),
                                             ca.if_else(s[0], s[1], 0))])
    mod = build_module({"sem": fn}, cache_dir=str(tmp_path))
    out = kernel_outputs(mod.sem, fn, [[0.0, 2.0]])[0]
    assert list(out) == [0.0, 0.0, 2.0, 0.0]
    out = kernel_outputs(mod.sem, fn, [[math.nan, 2.0]])[0]
    assert math.isnan(out[0]) and out[1] == 2.0 and out[2] == 2.0 and out[3] == 2.0


def test_constants_round_trip_exactly(tmp_path):
    c = ca.SX.sym("c")
    consts = [0.1, 1.0 / 3.0, 1e-300, 5e-324, -2.5e17, math.pi]
    fn = ca.Function("consts", [c], [ca.vertcat(*[c * v for v in consts], c + math.inf)])
    mod = build_module({"consts": fn}, cache_dir=str(tmp_path))
    got = kernel_outputs(mod.consts, fn, [[1.0]])[0]
    assert list(got[:-1]) == consts and got[-1] == math.inf
    assert float_literal(math.nan) == "math.nan"
    assert float_literal(-math.inf) == "(-math.inf)"
    assert float_literal(0.1) == "0.1" and float_literal(-0.0) == "-0.0"


def test_generated_source_is_plain_python_without_numba():
    """The emitted function runs as ordinary Python (math/np in scope) and agrees."""
    src = translate(PLANT["plant_jac"], "kern")
    assert src.startswith("def kern(i0, i1, o0, o1):") and "@" not in src.splitlines()[0]
    namespace = {"math": math, "np": np}
    exec(compile(src, "<generated>", "exec"), namespace)
    xs, ws = sample(np.random.default_rng(3))
    fn = PLANT["plant_jac"]
    for got, ref in zip(kernel_outputs(namespace["kern"], fn, [xs, ws]), casadi_outputs(fn, [xs, ws])):
        assert rel_err(got, ref) <= RTOL


def test_outputs_may_alias_inputs(tmp_path):
    """All inputs are read before the first output write, so f(x, out=x) is safe."""
    v = ca.SX.sym("v", 3)
    fn = ca.Function("roll", [v], [ca.vertcat(v[2], v[0] * v[1], ca.sin(v[0]))])
    mod = build_module({"roll": fn}, cache_dir=str(tmp_path))
    buf = np.array([0.3, -1.2, 2.0])
    ref = casadi_outputs(fn, [buf.copy()])[0]
    mod.roll(buf, buf)
    assert rel_err(buf, ref) <= RTOL


def test_matrix_output_is_column_major(tmp_path):
    v = ca.SX.sym("v", 2)
    m = ca.horzcat(ca.vertcat(v[0], v[1], 1), ca.vertcat(2 * v[0], 0, v[1] ** 2))  # 3x2
    fn = ca.Function("mat", [v], [m])
    mod = build_module({"mat": fn}, cache_dir=str(tmp_path))
    got = kernel_outputs(mod.mat, fn, [[3.0, 4.0]])[0]
    assert got.shape == (6,)
    np.testing.assert_array_equal(got, [3.0, 4.0, 1.0, 6.0, 0.0, 16.0])


def test_unused_and_empty_inputs(tmp_path):
    v, u, e = ca.SX.sym("v", 2), ca.SX.sym("u", 3), ca.SX.sym("e", 0, 1)
    fn = ca.Function("partial", [v, u, e], [v[0] * 2])
    mod = build_module({"partial": fn}, cache_dir=str(tmp_path))
    out = np.empty(1)
    mod.partial(np.array([1.5, 0.0]), np.zeros(3), np.zeros(0), out)
    assert out[0] == 3.0


def test_extra_source_loop_calls_generated_kernel(tmp_path):
    v, p = ca.SX.sym("v", 2), ca.SX.sym("p", 1)
    step = ca.Function("step", [v, p], [ca.vertcat(v[0] + 0.1 * v[1], v[1] - 0.1 * ca.sin(v[0]) + p)])
    extra = textwrap.dedent(
        """
        @_jit
        def rollout(X, U):
            for t in range(U.shape[0]):
                _step(X[t], U[t], X[t + 1])
        """
    )
    mod = build_module({"_step": step}, extra_source=extra, cache_dir=str(tmp_path))
    U = np.linspace(-1, 1, 10).reshape(10, 1)
    X = np.zeros((11, 2))
    X[0] = [0.5, 0.0]
    mod.rollout(X, U)
    ref = X[0].copy()
    for t in range(10):
        ref = casadi_outputs(step, [ref, U[t]])[0]
    assert rel_err(X[-1], ref) <= RTOL


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------


def test_call_node_is_unsupported_and_named():
    v = ca.SX.sym("v", 2)
    # never_inline keeps g as an OP_CALL node; a plain g(v) would be inlined by casadi 3.8
    g = ca.Function("g", [v], [ca.sin(v)], {"never_inline": True})
    f = ca.Function("f_calls_g", [v], [g(v) * 2])
    assert "OP_CALL" in ops_of(f)
    with pytest.raises(UnsupportedOperationError, match="OP_CALL") as info:
        translate(f, "kern")
    assert "f_calls_g" in str(info.value) and isinstance(info.value, NotImplementedError)


def test_free_symbol_is_unsupported():
    v, p = ca.SX.sym("v"), ca.SX.sym("p")
    f = ca.Function("free", [v], [v * p], {"allow_free": True})
    with pytest.raises(UnsupportedOperationError, match="OP_PARAMETER"):
        translate(f, "kern")


def test_mx_function_is_rejected_with_advice():
    v = ca.MX.sym("v", 2)
    f = ca.Function("mxf", [v], [ca.sin(v)])
    with pytest.raises(TypeError, match=r"SX.*expand\(\)"):
        translate(f, "kern")
    translate(f.expand(), "kern")  # the advice works


@pytest.mark.parametrize(
    "label, sym, shape",
    [
        ("A", ca.SX.sym("A", 2, 2), "2x2"),
        ("row", ca.SX.sym("row", 1, 3), "1x3"),
        ("holes", ca.SX.sym("holes", ca.Sparsity(3, 1, [0, 2], [0, 2])), "3x1"),
    ],
)
def test_non_column_input_is_rejected(label, sym, shape):
    f = ca.Function("bad", [ca.SX.sym("ok", 2), sym], [ca.sum1(ca.vec(sym))], ["ok", label], ["s"])
    with pytest.raises(ValueError, match=rf"input 1 \('{label}'\).*shape {shape}"):
        translate(f, "kern")


def test_bad_kernel_names():
    f = ca.Function("f", [x], [x])
    for bad in ["1abc", "np", "class", "a-b"]:
        with pytest.raises(ValueError):
            translate(f, bad)


# ---------------------------------------------------------------------------------------
# build_module caching
# ---------------------------------------------------------------------------------------


def test_same_functions_same_module_object(tmp_path):
    fns = {"k1": ca.Function("k1", [x], [ca.sin(x)])}
    m1 = build_module(fns, cache_dir=str(tmp_path), tag="t")
    m2 = build_module({"k1": ca.Function("k1", [x], [ca.sin(x)])}, cache_dir=str(tmp_path), tag="t")
    assert m1 is m2
    files = [f for f in os.listdir(tmp_path) if f.endswith(".py")]
    assert files == [os.path.basename(m1.__file__)] and files[0].startswith("t_")
    assert m1.__name__ in sys.modules
    source = open(m1.__file__).read()
    assert "import math" in source and "@_jit\ndef k1(i0, o0):" in source


# Run in fresh interpreters: build the same kernels, call them, report numba's cache stats.
_CHILD = textwrap.dedent(
    """
    import json, sys
    import casadi as ca
    import numpy as np
    from moreauctl.codegen import build_module

    v = ca.SX.sym("v", 3)
    fns = {"kin": ca.Function("kin", [v], [ca.vertcat(ca.sin(v[0]) * v[1], ca.exp(v[2]))])}
    extra = '''
    @_jit
    def twice_kin(a, out):
        kin(a, out)
        out[0] += 1.0
    '''
    mod = build_module(fns, extra_source=extra, cache_dir=sys.argv[1])
    out = np.empty(2)
    mod.kin(np.array([0.1, 2.0, 0.3]), out)
    mod.twice_kin(np.array([0.1, 2.0, 0.3]), out)
    stats = {n: getattr(mod, n).stats for n in ("kin", "twice_kin")}
    print(json.dumps({
        "file": mod.__file__,
        "hits": {n: sum(s.cache_hits.values()) for n, s in stats.items()},
        "misses": {n: sum(s.cache_misses.values()) for n, s in stats.items()},
    }))
    """
)


def _run_child(cache: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NUMBA_DISABLE_JIT", None)
    env.pop("NUMBA_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", _CHILD, cache], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_numba_disk_cache_is_reused_by_a_new_process(tmp_path):
    first = _run_child(str(tmp_path))
    assert first["misses"] == {"kin": 1, "twice_kin": 1}  # compiled and saved
    assert first["hits"] == {"kin": 0, "twice_kin": 0}
    mtime = os.stat(first["file"]).st_mtime_ns

    second = _run_child(str(tmp_path))
    assert second["file"] == first["file"]  # same key in a new process
    assert os.stat(second["file"]).st_mtime_ns == mtime  # file not rewritten
    assert second["hits"] == {"kin": 1, "twice_kin": 1}  # loaded from numba's cache
    assert second["misses"] == {"kin": 0, "twice_kin": 0}
    assert [f for f in os.listdir(tmp_path) if f.endswith(".py")] == [os.path.basename(first["file"])]


def test_scalar_forms_equal_array_kernels_bitwise(tmp_path):
    # translate_scalar emits the same instructions as translate, with scalar arguments and
    # a tuple result: the same bits as the array kernel (itself checked against CasADi).
    scalar = {name + "_s": fn for name, fn in PLANT.items()}
    mod = build_module(PLANT, cache_dir=str(tmp_path), tag="plant", scalar_functions=scalar)
    rng = np.random.default_rng(7)
    for name, fn in PLANT.items():
        for _ in range(5):
            xs, ws = sample(rng)
            inputs = [xs, ws] + ([rng.standard_normal(fn.numel_in(2))] if fn.n_in() == 3 else [])
            ref = np.concatenate(kernel_outputs(getattr(mod, name), fn, inputs))
            got = np.array(getattr(mod, name + "_s")(*np.concatenate(inputs)))
            assert got.shape == ref.shape, name
            np.testing.assert_array_equal(got, ref, err_msg=name)


def test_scalar_and_array_kernel_names_must_differ(tmp_path):
    with pytest.raises(ValueError, match="used twice"):
        build_module(PLANT, cache_dir=str(tmp_path), scalar_functions={"plant": PLANT["plant"]})
