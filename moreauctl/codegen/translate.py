"""Translate an SX :class:`casadi.Function` into straight-line Python source for numba.

The translator walks CasADi's own instruction list (the tape the SX virtual machine
executes) and emits one Python statement per instruction. CasADi work variables become
local scalars ``w0, w1, ...``; numba turns the resulting straight-line code into SSA form,
so re-used work slots cost nothing.

Calling convention of a generated function ``name(i0, i1, ..., o0, o1, ...)``:

- ``i{k}``: 1-D float64 array, shape ``(numel_k,)``, the k-th CasADi input (which must be a
  dense column vector or a scalar).
- ``o{k}``: 1-D float64 array, shape ``(numel_k,)``, the k-th CasADi output in column-major
  (CasADi's) order. Structural zeros are written as ``0.0``. The function writes the outputs
  in place and returns ``None``.

All input entries that are used are loaded into locals *before* the first output write, so
an output may alias an input (in-place updates like ``f(x, x)`` are safe).

Numeric semantics follow ``casadi/core/calculus.hpp`` (the ``fcn`` of each
``UnaryOperation``/``BinaryOperation``), e.g. ``sign(0) == 0``, ``sign(nan) == nan``,
``fmin``/``fmax`` return the non-NaN operand like C's ``fmin``/``fmax``, comparisons and
logic ops give ``1.0``/``0.0`` and ``if_else_zero(c, x) = x if c != 0 else 0``.
"""
from __future__ import annotations

import keyword
import math
from typing import Dict, List, Sequence

import casadi as ca

__all__ = [
    "CODEGEN_VERSION",
    "SUPPORTED_OPS",
    "UnsupportedOperationError",
    "op_name",
    "translate",
    "translate_scalar",
]

#: Bump when the generated code changes meaning (part of the build cache key).
CODEGEN_VERSION = "1"

# Module-level names of the generated file; a kernel called like this would shadow them.
RESERVED_NAMES = frozenset({"math", "np", "_jit", "_jit_inline"})


class UnsupportedOperationError(NotImplementedError):
    """A CasADi instruction has no Python/numba translation (e.g. ``OP_CALL``)."""


# ---------------------------------------------------------------------------------------
# op-code tables
# ---------------------------------------------------------------------------------------

# op code -> "OP_..." name, from the constants casadi itself exports.
_OP_NAMES: Dict[int, str] = {
    getattr(ca, attr): attr for attr in dir(ca) if attr.startswith("OP_")
}


def op_name(op: int) -> str:
    """CasADi name (``"OP_SIN"``, ...) of an op code, or ``"<op N>"`` if casadi has none."""
    return _OP_NAMES.get(op, f"<op {op}>")


# Elementwise ops that are a single Python expression. ``{x}`` is the first operand
# (``instruction_input(k)[0]``), ``{y}`` the second. Each entry mirrors the ``fcn`` in
# casadi/core/calculus.hpp.
#
# Why these spellings:
# - ``math.pow`` (not ``**``) so numba calls libm ``pow`` like CasADi; ``x**3`` could be
#   lowered to repeated multiplication and differ in the last bits.
# - ``np.floor``/``np.ceil``/``np.fmod``: numba's ``math.floor``/``math.ceil`` return
#   int64 (wrong for inf/nan/huge values) and numba has no ``math.fmod``.
# - comparisons produce floats because every CasADi work variable is a double.
_UNARY: Dict[str, str] = {
    "OP_ASSIGN": "{x}",
    "OP_NEG": "-{x}",
    "OP_EXP": "math.exp({x})",
    "OP_LOG": "math.log({x})",
    "OP_SQRT": "math.sqrt({x})",
    "OP_SQ": "{x} * {x}",
    "OP_TWICE": "2.0 * {x}",
    "OP_INV": "1.0 / {x}",
    "OP_SIN": "math.sin({x})",
    "OP_COS": "math.cos({x})",
    "OP_TAN": "math.tan({x})",
    "OP_ASIN": "math.asin({x})",
    "OP_ACOS": "math.acos({x})",
    "OP_ATAN": "math.atan({x})",
    "OP_SINH": "math.sinh({x})",
    "OP_COSH": "math.cosh({x})",
    "OP_TANH": "math.tanh({x})",
    "OP_ASINH": "math.asinh({x})",
    "OP_ACOSH": "math.acosh({x})",
    "OP_ATANH": "math.atanh({x})",
    "OP_LOG1P": "math.log1p({x})",
    "OP_EXPM1": "math.expm1({x})",
    "OP_ERF": "math.erf({x})",
    "OP_FABS": "math.fabs({x})",
    "OP_FLOOR": "np.floor({x})",
    "OP_CEIL": "np.ceil({x})",
    # calculus.hpp: sign(x) = x<0 ? -1 : x>0 ? 1 : x  (so sign(0)=0, sign(nan)=nan)
    "OP_SIGN": "(-1.0 if {x} < 0.0 else (1.0 if {x} > 0.0 else {x}))",
    # C's !x: NaN is truthy, so !nan == 0
    "OP_NOT": "(1.0 if {x} == 0.0 else 0.0)",
}

