"""Store a stage's transcendental values in the forward pass, reuse them in the VJP.

The backward pass of a chain ``x_t = phi(w_t, x_{t-1})`` needs, per stage, the VJP
``(dphi/dw^T lam, dphi/dx^T lam)``. CasADi's own reverse mode re-evaluates ``phi`` inside
the VJP, so every ``sin``/``cos``/``exp``/... of the stage is computed twice per stage (and
the derivatives add more: for the RK4 cart-pole the plain VJP has 10 ``sin`` + 10 ``cos``,
against 4 + 4 in ``phi``). :func:`split_transcendentals` instead returns

- ``phi_s(w, x) -> (phi, s)``: ``phi`` plus the values ``s`` of its transcendental nodes;
- ``vjp_s(w, x, s, lam) -> (gw, gx)``: the VJP, reading those values from ``s``, with no
  instruction of :data:`STORED_OPS` in its instruction list.

How
---
Replay ``phi``'s SX instruction list twice, side by side (the same walk as
:mod:`moreauctl.codegen.translate`):

1. an exact replica of ``phi`` (for ``phi_s``; same ops on the same operands, so the same
   bits as ``stage(w, x)``);
2. a *linearised* graph in which each stored op ``f(a)`` is replaced by its first-order
   expansion around a fresh anchor symbol ``A``: ``V + D * (a - A)``, with ``V`` (value)
   and ``D`` (derivative) fresh symbols too, e.g. ``sin(a) -> S + C (a - A)``,
   ``cos(a) -> C - S (a - A)``, ``exp(a) -> E + E (a - A)``. Value and first derivative
   in ``a`` are exact at ``a = A``, so reverse mode of this graph (CasADi's own
   ``ca.gradient``) at ``A = a`` is the true VJP, and it contains no stored op by
   construction (the ops are simply not in the graph).

Then each anchor is pinned, ``A := a``, so that ``a - A`` becomes ``a - a``, which
CasADi's SX constructor folds to ``0`` (it tests operands for *pointer* identity), after
which ``C * 0 -> 0`` and ``S + 0 -> S``: the recomputation of the arguments ``a`` drops out
of the VJP wherever it was only needed for the expansion. The pinning is done anchor by
anchor in tape order (one ``ca.substitute`` per anchor, carrying the arguments along with
the gradient): an argument ``a`` generally depends on earlier anchors, and only after those
are pinned in the *same* substitution pass as the gradient is the ``a`` inside the gradient
the very same node as the ``a`` substituted for ``A``. (One simultaneous substitution would
leave structurally equal but distinct nodes, which CasADi does not fold.)

Stored values are shared per distinct argument node: ``sin(a)`` and ``cos(a)`` of the same
``a`` (the cart-pole computes both at every RK sub-stage) use one pair ``(S, C)``; likewise
``(sinh, cosh)``. Stored values the VJP turns out not to need are dropped from ``s`` (for
the Euler pendulum ``sin(theta)`` enters ``phi`` linearly, so only ``cos(theta)`` is kept).

Stored ops and what is kept per distinct argument (before dropping unused entries)
----------------------------------------------------------------------------------
``sin``/``cos``: ``(sin a, cos a)``; ``sinh``/``cosh``: ``(sinh a, cosh a)``;
``exp``, ``expm1``, ``tan``, ``tanh``: the value (derivative is a polynomial in it);
``log``, ``log1p``, ``atan``: the value (derivative is a rational function of ``a``, so the
VJP still computes ``a`` and divides); ``asin``, ``acos``, ``asinh``, ``acosh``, ``atanh``,
``erf``: value and derivative. Everything else (``sqrt``, ``pow``, ``constpow``, ``atan2``,
...) is left to CasADi's reverse mode and recomputed.

Divisions remain: the forward part of the VJP still recomputes the non-transcendental
nodes it needs, and CasADi's partials of ``x / y`` are ``1/y`` and ``-(x/y)/y``. For the
RK4 cart-pole (mass-matrix determinant in the denominator) ``vjp_s`` has 20 ``OP_DIV``,
the plain VJP 26, ``phi`` 16.

Instruction counts, RK4 cart-pole (casadi 3.8): ``phi`` 155 (4 sin, 4 cos), ``phi_s`` 163
(the same 4 + 4, plus 8 outputs), ``vjp_s`` 280 (no sin/cos), plain VJP 409 (10 sin,
10 cos). Most of the 409 -> 280 gap is duplicated subexpressions in CasADi's reverse mode
(e.g. ``cos(a)`` rebuilt as the derivative of ``sin(a)``): with the Function option
``{"cse": True}`` the plain VJP is 270 instructions with 4 sin + 4 cos, ``vjp_s`` 263.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import casadi as ca

__all__ = ["STORED_OPS", "split_transcendentals"]


# ---------------------------------------------------------------------------------------
# rules: op -> how it is expanded around its anchor
# ---------------------------------------------------------------------------------------

# A rule maps the stored symbols ``v`` (name -> SX scalar), the anchor ``A`` and the
# deviation ``d = a - A`` to the linearised replacement of ``f(a)``. Its value at ``d = 0``
# must be ``f(A)`` and its derivative in ``a`` must be ``f'(A)``.
Rule = Callable[[Dict[str, ca.SX], ca.SX, ca.SX], ca.SX]


@dataclass(frozen=True)
class _Family:
    """Ops that share stored values when applied to the same argument.

    Attributes
    ----------
    names : tuple of str
        Stored quantities, in the order they appear in ``s``.
    values : callable
        ``values(op, a) -> {name: SX}``: the forward values of ``names`` at the argument
        ``a`` (an SX scalar of the forward replica).
    rules : dict
        op code -> :data:`Rule`.
    produces : dict
        op code -> the name of the stored quantity that op computes (so ``phi``'s own node
        can be stored instead of computing it a second time).
    """

    names: Tuple[str, ...]
    values: Callable[[int, ca.SX], Dict[str, ca.SX]]
    rules: Dict[int, Rule]
    produces: Dict[int, str]


def _op(name: str):
    """CasADi op code ``ca.OP_<name>``, or ``None`` if this casadi build lacks it."""
    return getattr(ca, "OP_" + name, None)


def _derivative(op: int, a: ca.SX) -> ca.SX:
    """``f'(a)`` for a unary op ``f``, via CasADi's own derivative rule."""
    z = ca.SX.sym("z")
    return ca.substitute(ca.jacobian(ca.SX.unary(op, z), z), z, a)


def _value_family(rule: Rule) -> Callable[[int], _Family]:
    """Family storing only ``f(a)``; ``rule`` builds the expansion from it."""
    return lambda op: _Family(("val",), lambda o, a: {"val": ca.SX.unary(o, a)}, {op: rule},
                              {op: "val"})


def _value_deriv_family(op: int) -> _Family:
    """Family storing ``f(a)`` and ``f'(a)`` (derivative not cheap to rebuild)."""
    return _Family(("val", "der"),
                   lambda o, a: {"val": ca.SX.unary(o, a), "der": _derivative(o, a)},
                   {op: lambda v, A, d: v["val"] + v["der"] * d}, {op: "val"})


