"""Where the runs of a study execute: any :class:`concurrent.futures.Executor`.

- :func:`make_executor` builds a local one by name: a process pool (the default of sweeps:
  one worker per core), a thread pool (the compiled kernels release the GIL) or
  :class:`SerialExecutor` (in this process; debugging and tiny studies);
- :func:`dask_executor` opens a Dask client (a running scheduler, or a local cluster of
  worker processes) and yields its executor, for studies larger than one machine;
- :func:`runs_in_process` tells whether submitted arguments stay in this process, or must
  be pickled to reach the workers.

Nothing here knows about problems or solvers: grids and sweeps pass their own functions.

Process pools clean up after themselves:

- the workers of :func:`make_executor`'s pool exit as soon as their parent process dies
  (SIGKILL included: a thread in each worker waits on the parent's sentinel), so a killed
  study leaves no idle worker behind;
- :func:`terminate_on_signal` turns SIGTERM into :class:`Terminated` (a
  ``KeyboardInterrupt``) while a study runs, so ``kill PID`` shuts the pool down the way
  Ctrl-C does; :func:`stop_workers` ends a pool's workers at once (finished cells are on
  disk already).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Iterator, Optional

from .._validate import positive_int

__all__ = ["SerialExecutor", "make_executor", "runs_in_process", "dask_executor",
           "EXECUTOR_KINDS", "Terminated", "terminate_on_signal", "stop_workers"]

#: the executors :func:`~moreauctl.studies.make_executor` builds by name
EXECUTOR_KINDS = ("process", "thread", "serial")


class SerialExecutor(Executor):
    """Runs each submitted call at once, in this process (debugging, tiny studies)."""

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` now; a finished Future holds its result or exception."""
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
        return ProcessPoolExecutor(max_workers=n, initializer=exit_with_parent)
    if kind == "thread":
        return ThreadPoolExecutor(max_workers=n)
    if kind == "serial":
        return SerialExecutor()
    raise ValueError(f"unknown executor {kind!r}; choose 'process', 'thread', 'serial', or pass "
                     "a concurrent.futures.Executor (e.g. a Dask client's get_executor())")


def exit_with_parent() -> None:
    """Pool initializer: end this worker process when its parent process dies (and let
    SIGTERM end it).

    A daemon thread waits on the parent's sentinel (a pipe multiprocessing gives every child
    process; it becomes ready when the parent exits or is killed, even by SIGKILL) and then
    ends the worker with ``os._exit``: an orphaned worker has nobody to report to. Without
    it, ``ProcessPoolExecutor`` workers of a killed study wait for work forever.
    """
    # A forked worker inherits the handler :func:`terminate_on_signal` installed in the
    # parent; SIGTERM must end a worker (stop_workers sends it), not raise in its cell.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing
        return
    sentinel = parent.sentinel

    def watch():
        multiprocessing.connection.wait([sentinel])
        os._exit(128 + signal.SIGHUP)

    threading.Thread(target=watch, name="moreauctl-exit-with-parent", daemon=True).start()


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by :func:`terminate_on_signal` when SIGTERM arrives
    (a ``KeyboardInterrupt``, so it stops a study exactly as Ctrl-C does)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def terminate_on_signal(signals=(signal.SIGTERM,)) -> Iterator[None]:
    """While the block runs, the given signals raise :class:`Terminated` in the main thread
    (the previous handlers are restored after). Does nothing outside the main thread, where
    Python cannot install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stop_workers(executor: Executor) -> None:
    """Shut ``executor`` down without waiting: pending calls are cancelled and, for a
    process pool, the worker processes are terminated now rather than after their current
    call (``ProcessPoolExecutor.terminate_workers`` on Python >= 3.14)."""
    if isinstance(executor, ProcessPoolExecutor):
        terminate = getattr(executor, "terminate_workers", None)
        if terminate is not None:  # pragma: no cover (Python >= 3.14)
            terminate()
            return
        for p in list((getattr(executor, "_processes", None) or {}).values()):
            if p.is_alive():
                p.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


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