_BINARY: Dict[str, str] = {
    "OP_ADD": "{x} + {y}",
    "OP_SUB": "{x} - {y}",
    "OP_MUL": "{x} * {y}",
    "OP_DIV": "{x} / {y}",
    "OP_POW": "math.pow({x}, {y})",
    # CONSTPOW has the same layout as POW: [base, exponent], the exponent being a work
    # variable loaded by an earlier OP_CONST.
    "OP_CONSTPOW": "math.pow({x}, {y})",
    "OP_ATAN2": "math.atan2({x}, {y})",
    "OP_HYPOT": "math.hypot({x}, {y})",
    "OP_COPYSIGN": "math.copysign({x}, {y})",
    "OP_FMOD": "np.fmod({x}, {y})",
    "OP_LT": "(1.0 if {x} < {y} else 0.0)",
    "OP_LE": "(1.0 if {x} <= {y} else 0.0)",
    "OP_EQ": "(1.0 if {x} == {y} else 0.0)",
    "OP_NE": "(1.0 if {x} != {y} else 0.0)",
    # C's && / ||: any nonzero (including NaN) is true.
    "OP_AND": "(1.0 if ({x} != 0.0 and {y} != 0.0) else 0.0)",
    "OP_OR": "(1.0 if ({x} != 0.0 or {y} != 0.0) else 0.0)",
    # C fmin/fmax: if exactly one operand is NaN, return the other one.
    "OP_FMIN": "({y} if ({x} != {x} or {y} < {x}) else {x})",
    "OP_FMAX": "({y} if ({x} != {x} or {y} > {x}) else {x})",
    # calculus.hpp: if_else_zero(x, y) = x==0 ? 0 : y  (layout [condition, value])
    "OP_IF_ELSE_ZERO": "({y} if {x} != 0.0 else 0.0)",
}


def _remainder_lines(x: str, y: str, out: str) -> List[str]:
    """C ``remainder(x, y)`` (IEEE, quotient rounded half-to-even); numba lacks it.

    Same reduction as glibc's ``__ieee754_remainder``: ``fmod`` by ``2|y|`` is exact and
    keeps the parity of the quotient, then at most two exact subtractions of ``|y|``.
    Doubling instead of halving ``|y|`` keeps subnormal divisors exact. ``out`` is assigned
    last because it may be the same work variable as ``x`` or ``y``.
    """
    return [
        f"t_p = math.fabs({y})",
        f"t_a = np.fmod(math.fabs({x}), t_p + t_p)",
        "if t_a + t_a > t_p:",
        "    t_a = t_a - t_p",
        "    if t_a + t_a >= t_p:",
        "        t_a = t_a - t_p",
        f"{out} = math.copysign(1.0, {x}) * t_a",
    ]


def _erfinv_lines(x: str, out: str) -> List[str]:
    """CasADi's own ``erfinv`` (calculus.hpp, the ``#ifndef HAS_ERFINV`` fallback).

    Neither Python's ``math`` nor numba has ``erfinv``; casadi 3.8 wheels use this
    rational approximation with two Newton polishing steps, except on the ``x < -0.7``
    branch, which returns the unpolished approximation. We reproduce it operation by
    operation (including that quirk) so results agree with CasADi bit for bit.
    """
    return [
        f"t_x = {x}",
        "if t_x >= 1.0:",
        "    t_y = math.inf if t_x == 1.0 else math.nan",
        "elif t_x <= -1.0:",
        "    t_y = -math.inf if t_x == -1.0 else math.nan",
        "elif t_x < -0.7:",
        "    t_z = math.sqrt(-math.log((1.0 + t_x) / 2.0))",
        "    t_y = -(((1.641345311 * t_z + 3.429567803) * t_z - 1.624906493) * t_z"
        " - 1.970840454) / ((1.6370678 * t_z + 3.5438892) * t_z + 1.0)",
        "else:",
        "    if t_x < 0.7:",
        "        t_z = t_x * t_x",
        "        t_y = t_x * (((-0.140543331 * t_z + 0.914624893) * t_z - 1.645349621) * t_z"
        " + 0.886226899) / ((((-0.329097515 * t_z + 0.012229801) * t_z + 1.442710462)"
        " * t_z - 2.118377725) * t_z + 1.0)",
        "    else:",
        "        t_z = math.sqrt(-math.log((1.0 - t_x) / 2.0))",
        "        t_y = (((1.641345311 * t_z + 3.429567803) * t_z - 1.624906493) * t_z"
        " - 1.970840454) / ((1.6370678 * t_z + 3.5438892) * t_z + 1.0)",
        "    t_y = t_y - (math.erf(t_y) - t_x) / (2.0 / math.sqrt(math.pi) * math.exp(-t_y * t_y))",
        "    t_y = t_y - (math.erf(t_y) - t_x) / (2.0 / math.sqrt(math.pi) * math.exp(-t_y * t_y))",
        f"{out} = t_y",
    ]