def _pair_family(op_a: int, op_b: int, sign_b: float) -> _Family:
    """``(f, g)`` with ``f' = g`` and ``g' = sign_b * f``: (sin, cos) or (sinh, cosh)."""
    return _Family(
        ("f", "g"),
        lambda o, a: {"f": ca.SX.unary(op_a, a), "g": ca.SX.unary(op_b, a)},
        {op_a: lambda v, A, d: v["f"] + v["g"] * d,
         op_b: lambda v, A, d: v["g"] + sign_b * v["f"] * d},
        {op_a: "f", op_b: "g"})


def _build_families() -> Dict[int, Tuple[str, _Family]]:
    """op code -> (family key, family). Ops with the same key share stored values."""
    table: Dict[int, Tuple[str, _Family]] = {}
    trig = _pair_family(ca.OP_SIN, ca.OP_COS, -1.0)
    hyp = _pair_family(ca.OP_SINH, ca.OP_COSH, 1.0)
    for op in (ca.OP_SIN, ca.OP_COS):
        table[op] = ("trig", trig)
    for op in (ca.OP_SINH, ca.OP_COSH):
        table[op] = ("hyp", hyp)
    # Derivative is a function of the stored value: nothing else to keep.
    value_rules: Dict[str, Rule] = {
        "EXP": lambda v, A, d: v["val"] + v["val"] * d,
        "EXPM1": lambda v, A, d: v["val"] + (1.0 + v["val"]) * d,
        "TANH": lambda v, A, d: v["val"] + (1.0 - v["val"] * v["val"]) * d,
        "TAN": lambda v, A, d: v["val"] + (1.0 + v["val"] * v["val"]) * d,
        # Derivative is rational in the argument; A is pinned to a, so the VJP computes it.
        "LOG": lambda v, A, d: v["val"] + d / A,
        "LOG1P": lambda v, A, d: v["val"] + d / (1.0 + A),
        "ATAN": lambda v, A, d: v["val"] + d / (1.0 + A * A),
    }
    for name, rule in value_rules.items():
        op = _op(name)
        if op is not None:
            table[op] = (name, _value_family(rule)(op))
    for name in ("ASIN", "ACOS", "ASINH", "ACOSH", "ATANH", "ERF"):
        op = _op(name)
        if op is not None:
            table[op] = (name, _value_deriv_family(op))
    return table


