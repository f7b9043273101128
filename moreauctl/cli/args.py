"""Argument types and option groups shared by the sub-commands and the scripts in ``demos/``.

Every ``type=`` function here turns one command-line string into a checked value, or raises
:class:`argparse.ArgumentTypeError`, which argparse prints as one line naming the option,
what was expected and what arrived::

    moreauctl sweep: error: argument --workers: value must be an integer >= 1; got 0

The checks themselves are those of ``moreauctl._validate`` (one copy of each in the
package); this module only adapts them to strings. Option groups (:func:`add_problem_args`,
:func:`add_study_arguments`, ...) keep the same option spelled and checked the same way in
every command. Results go to disk through :func:`write_json` (complete or absent).
"""
from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from typing import Callable, Dict, List, Optional, Tuple, Union

from .. import _validate, models
from .._io import check_output_dir, check_output_file, write_text_atomic
from ..discretize import SCHEMES
from ..studies.grid import check_exponent

__all__ = ["positive_float", "nonnegative_float", "positive_int", "nonnegative_int", "int_list",
           "exponent_range",
           "parse_steps", "steps_arg", "range_arg", "allow_negative_ranges", "add_quiet",
           "add_plant_arg", "add_scheme_arg", "add_problem_args", "make_problem",
           "add_study_arguments", "write_json", "write_json_or_stdout", "check_output_file",
           "check_output_dir", "report_write_error", "cost_table"]