def _printme_lines(x: str, y: str, out: str) -> List[str]:
    """``printme(x, y)``: identity on ``x`` that prints ``|> y : x`` (CasADi's format,
    up to numba's float formatting)."""
    return [f"print('|>', {y}, ':', {x})", f"{out} = {x}"]


# Ops that need several statements: op name -> (number of operands, line builder).
_BLOCK: Dict[str, tuple] = {
    "OP_REMAINDER": (2, _remainder_lines),
    "OP_ERFINV": (1, _erfinv_lines),
    "OP_PRINTME": (2, _printme_lines),
}

# Ops handled directly by the instruction walker.
_STRUCTURAL = frozenset({"OP_INPUT", "OP_OUTPUT", "OP_CONST"})

#: Names of every CasADi op that :func:`translate` can emit code for.
#:
#: Deliberately absent: ``OP_CALL`` (an SX call node to another Function), ``OP_PARAMETER``
#: (a free symbol), ``OP_LIFT`` (CasADi simplifies ``lift(x, x0)`` to ``x`` in SX, so it
#: cannot be produced or tested) and all MX-only ops.
SUPPORTED_OPS = frozenset(_UNARY) | frozenset(_BINARY) | frozenset(_BLOCK) | _STRUCTURAL

# Hints appended to UnsupportedOperationError for ops users hit in practice.
_HINTS: Dict[str, str] = {
    "OP_CALL": (
        "the expression calls another casadi Function that was not inlined (e.g. one "
        "built with never_inline=True); rebuild the Function with inlined calls"
    ),
    "OP_PARAMETER": (
        "the Function has free symbols (built with allow_free=True); declare them as inputs"
    ),
}


# ---------------------------------------------------------------------------------------
# small pure helpers
# ---------------------------------------------------------------------------------------


def float_literal(value: float) -> str:
    """Python literal for a double that round-trips exactly (``repr``), with inf/nan
    spelled via ``math`` so the source stays valid Python."""
    value = float(value)
    if math.isnan(value):
        return "math.nan"
    if math.isinf(value):
        return "math.inf" if value > 0 else "(-math.inf)"
    return repr(value)


def _check_function(fn: object) -> None:
    """Reject anything but an SX Function, with advice."""
    if not isinstance(fn, ca.Function):
        raise TypeError(
            f"expected a casadi.Function built from SX expressions, got {type(fn).__name__}"
        )
    if not fn.is_a("SXFunction"):
        raise TypeError(
            f"expected an SX casadi.Function, got {fn.class_name()} '{fn.name()}'; "
            f"call fn.expand() to convert it to an SX Function first"
        )


