"""Results that survive: one JSON file per finished cell, written atomically.

Layout of a study directory ``out``::

    out/cells/<key>.json      one finished cell (settings + costs), complete or absent
    out/summary.csv, ...      reports (see :mod:`moreauctl.studies.report`)

A cell's key hashes *all* its settings (problem, horizon, dt, method, step, iterations,
solver keywords, cell format), so a changed setting is a new cell and an unchanged one is
found again on the next run. Files are written to a temporary name in the same directory,
flushed to disk, then renamed over the final name (``os.replace`` is atomic on POSIX and
Windows), so a study killed at any instant leaves every ``<key>.json`` either complete or
absent. Leftover temporaries (``.tmp-*``) are ignored when reading and removed by
:meth:`CellStore.clean_temporaries` when their writer is gone (a temporary names its
writer's process and host, so the cleaner of one study never deletes the temporary of
another study running at the same time).

Two studies may share a directory: each cell file is replaced atomically, so at worst the
same cell is computed twice.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Iterator, Mapping, Optional, Tuple

# The writers live in moreauctl._io (one atomic writer for the package); their names are
# re-exported here and by moreauctl.studies, where earlier versions defined them.
from .._io import atomic_path, clean_temporaries, write_json_atomic, write_text_atomic

__all__ = ["CELL_FORMAT", "cell_key", "write_json_atomic", "write_text_atomic", "atomic_path",
           "CellStore"]

#: Version of the cell record layout; part of every key, so a layout change recomputes.
CELL_FORMAT = 1


def _canonical(obj: Any) -> Any:
    """JSON-ready, order-independent form of a settings mapping (floats kept exact)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float):
        return float.hex(obj)  # exact, and distinguishes 0.1 from 0.1000000001
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy scalar
        return _canonical(obj.item())
    raise TypeError(f"cell settings must be JSON-like (numbers, strings, lists, dicts); "
                    f"got {type(obj).__name__}: {obj!r}")


def cell_key(spec: Mapping[str, Any]) -> str:
    """Stable file-name-safe key of a cell: a readable prefix plus a SHA-256 of all settings.

    For example ``cell_key({"kind": "run", "horizon": 50, "method": "gd", "step": 0.5})``
    is ``"run-T50-gd-"`` followed by 20 hex digits.
    """
    blob = json.dumps(_canonical(dict(spec, cell_format=CELL_FORMAT)), sort_keys=True,
                      separators=(",", ":"))
    digest = hashlib.sha256(blob.encode()).hexdigest()[:20]
    kind = str(spec.get("kind", "cell"))
    T = spec.get("horizon", "")
    method = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(spec.get("method", "")))
    return f"{kind}-T{T}-{method}-{digest}"


class CellStore:
    """Finished cells of one study, as ``<dir>/cells/<key>.json``."""

    def __init__(self, directory: str):
        self.directory = os.fspath(directory)
        self.cells_dir = os.path.join(self.directory, "cells")
        os.makedirs(self.cells_dir, exist_ok=True)

    def path(self, key: str) -> str:
        return os.path.join(self.cells_dir, key + ".json")

    def read(self, key: str) -> Tuple[Optional[dict], Optional[str]]:
        """``(record, None)`` for a stored cell, ``(None, None)`` when absent, and
        ``(None, why)`` when the file cannot be used (unreadable, not JSON, or holding another
        cell). Never raises for a damaged file: the caller recomputes the cell."""
        p = self.path(key)
        try:
            with open(p, encoding="utf-8") as f:
                rec = json.load(f)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as e:
            return None, f"unreadable ({e})"
        if not isinstance(rec, dict) or rec.get("key") != key:
            return None, f"it does not hold cell {key}"
        return rec, None

    def load(self, key: str) -> Optional[dict]:
        """The stored record of ``key``, or None if absent (or unusable: then it is
        recomputed, with a warning naming the file)."""
        rec, why = self.read(key)
        if why is not None:
            warnings.warn(f"ignoring cell file {self.path(key)}: {why}; it will be recomputed",
                          RuntimeWarning, stacklevel=2)
        return rec

    def save(self, key: str, record: Mapping[str, Any]) -> str:
        return write_json_atomic(self.path(key), dict(record))

    def keys(self) -> Iterator[str]:
        for name in sorted(os.listdir(self.cells_dir)):
            if name.endswith(".json") and not name.startswith("."):
                yield name[:-len(".json")]

    def clean_temporaries(self) -> int:
        """Remove temporaries left by writers that were killed mid-write (never those of a
        study writing here at the same time: see
        ``moreauctl._io.is_orphan_temporary``); returns how many."""
        return clean_temporaries(self.cells_dir)
