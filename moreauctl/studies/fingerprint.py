"""What a stored cell was computed from: the problem's content and the code's version.

A cell's key (:func:`~moreauctl.studies.store.cell_key`) names its *settings* (plant or
factory name, horizon, dt, method, step, ...). Settings alone cannot tell that a factory was
edited (say, its target angle) or that the solver changed, so every cell record also carries
a fingerprint, and a sweep recomputes (and counts) the cells whose fingerprint differs from
the one of the problem and code it would run now:

- :func:`problem_fingerprint`: SHA-256 of the problem's content, i.e. what the solvers see:
  CasADi's serialization of the stage ``phi(w, x)`` and of the objective ``h(x)`` (an exact,
  deterministic text of the expression graphs, so the plant, its parameters, the scheme,
  ``dt``, the substeps, the stage cost and the target are all in it), the initial state
  ``x0_chain`` (exact hex floats), ``horizon``, ``dt``, ``scheme``, ``substeps`` and, when the
  problem has them, its control bounds;
- :func:`code_fingerprint`: moreauctl's version plus a SHA-256 of the package's source files,
  and the versions of casadi, numba and numpy (the compiled kernels' bits depend on them).
  Any edit of the package therefore recomputes the cells of a study: stale numbers are
  never served; resuming an interrupted study with the same code reuses every finished cell.
"""
from __future__ import annotations

import functools
import hashlib
import os
from typing import Any, Dict

import numpy as np

__all__ = ["problem_fingerprint", "code_fingerprint", "fingerprint"]


def _feed(h, text: str) -> None:
    """Length-prefixed update, so concatenations of different parts cannot collide."""
    data = text.encode("utf-8")
    h.update(f"{len(data)}:".encode("ascii"))
    h.update(data)


def _hexfloats(a) -> str:
    return ",".join(float(v).hex() for v in np.ravel(np.asarray(a, dtype=float)))


def problem_fingerprint(problem) -> str:
    """Hex SHA-256 of a :class:`~moreauctl.ControlProblem`'s content (see the module
    docstring); equal for two problems the solvers cannot tell apart."""
    h = hashlib.sha256()
    for attr in ("stage", "objective"):
        _feed(h, attr)
        _feed(h, getattr(problem, attr).serialize())
    _feed(h, "x0_chain:" + _hexfloats(problem.x0_chain))
    _feed(h, f"horizon:{int(problem.horizon)}")
    _feed(h, "dt:" + float(problem.dt).hex())
    _feed(h, f"scheme:{getattr(problem, 'scheme', '')}")
    _feed(h, f"substeps:{getattr(problem, 'substeps', 1)}")
    bounds = getattr(problem, "control_bounds", None)
    if bounds is not None:
        _feed(h, "bounds:" + ";".join(_hexfloats(b) for b in bounds))
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """``"<moreauctl version>+<12 hex digits of the package sources>"`` followed by the
    casadi, numba and numpy versions (computed once per process)."""
    import casadi
    import numba

    from .. import __version__
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for d, subdirs, files in os.walk(root):
        subdirs[:] = sorted(s for s in subdirs if s != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(d, name)
                _feed(h, os.path.relpath(path, root).replace(os.sep, "/"))
                with open(path, "rb") as f:
                    _feed(h, f.read().decode("utf-8", "replace"))
    return (f"moreauctl {__version__}+{h.hexdigest()[:12]}; casadi {casadi.__version__}; "
            f"numba {numba.__version__}; numpy {np.__version__}")


def fingerprint(problem) -> Dict[str, Any]:
    """``{"problem": problem_fingerprint(problem), "code": code_fingerprint()}``: what a
    cell record stores and a sweep compares."""
    return {"problem": problem_fingerprint(problem), "code": code_fingerprint()}
