"""Files that are complete or absent: the one atomic writer.

Every file moreauctl writes (study cells, summaries, JSON results, figures, generated kernel
modules) goes through :func:`atomic_write`: the bytes are written to a temporary file in the
destination's directory, flushed to disk, given the permissions a plain ``open(path, "w")``
would give (``0666`` minus the process umask, so a group-shared directory stays usable;
``mkstemp`` alone would leave ``0600``), then renamed over the destination. ``os.replace``
is atomic on POSIX and Windows, so a reader, or a process killed at any instant, sees either
the old file, the new one, or none.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from typing import Any, Iterator, Union

__all__ = ["atomic_write", "atomic_path", "write_text_atomic", "write_json_atomic",
           "umask", "TMP_PREFIX", "check_output_dir", "check_output_file",
           "clean_temporaries", "is_orphan_temporary", "ORPHAN_AGE"]

#: Prefix of temporaries; readers skip such names and cleaners may remove them. A writer's
#: temporary is named ``.tmp-<pid>@<host>-<random><suffix>.part``, so a cleaner can tell an
#: orphan (its writer is dead) from a file another running process is writing right now.
TMP_PREFIX = ".tmp-"

#: Age (seconds) after which a temporary whose writer cannot be checked (another host, or a
#: name without owner) is taken for an orphan. A writer holds its temporary for the time of
#: one file write.
ORPHAN_AGE = 3600.0


def _host() -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname())[:64]


def _tmp_prefix() -> str:
    return f"{TMP_PREFIX}{os.getpid()}@{_host()}-"

_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process umask (read without changing it for longer than two system calls)."""
    with _UMASK_LOCK:
        m = os.umask(0o022)
        os.umask(m)
    return m


def _fsync_dir(d: str) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Union[str, os.PathLike], *, suffix: str = "", keep_existing: bool = False,
                mode: int = 0o666) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on normal exit it is renamed to ``path``.

    Parameters
    ----------
    path : path-like
        Destination. Its directory is created if needed.
    suffix : str
        Suffix of the temporary name (matplotlib picks the format from it).
    keep_existing : bool
        If ``path`` already exists when the writer finishes, keep it and drop ours (for
        content-addressed files whose modification stamp others have recorded).
    mode : int
        Permission bits before the umask is applied (``0o666`` like ``open``).
    """
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=_tmp_prefix(), suffix=suffix + ".part")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode & ~umask())
        if keep_existing and os.path.exists(path):
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(d)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return True
    return True


def is_orphan_temporary(path: Union[str, os.PathLike], max_age: float = ORPHAN_AGE) -> bool:
    """Whether the temporary file ``path`` was left by a writer that is gone.

    Its name says which process writes it (``.tmp-<pid>@<host>-...``): on this host, it is an
    orphan exactly when that process is dead. A temporary of another host (a study directory
    shared by several machines) or of an older name format is an orphan only when older
    than ``max_age`` seconds. So a cleaner never deletes the temporary of a study running
    at the same time, here or elsewhere.
    """
    name = os.path.basename(os.fspath(path))
    if not name.startswith(TMP_PREFIX):
        return False
    owner, at, rest = name[len(TMP_PREFIX):].partition("@")
    if at and owner.isdigit() and "-" in rest and rest.rsplit("-", 1)[0] == _host():
        return not _pid_alive(int(owner))
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    return age > max_age


def clean_temporaries(directory: Union[str, os.PathLike], max_age: float = ORPHAN_AGE) -> int:
    """Remove the orphaned temporaries (see :func:`is_orphan_temporary`) directly under
    ``directory``; returns how many were removed."""
    n = 0
    d = os.fspath(directory)
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if name.startswith(TMP_PREFIX) and is_orphan_temporary(p, max_age):
            try:
                os.remove(p)
                n += 1
            except OSError:
                pass
    return n


def atomic_write(path: Union[str, os.PathLike], data: Union[str, bytes], *,
                 keep_existing: bool = False) -> str:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; returns ``path``."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, keep_existing=keep_existing) as tmp:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
    return os.fspath(path)


def write_text_atomic(path: Union[str, os.PathLike], text: str) -> str:
    """Text file, complete or absent."""
    return atomic_write(path, text)


def write_json_atomic(path: Union[str, os.PathLike], obj: Any, **dump_kw) -> str:
    """``json.dumps(obj)`` to ``path``, complete or absent (NaN/inf refused by default:
    JSON has no such values; :meth:`moreauctl.SolveResult.to_dict` spells them out)."""
    dump_kw.setdefault("indent", 1)
    dump_kw.setdefault("allow_nan", False)
    return atomic_write(path, json.dumps(obj, **dump_kw))


# ---------------------------------------------------------------------------------------
# output paths, checked before any compute
# ---------------------------------------------------------------------------------------

def _probe(directory: str) -> None:
    """Create and remove a temporary file in ``directory`` (raises OSError if we cannot):
    the one test that sees permissions, ACLs, read-only file systems and root alike."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=".probe")
    os.close(fd)
    os.unlink(tmp)


def check_output_dir(path: Union[str, os.PathLike], what: str = "output directory") -> str:
    """Check, before any compute, that files can be written under the directory ``path``
    (created later if missing). Returns ``path``.

    Raises
    ------
    ValueError
        Naming ``what``, the path and the reason: it is a file, an ancestor is a file, or
        the directory (or the nearest existing ancestor, for a missing one) is not writable.
    """
    p = os.fspath(path)
    if os.path.exists(p) and not os.path.isdir(p):
        raise ValueError(f"{what} {p!r} is a file; expected a directory (or a new path)")
    existing = os.path.abspath(p)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{what} {p!r} cannot be created: {existing!r} is a file")
    try:
        _probe(existing)
    except OSError as e:
        where = "" if existing == os.path.abspath(p) else f" (in {existing!r})"
        raise ValueError(f"{what} {p!r} is not writable{where}: {e.strerror or e}") from None
    return p


def check_output_file(path: Union[str, os.PathLike], what: str = "output file") -> str:
    """Check, before any compute, that a file can be written at ``path`` (atomically: a
    temporary file in its directory, then a rename). Returns ``path``.

    Raises
    ------
    ValueError
        When ``path`` is a directory or its directory cannot be created or written.
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        raise ValueError(f"{what} {p!r} is a directory; expected a file path")
    try:
        check_output_dir(os.path.dirname(os.path.abspath(p)), "its directory")
    except ValueError as e:
        raise ValueError(f"{what} {p!r} cannot be written: {e}") from None
    return p
