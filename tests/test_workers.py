"""Process pools of studies leave nothing behind (issue 13, item 4): the workers exit when
their parent dies (SIGKILL included), and SIGTERM stops a sweep and its pool the way Ctrl-C
does, keeping the finished cells."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")


def _children(pid):
    """Live (non-zombie) processes whose parent is ``pid``."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_sweep(tmp_path, delay):
    """``moreauctl sweep`` with 2 worker processes whose cells sleep ``delay`` s; returns the
    process once both workers are running cells."""
    out = str(tmp_path / "study")
    env = dict(os.environ, MOREAUCTL_STUDY_CELL_DELAY=str(delay),
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "moreauctl", "sweep", "--horizons", "10", "--methods", "gd",
         "--steps", "-6:-1", "--iters", "2", "--no-reference", "--workers", "2", "--quiet",
         "--out", out], env=env, cwd=str(tmp_path), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(_children(proc.pid)) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep never started its 2 workers"
        time.sleep(0.05)
    time.sleep(1.0)  # the workers import moreauctl and start their first cells
    return proc, out, _children(proc.pid)


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def test_workers_exit_when_the_sweep_is_killed(tmp_path):
    proc, _, workers = _start_sweep(tmp_path, delay=60)
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait()
        assert _wait_gone(workers, 10) == [], "orphaned pool workers are still alive"
    finally:
        for p in workers:  # never leave them behind, even when the test fails
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_sigterm_stops_the_sweep_and_its_pool_like_ctrl_c(tmp_path):
    proc, out, workers = _start_sweep(tmp_path, delay=60)
    try:
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=30)
        # the cells sleep 60 s: stopping took far less, so no worker finished its cell
        assert time.monotonic() - t0 < 20
        assert rc == 128 + signal.SIGTERM
        err = proc.stderr.read().decode()
        assert "SIGTERM: stopped" in err and "Traceback" not in err, err
        assert _wait_gone(workers, 10) == []
        cells = os.path.join(out, "cells")
        for f in os.listdir(cells) if os.path.isdir(cells) else []:
            assert not f.startswith(".tmp-")
            json.load(open(os.path.join(cells, f)))
    finally:
        for p in workers + [proc.pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_sigterm_handler_is_restored_and_main_thread_only():
    import threading

    from moreauctl.studies.executors import Terminated, terminate_on_signal
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as e, terminate_on_signal():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs between bytecodes
    assert e.value.signum == signal.SIGTERM and isinstance(e.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    seen = []

    def in_thread():
        with terminate_on_signal():
            seen.append(signal.getsignal(signal.SIGTERM))
    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert seen == [before]