def check_kernel_name(name: str) -> None:
    """A generated kernel's name must be a plain identifier that shadows nothing we use."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"kernel name must be a Python identifier, got {name!r}")
    if name in RESERVED_NAMES:
        raise ValueError(
            f"kernel name {name!r} would shadow a module-level name of the generated file "
            f"(reserved: {sorted(RESERVED_NAMES)})"
        )


def _input_numels(fn: ca.Function) -> List[int]:
    """Length of each input array; raise unless each input is a dense column/scalar.

    Empty inputs (numel 0, any shape) are accepted: they have no entries to read.
    """
    numels = []
    for i in range(fn.n_in()):
        sp = fn.sparsity_in(i)
        if sp.numel() != 0 and not (sp.is_dense() and sp.size2() == 1):
            raise ValueError(
                f"input {i} ('{fn.name_in(i)}') of casadi Function '{fn.name()}': expected a "
                f"dense column vector or scalar, got shape {sp.size1()}x{sp.size2()} with "
                f"{sp.nnz()} structural nonzeros ({'dense' if sp.is_dense() else 'sparse'}); "
                f"reshape/densify it (e.g. ca.vec, ca.densify) before building the Function"
            )
        numels.append(sp.numel())
    return numels


def _output_layouts(fn: ca.Function) -> List[tuple]:
    """Per output: (numel, dense index of each structural nonzero), column-major."""
    return [
        (fn.sparsity_out(k).numel(), list(fn.sparsity_out(k).find()))
        for k in range(fn.n_out())
    ]


def _zero_fill_lines(array: str, positions: Sequence[int]) -> List[str]:
    """Statements writing 0.0 at sorted ``positions`` of ``array``; long contiguous runs
    become one slice assignment to keep big sparse Jacobians' source short."""
    lines: List[str] = []
    start = 0
    while start < len(positions):
        stop = start
        while stop + 1 < len(positions) and positions[stop + 1] == positions[stop] + 1:
            stop += 1
        first, last = positions[start], positions[stop]
        if stop - start + 1 >= 8:
            lines.append(f"{array}[{first}:{last + 1}] = 0.0")
        else:
            lines.extend(f"{array}[{p}] = 0.0" for p in range(first, last + 1))
        start = stop + 1
    return lines


def _unsupported(op: int, fn: ca.Function, name: str, k: int) -> UnsupportedOperationError:
    label = op_name(op)
    hint = _HINTS.get(label)
    return UnsupportedOperationError(
        f"casadi op {label} (instruction {k}) of Function '{fn.name()}' has no translation "
        f"(while generating kernel '{name}')"
        + (f": {hint}" if hint else "")
        + f". Supported ops: {', '.join(sorted(SUPPORTED_OPS))}"
    )


# ---------------------------------------------------------------------------------------
# the translator
# ---------------------------------------------------------------------------------------


def _walk(fn: ca.Function, name: str, out_layouts: List[tuple], store) -> tuple:
    """One statement per instruction of ``fn``'s tape, shared by both calling conventions.

    ``store(ind, pos, value)`` returns the statement writing work variable ``value`` to
    dense position ``pos`` of output ``ind``. Inputs are read from locals ``i{ind}_{nz}``.

    Returns
    -------
    body : list of str
    used : set of (input, nz)
        Input entries the tape reads.
    written : list of set of int
        Per output, the dense positions the tape writes.
    """
    body: List[str] = []
    used = set()
    written = [set() for _ in out_layouts]
    for k in range(fn.n_instructions()):
        op = fn.instruction_id(k)
        label = op_name(op)
        args = fn.instruction_input(k)
        res = fn.instruction_output(k)
        if label == "OP_INPUT":
            # instruction_input = [input index, nonzero index]; dense column, so nz = row.
            ind, nz = args
            used.add((ind, nz))
            body.append(f"w{res[0]} = i{ind}_{nz}")
        elif label == "OP_OUTPUT":
            # instruction_output = [output index, nonzero index] -> dense position.
            ind, nz = res
            pos = out_layouts[ind][1][nz]
            body.append(store(ind, pos, f"w{args[0]}"))
            written[ind].add(pos)
        elif label == "OP_CONST":
            body.append(f"w{res[0]} = {float_literal(fn.instruction_constant(k))}")
        elif label in _UNARY:
            body.append(f"w{res[0]} = " + _UNARY[label].format(x=f"w{args[0]}"))
        elif label in _BINARY:
            body.append(
                f"w{res[0]} = " + _BINARY[label].format(x=f"w{args[0]}", y=f"w{args[1]}")
            )
        elif label in _BLOCK:
            arity, builder = _BLOCK[label]
            body.extend(builder(*[f"w{a}" for a in args[:arity]], f"w{res[0]}"))
        else:
            raise _unsupported(op, fn, name, k)
    return body, used, written