_FAMILIES = _build_families()

#: Op codes that :func:`split_transcendentals` stores; ``vjp_s`` never contains them.
STORED_OPS = frozenset(_FAMILIES)


# ---------------------------------------------------------------------------------------
# tape replay
# ---------------------------------------------------------------------------------------


@dataclass
class _Site:
    """The stored values of one family at one distinct argument node.

    Attributes
    ----------
    family : _Family
    anchor : casadi.SX, scalar
        The symbol ``A`` the expansion is taken around (shared by all sites on the argument).
    syms : dict
        name -> fresh SX symbol standing for that stored value in the linearised graph.
    fwd : dict
        name -> SX scalar of the forward replica computing it; an op ``phi`` itself computes
        is reused from the tape (so ``phi_s`` does not compute it twice).
    arg_fwd : casadi.SX, scalar
        The argument in the forward replica (to compute values ``phi`` does not).
    """

    family: _Family
    anchor: ca.SX
    syms: Dict[str, ca.SX]
    arg_fwd: ca.SX
    fwd: Dict[str, ca.SX] = field(default_factory=dict)


@dataclass
class _Replay:
    """Result of :func:`_replay`.

    Attributes
    ----------
    phi_fwd, phi_lin : casadi.SX, shape (nx, 1)
        ``phi`` as an exact replica, and linearised around the anchors.
    sites : list of _Site
        In order of first appearance on the tape.
    anchors : list of (anchor, argument) pairs
        ``(A, a_lin)``, ``a_lin`` the argument in the linearised graph; tape order, which is
        a topological order (an argument only depends on anchors created before it).
    """

    phi_fwd: ca.SX
    phi_lin: ca.SX
    sites: List[_Site]
    anchors: List[Tuple[ca.SX, ca.SX]]


def _apply(op: int, args: List[ca.SX]) -> ca.SX:
    """One CasADi op on SX scalars (SX's constructor applies its usual simplifications)."""
    if len(args) == 1:
        return ca.SX.unary(op, args[0])
    if len(args) == 2:
        return ca.SX.binary(op, args[0], args[1])
    raise NotImplementedError(f"instruction with {len(args)} operands (op {op})")


