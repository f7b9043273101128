"""Cells of a study: load the finished ones from disk, run the others on an executor, store
each as soon as it finishes (one copy of this loop for sweeps and network studies).

A *cell* is a JSON-like spec with a stable key (:func:`.store.cell_key`) and a record (a
JSON-ready dict) computed by a top-level function ``fn(spec, *args)`` in a worker.
"""
from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import Executor, as_completed
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .executors import make_executor, stop_workers
from .store import CellStore

__all__ = ["compute_cells", "run_pending", "floats_to_json", "floats_from_json"]


def floats_to_json(values) -> list:
    """Floats for a JSON record: non-finite values spelled ``"nan"``, ``"inf"``, ``"-inf"``
    (JSON has no such numbers)."""
    out = []
    for c in np.asarray(values, dtype=float).tolist():
        out.append(c if math.isfinite(c) else ("nan" if math.isnan(c) else ("inf" if c > 0 else "-inf")))
    return out


def floats_from_json(values) -> np.ndarray:
    """The inverse of :func:`floats_to_json`."""
    return np.array([float(v) for v in values], dtype=float)


def compute_cells(specs: Mapping[str, Mapping[str, Any]], fn: Callable, args: Sequence = (), *,
                  out: Optional[str] = None, force: bool = False,
                  executor: Union[None, str, Executor] = None, workers: Optional[int] = None,
                  progress: bool = True, describe: Callable[[Mapping], str] = str,
                  order: Optional[Callable[[list], list]] = None,
                  check: Optional[Callable[[Mapping, Mapping], Optional[str]]] = None
                  ) -> Tuple[Dict[str, dict], int]:
    """The records of every cell of ``specs`` (``{key: spec}``).

    Parameters
    ----------
    fn, args
        ``fn(spec, *args) -> record``, picklable (it runs in worker processes).
    out : str, optional
        Study directory: finished cells are read from ``out/cells`` (unless ``force``) and
        every new one is written there atomically as soon as it finishes.
    executor : Executor, or "process" | "thread" | "serial", optional
        Default a local process pool of ``workers`` (one per core); an executor passed in
        is not shut down.
    progress : bool
        A tqdm bar over cells; ``describe(spec)`` names the last finished one.
    order : callable, optional
        ``order(pending keys) -> keys`` in submission order.
    check : callable, optional
        ``check(record, spec) -> None or why``: a stored record it rejects is named in a
        warning and recomputed (as an unreadable cell file is).

    Returns
    -------
    records : dict ``key -> record``
    n_loaded : int
        Cells found finished on disk.

    Raises
    ------
    RuntimeError
        When a cell raises (naming it); the other cells are cancelled, and those that
        finished are already stored.
    """
    store = CellStore(out) if out is not None else None
    records: Dict[str, dict] = {}
    if store is not None:
        store.clean_temporaries()
        if not force:
            for k in specs:
                rec, why = store.read(k)
                if rec is not None and check is not None:
                    why = check(rec, specs[k])
                if why is not None:
                    warnings.warn(f"ignoring cell file {store.path(k)}: {why}; it will be "
                                  "recomputed", RuntimeWarning, stacklevel=2)
                elif rec is not None:
                    records[k] = rec
    n_loaded = len(records)
    pending = [k for k in specs if k not in records]
    if order is not None:
        pending = list(order(pending))
    if pending:
        run_pending(pending, specs, fn, lambda spec: tuple(args), records, store=store,
                    executor=executor, workers=workers, progress=progress, n_loaded=n_loaded,
                    describe=describe)
    return records, n_loaded


def run_pending(pending: Sequence[str], specs: Mapping[str, Mapping[str, Any]], fn: Callable,
                args_for: Callable[[Mapping], tuple], records: Dict[str, dict], *,
                store: Optional[CellStore] = None,
                executor: Union[None, str, Executor] = None, workers: Optional[int] = None,
                progress: bool = True, n_loaded: int = 0,
                describe: Callable[[Mapping], str] = str,
                verify: Optional[Callable[[Mapping, Mapping], None]] = None) -> None:
    """Compute the ``pending`` cells, ``fn(spec, *args_for(spec))``, on the executor, storing
    each as it finishes (into ``records`` and the store). ``verify(record, spec)`` may raise
    to refuse a computed record. On any exception, Ctrl-C or SIGTERM included, a pool this
    function created is stopped at once (its workers terminated); finished cells stay."""
    own = executor is None or isinstance(executor, str)
    ex = make_executor(executor or "process", min(workers or os.cpu_count() or 1, len(pending))) \
        if own else executor
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(specs), initial=n_loaded, desc="cells", unit="cell",
                   dynamic_ncols=True)
    futures = {}
    try:
        for k in pending:
            futures[ex.submit(fn, specs[k], *args_for(specs[k]))] = k
        for fut in as_completed(futures):
            k = futures[fut]
            try:
                rec = fut.result()
            except Exception as e:
                raise RuntimeError(f"cell {describe(specs[k])} failed: {e}") from e
            if verify is not None:
                verify(rec, specs[k])
            records[k] = rec
            if store is not None:
                store.save(k, rec)
            if bar is not None:
                bar.set_postfix_str(describe(specs[k]), refresh=False)
                bar.update(1)
    except BaseException:
        for f in futures:
            f.cancel()
        if own:
            stop_workers(ex)  # Ctrl-C or SIGTERM: no worker finishes its cell for nobody
            own = False
        raise
    finally:
        if bar is not None:
            bar.close()
        if own:
            ex.shutdown(wait=True)