def translate(fn: ca.Function, name: str) -> str:
    """Python source of one numba-compilable function evaluating an SX Function.

    Parameters
    ----------
    fn : casadi.Function
        An SX Function (``fn.is_a("SXFunction")``) whose inputs are dense column vectors
        or scalars. Outputs may have any shape and sparsity.
    name : str
        Name of the generated Python function (a non-reserved identifier).

    Returns
    -------
    str
        Source of ``def name(i0, ..., i{n_in-1}, o0, ..., o{n_out-1}):`` without a
        decorator, ending in a newline. ``i{k}`` has shape ``(fn.numel_in(k),)``;
        ``o{k}`` has shape ``(fn.numel_out(k),)`` and receives the k-th output in
        column-major order, zeros included. It returns ``None``. The source uses the
        module-level names ``math`` and ``np`` (``numpy``).

    Raises
    ------
    TypeError
        ``fn`` is not an SX Function (an MX Function must be ``fn.expand()``-ed first).
    ValueError
        An input is not a dense column vector/scalar, or ``name`` is not usable.
    UnsupportedOperationError
        The instruction list contains an op without translation (e.g. ``OP_CALL``).
    """
    _check_function(fn)
    check_kernel_name(name)
    in_numels = _input_numels(fn)
    out_layouts = _output_layouts(fn)

    ins = [f"i{i}" for i in range(fn.n_in())]
    outs = [f"o{k}" for k in range(fn.n_out())]
    body, used, written = _walk(fn, name, out_layouts,
                                lambda ind, pos, v: f"o{ind}[{pos}] = {v}")

    # Read every used input entry before any output is written, so outputs may alias
    # inputs. (CasADi interleaves OP_INPUT and OP_OUTPUT freely.)
    head = [f"i{ind}_{nz} = i{ind}[{nz}]" for ind, nz in sorted(used)]

    # Structural zeros (plus, defensively, any nonzero CasADi never wrote).
    zeros: List[str] = []
    for ind, (numel, _) in enumerate(out_layouts):
        zeros.extend(_zero_fill_lines(f"o{ind}", [p for p in range(numel) if p not in written[ind]]))

    doc = _describe(fn, in_numels, out_layouts)
    lines = [f"def {name}({', '.join(ins + outs)}):"]
    lines += ["    " + d for d in doc]
    lines += ["    " + s for s in head + zeros + body]
    lines.append("    return None")
    return "\n".join(lines) + "\n"


def translate_scalar(fn: ca.Function, name: str) -> str:
    """Python source of a scalar-in, tuple-out twin of :func:`translate`'s function.

    The fused loop kernels (:mod:`moreauctl.codegen.fused`) keep states and costates in
    scalar locals. Passing them as arrays would force a store and a reload through memory
    on every stage of the recurrence; scalars stay in registers once numba inlines the call.

    Parameters
    ----------
    fn : casadi.Function
        As for :func:`translate`.
    name : str
        Name of the generated Python function.

    Returns
    -------
    str
        Source of ``def name(i0_0, i0_1, ..., i1_0, ...):`` taking every input entry as a
        float (input ``k`` entry ``j`` is ``i{k}_{j}``) and returning a tuple of every
        output entry, outputs concatenated in order, each in column-major order with
        zeros included: ``(o0_0, o0_1, ..., o1_0, ...)``. No decorator.
    """
    _check_function(fn)
    check_kernel_name(name)
    in_numels = _input_numels(fn)
    out_layouts = _output_layouts(fn)
    params = [f"i{i}_{j}" for i, n in enumerate(in_numels) for j in range(n)]
    body, _, written = _walk(fn, name, out_layouts, lambda ind, pos, v: f"o{ind}_{pos} = {v}")
    outs = []
    zeros = []
    for ind, (numel, _) in enumerate(out_layouts):
        for p in range(numel):
            outs.append(f"o{ind}_{p}")
            if p not in written[ind]:
                zeros.append(f"o{ind}_{p} = 0.0")
    lines = [f"def {name}({', '.join(params)}):"]
    lines += ["    " + d for d in _describe(fn, in_numels, out_layouts)]
    lines.append(f"    # scalar form: returns ({', '.join(outs)})")
    lines += ["    " + s for s in zeros + body]
    lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    return "\n".join(lines) + "\n"


def _describe(fn: ca.Function, in_numels: List[int], out_layouts: List[tuple]) -> List[str]:
    """Comment lines documenting argument shapes (comments, not a docstring, so odd
    CasADi names cannot break the syntax; ``repr`` escapes newlines)."""
    lines = [f"# generated from casadi SXFunction {fn.name()!r} by moreauctl.codegen"]
    for i, numel in enumerate(in_numels):
        lines.append(f"# i{i}: input {fn.name_in(i)!r}, shape ({numel},)")
    for k, (numel, dense) in enumerate(out_layouts):
        sp = fn.sparsity_out(k)
        lines.append(
            f"# o{k}: output {fn.name_out(k)!r}, shape ({numel},) = {sp.size1()}x{sp.size2()}"
            f" column-major, {len(dense)} structural nonzeros"
        )
    return lines