def _arg_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """Decorator: ``parse(text)`` as an argparse ``type=`` function, its ValueError or
    TypeError turned into an ArgumentTypeError (argparse prefixes the option's name)."""
    @functools.wraps(parse)
    def arg(text: str):
        try:
            return parse(text)
        except (TypeError, ValueError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return arg


def _int_or_text(text: str) -> Union[int, str]:
    """``"12"`` -> 12; anything else unchanged, so the validator names what arrived."""
    try:
        return int(text)
    except ValueError:
        return text


@_arg_type
def positive_float(text: str) -> float:
    """``"0.5"`` -> 0.5: a finite number > 0."""
    return _validate.positive_number("value", text)


@_arg_type
def nonnegative_float(text: str) -> float:
    """``"0"`` -> 0.0: a finite number >= 0."""
    return _validate.nonnegative_number("value", text)


@_arg_type
def positive_int(text: str) -> int:
    """``"3"`` -> 3: an integer >= 1."""
    return _validate.positive_int("value", _int_or_text(text))


@_arg_type
def nonnegative_int(text: str) -> int:
    """``"0"`` -> 0: an integer >= 0."""
    return _validate.nonnegative_int("value", _int_or_text(text))


@_arg_type
def int_list(text: str) -> List[int]:
    """``"50,100"`` -> ``[50, 100]``: comma-separated integers >= 1 (horizons)."""
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers; got {text!r}") from None
    if not vals:
        raise ValueError(f"expected comma-separated integers >= 1; got {text!r}")
    return [_validate.positive_int("every entry", v) for v in vals]


def exponent_range(text: str) -> Tuple[int, int]:
    """``"-10:10"`` -> ``(-10, 10)``: a step grid ``2^LO..2^HI`` with ``LO <= HI``.

    Raises
    ------
    ValueError
        Naming the expected form and the text that arrived.
    """
    lo, sep, hi = text.partition(":")
    try:
        lo, hi = int(lo), int(hi)
    except ValueError:
        raise ValueError(
            f"a step grid is 'LO:HI' (powers of two 2^LO..2^HI); got {text!r}") from None
    if not sep or hi < lo:
        raise ValueError(f"a step grid is 'LO:HI' with LO <= HI; got {text!r}")
    return check_exponent("LO", lo), check_exponent("HI", hi)


def parse_steps(text: str) -> Union[Tuple[int, int], Dict[str, Tuple[int, int]]]:
    """Step grids as powers of two: ``"LO:HI"`` -> ``(lo, hi)`` for every method;
    ``"gd=-10:1,moreau-gd=0:11"`` -> ``{label: (lo, hi)}``.

    Raises
    ------
    ValueError
        Naming the expected form and the text that arrived.
    """
    if "=" not in text:
        return exponent_range(text)
    out = {}
    for part in text.split(","):
        label, eq, rng = part.partition("=")
        if not eq or not label.strip():
            raise ValueError(f"per-method step grids are 'LABEL=LO:HI,...'; got {text!r}")
        out[label.strip()] = exponent_range(rng.strip())
    return out


#: ``--steps`` of ``moreauctl sweep``: :func:`parse_steps` for argparse
steps_arg = _arg_type(parse_steps)
#: ``--steps LO:HI`` of the demos: :func:`exponent_range` for argparse
range_arg = _arg_type(exponent_range)

# argparse reads an argument starting with "-" as an option unless it matches this pattern
# of negative numbers; -LO:HI step ranges are added to it.
_NEGATIVE_VALUE = re.compile(r"^-\d+$|^-\d*\.\d+$|^-\d+:-?\d+$")


def allow_negative_ranges(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``parser`` read values such as ``-10:10`` (a step grid) as values, not options.

    argparse treats any argument starting with ``-`` as an option unless it looks like a
    negative number; this widens its "negative number" pattern to ``-LO:HI`` ranges
    (``--steps=-10:10`` works with any parser). Returns ``parser``.
    """
    parser._negative_number_matcher = _NEGATIVE_VALUE
    return parser


def add_quiet(parser: argparse.ArgumentParser,
              help: str = "no progress bar") -> argparse.ArgumentParser:
    """``--quiet``: long work shows progress unless it is set."""
    parser.add_argument("--quiet", action="store_true", help=help)
    return parser


def add_plant_arg(parser) -> None:
    """``--plant``: a name of :data:`moreauctl.models.MODELS`."""
    parser.add_argument("--plant", default="pendulum", choices=sorted(models.MODELS))


def add_scheme_arg(parser, default: Optional[str] = None,
                   help: str = "discretization (default: the model's)") -> None:
    """``--scheme``: one of the discretization schemes (checked before any work)."""
    parser.add_argument("--scheme", default=default, choices=sorted(SCHEMES), help=help)


def add_problem_args(parser) -> None:
    """``--plant --horizon --dt --scheme``: one problem, built by :func:`make_problem`."""
    add_plant_arg(parser)
    parser.add_argument("--horizon", type=positive_int, default=100, help="number of stages T")
    parser.add_argument("--dt", type=positive_float, default=None,
                        help="time step (default: the model's, 0.1 for the pendulum)")
    add_scheme_arg(parser)


def make_problem(args: argparse.Namespace):
    """The problem of :func:`add_problem_args`' options (model defaults where unset)."""
    kw = {"horizon": args.horizon}
    if args.dt is not None:
        kw["dt"] = args.dt
    if args.scheme is not None:
        kw["scheme"] = args.scheme
    return models.MODELS[args.plant](**kw)


def add_study_arguments(parser: argparse.ArgumentParser, *, horizons: str, steps: str,
                        horizons_help: str = "comma-separated horizons",
                        steps_help: str = "step grid 2^LO..2^HI") -> argparse.ArgumentParser:
    """Options of the study scripts in ``demos/``, checked like ``moreauctl sweep``'s.

    Adds ``--horizons`` (-> list of int), ``--steps LO:HI`` (-> ``(lo, hi)``), ``--workers``
    (-> int >= 1), ``--executor`` (process or serial; default: the study's own) and
    ``--quiet``; ``horizons`` and ``steps`` are the defaults, as command-line text.
    Returns ``parser``, which also reads negative ranges (:func:`allow_negative_ranges`).
    """
    parser.add_argument("--horizons", type=int_list, default=int_list(horizons),
                        help=f"{horizons_help} (default {horizons})")
    parser.add_argument("--steps", type=range_arg, default=exponent_range(steps),
                        help=f"{steps_help} (default {steps})")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: one per core)")
    parser.add_argument("--executor", default=None, choices=["process", "serial"])
    add_quiet(parser)
    return allow_negative_ranges(parser)


def cost_table(costs, every=None, rows: int = 10, head=("iter", "cost")) -> str:
    """About ``rows`` rows ``iter  cost`` (the last iteration always included); ``head``
    names the two columns."""
    n = len(costs)
    every = every or max(1, (n - 1) // rows)
    w = max(4, len(head[0]))
    lines = [f"  {head[0]:>{w}}  {head[1]}"]
    for k in list(range(0, n, every)) + ([n - 1] if (n - 1) % every else []):
        lines.append(f"  {k:{w}d}  {costs[k]:.6g}")
    return "\n".join(lines)


def write_json(obj, dest: str) -> None:
    """``obj`` as JSON to ``dest``: stdout for ``"-"``, else a file, complete or absent."""
    text = json.dumps(obj, indent=1)
    if dest == "-":
        sys.stdout.write(text + "\n")
    else:
        write_text_atomic(dest, text)


def report_write_error(what: str, path: str, error: OSError, fallback: str = "") -> None:
    """One line on stderr: a file could not be written (after the compute), and where the
    result went instead."""
    reason = getattr(error, "strerror", None) or str(error)
    print(f"moreauctl: error: could not write {what} {path!r}: {reason}"
          + (f"; {fallback}" if fallback else ""), file=sys.stderr)


def write_json_or_stdout(obj, dest: str, what: str = "--json") -> bool:
    """:func:`write_json`; when the file cannot be written after all (the path was checked
    before the compute, but disks fill up and permissions change), say so in one line and
    print the JSON on stdout instead, so the result is kept. Returns whether ``dest`` was
    written."""
    try:
        write_json(obj, dest)
        return True
    except OSError as e:
        report_write_error(what, dest, e, "the JSON result follows on stdout")
        write_json(obj, "-")
        return False


#: command-line flags of oracle options: ``--flag`` -> (option name, type, help)
ORACLE_FLAGS = {
    "--inner": ("inner", str, "inner algorithm of the prox/inversion subproblems "
                              "(paper, gd, newton; cg for quadratic IBP lines)"),
    "--alpha-convention": ("alpha_convention", str, "Moreau's alpha reading: eq52 or text"),
    "--schedule": ("schedule", str, "step schedule of the Moreau family: geometric or constant"),
    "--gamma-time": ("gamma_time", None, "seconds over which gamma_t decays by gamma "
                                         "(gamma per unit of time)"),
    "--kappa": ("kappa", None, "penalty of auglag / prox-target-prop"),
    "--beta": ("beta", None, "Prop. 2.2's multiplier steps beta_t = beta / gamma_t "
                             "(moreau, auglag)"),
    "--tau": ("tau", None, "target step of proxprop / penalized"),
    "--rho": ("rho", None, "penalty of the penalized sweep"),
}


def add_oracle_args(parser) -> None:
    """The oracle options of :data:`ORACLE_FLAGS` (only those given reach the oracle), and
    ``--oracle-option KEY=VALUE`` (repeatable; VALUE parsed as JSON, else a string) for any
    other option of the method's oracle."""
    choices = {"--inner": ["paper", "gd", "newton", "cg"],
               "--alpha-convention": ["eq52", "text"], "--schedule": ["geometric", "constant"]}
    for flag, (_, typ, help_) in ORACLE_FLAGS.items():
        if flag in choices:
            parser.add_argument(flag, default=None, choices=choices[flag], help=help_)
        elif flag in ("--kappa", "--beta"):
            parser.add_argument(flag, type=nonnegative_float, default=None, help=help_)
        else:
            parser.add_argument(flag, type=positive_float, default=None, help=help_)
    parser.add_argument("--oracle-option", action="append", default=[], metavar="KEY=VALUE",
                        type=_key_value, help="any other oracle option (repeatable)")


def _key_value(text: str):
    key, sep, val = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        value = json.loads(val)
    except ValueError:
        value = val
    return key.strip(), value


def oracle_options(args: argparse.Namespace) -> dict:
    """The oracle options set on the command line (empty: the method's defaults)."""
    opts = {}
    for flag, (name, _, _) in ORACLE_FLAGS.items():
        val = getattr(args, flag[2:].replace("-", "_"), None)
        if val is not None:
            opts[name] = val
    for key, val in getattr(args, "oracle_option", []):
        if key in opts:
            raise ValueError(f"oracle option {key!r} given twice")
        opts[key] = val
    return opts