def _replay(stage: ca.Function, w: ca.SX, x: ca.SX, p: ca.SX = None) -> _Replay:
    """Evaluate ``stage``'s instruction list on SX symbols, twice side by side.

    Parameters
    ----------
    stage : casadi.Function
        SX Function ``(w (nw,1), x (nx,1)) -> x_next (nx,1)``.
    w : casadi.SX, shape (nw, 1)
    x : casadi.SX, shape (nx, 1)

    Returns
    -------
    _Replay
    """
    inputs = (w, x) if p is None else (w, x, p)
    fwd: Dict[int, ca.SX] = {}   # work slot -> node of the forward replica
    lin: Dict[int, ca.SX] = {}   # work slot -> node of the linearised graph
    # Work slots are reused by CasADi, so an argument is identified by the instruction that
    # last wrote its slot, not by the slot.
    producer: Dict[int, int] = {}
    out_fwd = ca.SX.zeros(stage.sparsity_out(0))
    out_lin = ca.SX.zeros(stage.sparsity_out(0))
    anchors: Dict[int, ca.SX] = {}           # producer -> anchor symbol
    anchor_list: List[Tuple[ca.SX, ca.SX]] = []
    sites: Dict[Tuple[str, int], _Site] = {}

    for k in range(stage.n_instructions()):
        op = stage.instruction_id(k)
        args = stage.instruction_input(k)
        res = stage.instruction_output(k)
        if op == ca.OP_OUTPUT:
            out_fwd[res[1]] = fwd[args[0]]
            out_lin[res[1]] = lin[args[0]]
            continue
        slot = res[0]
        if op == ca.OP_INPUT:
            fwd[slot] = lin[slot] = inputs[args[0]][args[1]]
        elif op == ca.OP_CONST:
            fwd[slot] = lin[slot] = ca.SX(stage.instruction_constant(k))
        elif op in _FAMILIES:
            key, family = _FAMILIES[op]
            arg = producer[args[0]]
            if arg not in anchors:
                anchors[arg] = ca.SX.sym(f"A{len(anchors)}")
                anchor_list.append((anchors[arg], lin[args[0]]))
            site = sites.get((key, arg))
            if site is None:
                tag = f"{key.lower()}{len(sites)}"
                site = _Site(family, anchors[arg],
                             {n: ca.SX.sym(f"{tag}_{n}") for n in family.names},
                             fwd[args[0]])
                sites[(key, arg)] = site
            fwd[slot] = _apply(op, [fwd[args[0]]])
            # Store phi's own node rather than computing the same value a second time.
            site.fwd.setdefault(family.produces[op], fwd[slot])
            deviation = lin[args[0]] - site.anchor
            lin[slot] = family.rules[op](site.syms, site.anchor, deviation)
        else:
            fwd[slot] = _apply(op, [fwd[a] for a in args])
            lin[slot] = _apply(op, [lin[a] for a in args])
        # After the operands are read: an op may write its result over its operand's slot.
        producer[slot] = k

    return _Replay(out_fwd, out_lin, list(sites.values()), anchor_list)


# ---------------------------------------------------------------------------------------
# VJP
# ---------------------------------------------------------------------------------------


def _pin_anchors(exprs: List[ca.SX], anchors: List[Tuple[ca.SX, ca.SX]]) -> List[ca.SX]:
    """Substitute ``A := a`` for every anchor, one at a time in tape order.

    Parameters
    ----------
    exprs : list of casadi.SX
        Expressions to pin (e.g. the gradient).
    anchors : list of (anchor, argument) pairs
        As :attr:`_Replay.anchors`.

    Returns
    -------
    list of casadi.SX
        ``exprs`` free of anchors.

    Notes
    -----
    The arguments travel with ``exprs`` through every substitution so that, when anchor
    ``k`` is pinned, the argument substituted for it is the very node (same pointer) that
    ``exprs`` contain: ``a - A`` then becomes ``a - a``, which SX folds to ``0``.
    """
    n = len(exprs)
    carried = list(exprs) + [arg for _, arg in anchors]
    for k, (anchor, _) in enumerate(anchors):
        carried = ca.substitute(carried, [anchor], [carried[n + k]])
    return carried[:n]


def _kept(site: _Site, g: ca.SX) -> List[str]:
    """Names of ``site``'s stored values that the VJP expression ``g`` depends on."""
    return [n for n in site.family.names if ca.depends_on(g, site.syms[n])]


def _forward_value(site: _Site, name: str) -> ca.SX:
    """The forward-replica node computing stored value ``name`` of ``site``."""
    if name not in site.fwd:
        # phi does not compute it (e.g. cos(a) when phi only uses sin(a)): compute it.
        site.fwd[name] = site.family.values(_first_op(site.family), site.arg_fwd)[name]
    return site.fwd[name]


def _first_op(family: _Family) -> int:
    """Any op of the family (``values`` returns the same dict for every op of it)."""
    return next(iter(family.rules))


