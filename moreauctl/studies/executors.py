"""Where the runs of a study execute: any :class:`concurrent.futures.Executor`.

- :func:`make_executor` builds a local one by name: a process pool (the default of sweeps:
  one worker per core), a thread pool (the compiled kernels release the GIL) or
  :class:`SerialExecutor` (in this process; debugging and tiny studies);
- :func:`dask_executor` opens a Dask client (a running scheduler, or a local cluster of
  worker processes) and yields its executor, for studies larger than one machine;
- :func:`runs_in_process` tells whether submitted arguments stay in this process, or must
  be pickled to reach the workers.

Nothing here knows about problems or solvers: grids and sweeps pass their own functions.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Iterator, Optional

from .._validate import positive_int

__all__ = ["SerialExecutor", "make_executor", "runs_in_process", "dask_executor",
           "EXECUTOR_KINDS"]

#: the executors :func:`make_executor` builds by name
EXECUTOR_KINDS = ("process", "thread", "serial")


class SerialExecutor(Executor):
    """Runs each submitted call at once, in this process (debugging, tiny studies)."""

    def submit(self, fn, /, *args, **kwargs):
        f = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 (delivered through the future)
            f.set_exception(e)
        return f


def _worker_count(workers: Optional[int]) -> int:
    """``workers``, checked, or one per core."""
    if workers is None:
        return os.cpu_count() or 1
    return positive_int("workers", workers)


def make_executor(kind: str = "process", workers: Optional[int] = None) -> Executor:
    """A local executor by name: ``"process"`` (default), ``"thread"`` or ``"serial"``.

    Parameters
    ----------
    kind : {"process", "thread", "serial"}
    workers : int, optional
        Processes or threads of a pool (default: one per core).

    For Dask, use :func:`dask_executor`, or pass ``dask.distributed.Client(...)
    .get_executor()`` to :func:`~moreauctl.studies.horizon_sweep`.
    """
    n = _worker_count(workers)
    if kind == "process":
        return ProcessPoolExecutor(max_workers=n)
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=n)
    if kind == "serial":
        return SerialExecutor()
    raise ValueError(f"unknown executor {kind!r}; choose 'process', 'thread', 'serial', or pass "
                     "a concurrent.futures.Executor (e.g. a Dask client's get_executor())")


def runs_in_process(executor: Executor) -> bool:
    """True when ``executor`` runs calls in this process (their arguments need no pickling)."""
    return isinstance(executor, (ThreadPoolExecutor, SerialExecutor))


@contextlib.contextmanager
def dask_executor(address: Optional[str] = None,
                  workers: Optional[int] = None) -> Iterator[Executor]:
    """Yield the executor of a Dask client; close the client (and cluster) on exit.

    Parameters
    ----------
    address : str, optional
        A running scheduler (``"tcp://host:8786"``). Without it a ``LocalCluster`` of
        ``workers`` single-threaded worker processes is started (one per core by default).
    workers : int, optional
        Size of the local cluster (ignored with ``address``).

    Raises
    ------
    ValueError
        When ``dask.distributed`` is not installed (``pip install 'moreauctl[dask]'``).
    """
    try:
        from dask.distributed import Client, LocalCluster  # optional dependency
    except ImportError:
        raise ValueError("the dask executor needs dask.distributed: pip install "
                         "'moreauctl[dask]'") from None
    n = _worker_count(workers)
    with contextlib.ExitStack() as stack:
        if address:
            client = stack.enter_context(Client(address))
        else:
            cluster = stack.enter_context(LocalCluster(n_workers=n, threads_per_worker=1,
                                                       processes=True))
            client = stack.enter_context(Client(cluster))
        yield client.get_executor()