def _check_stage(stage: ca.Function) -> Tuple[int, int]:
    """Validate ``stage`` and return ``(nw, nx)``."""
    if not isinstance(stage, ca.Function) or not stage.is_a("SXFunction"):
        raise TypeError(f"stage must be an SX casadi.Function; got {stage!r}")
    if stage.n_in() not in (2, 3) or stage.n_out() != 1:
        raise ValueError(f"stage must map (w, x) or (w, x, p) -> x_next; got {stage}")
    for sp, what in ((stage.sparsity_in(0), "w"), (stage.sparsity_in(1), "x"),
                     (stage.sparsity_out(0), "phi")):
        if not (sp.is_dense() and sp.is_column()):
            raise ValueError(f"{what} must be a dense column vector; got shape {sp.shape}")
    return stage.size1_in(0), stage.size1_in(1)


def split_transcendentals(stage: ca.Function) -> Tuple[ca.Function, ca.Function, int]:
    """Split a stage into a forward pass that stores its transcendentals and a VJP using them.

    Parameters
    ----------
    stage : casadi.Function
        SX Function ``phi(w, x) -> x_next`` with ``w`` of shape (nw, 1), ``x`` of shape
        (nx, 1), ``x_next`` of shape (nx_out, 1), all dense.

    Returns
    -------
    phi_s : casadi.Function
        SX Function ``(w (nw,1), x (nx,1)) -> (phi (nx_out,1), s (ns,1))``. ``phi`` is
        bit-for-bit ``stage(w, x)``; ``s`` holds the stored values (see the module
        docstring), grouped per distinct argument in tape order, only those the VJP needs.
    vjp_s : casadi.Function
        SX Function ``(w (nw,1), x (nx,1), s (ns,1), lam (nx_out,1)) -> (gw (nw,1),
        gx (nx,1))`` with ``gw = dphi/dw^T lam`` and ``gx = dphi/dx^T lam`` when
        ``s = phi_s(w, x)[1]``. Its instruction list has no op of :data:`STORED_OPS`.
        Other arguments ``s`` give a first-order-expanded VJP, not a meaningful quantity.
    ns : int
        Number of stored values per stage. ``0`` when ``phi`` has no stored op (or the VJP
        needs none of them); then ``s`` has shape (0, 1) in both functions, ``vjp_s`` is
        CasADi's plain VJP and the caller may skip storing anything.

    Notes
    -----
    ``vjp_s`` still re-evaluates the non-transcendental forward nodes the backward pass
    needs, divisions included (see the module docstring). For the RK4 cart-pole ``ns = 8``.
    """
    nw, nx = _check_stage(stage)
    w = ca.SX.sym("w", nw)
    x = ca.SX.sym("x", nx)
    p = ca.SX.sym("p", stage.size1_in(2) if stage.n_in() == 3 else 0)
    lam = ca.SX.sym("lam", stage.size1_out(0))
    rep = _replay(stage, w, x, p)

    # Reverse mode of the linearised graph: CasADi's own rules, no stored op in sight.
    g = ca.gradient(ca.dot(lam, rep.phi_lin), ca.vertcat(w, x))
    g = _pin_anchors([g], rep.anchors)[0]

    kept = [(site, name) for site in rep.sites for name in _kept(site, g)]
    s_sym = ca.vertcat(*[site.syms[n] for site, n in kept]) if kept else ca.SX(0, 1)
    s_fwd = ca.vertcat(*[_forward_value(site, n) for site, n in kept]) if kept else ca.SX(0, 1)

    if stage.n_in() == 2:
        phi_s = ca.Function(f"{stage.name()}_s", [w, x], [rep.phi_fwd, s_fwd],
                            ["w", "x"], ["phi", "s"])
        vjp_s = ca.Function(f"{stage.name()}_vjp_s", [w, x, s_sym, lam], [g[:nw], g[nw:]],
                            ["w", "x", "s", "lam"], ["gw", "gx"])
    else:  # run-time parameters p stay the last input
        phi_s = ca.Function(f"{stage.name()}_s", [w, x, p], [rep.phi_fwd, s_fwd],
                            ["w", "x", "p"], ["phi", "s"])
        vjp_s = ca.Function(f"{stage.name()}_vjp_s", [w, x, s_sym, lam, p],
                            [g[:nw], g[nw:]], ["w", "x", "s", "lam", "p"], ["gw", "gx"])
    return phi_s, vjp_s, len(kept)
