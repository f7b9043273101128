"""The kernel cache repairs itself (issue 13, item 2): every generated file is checked against
the content hash recorded when it was written; a truncated, garbled or hand-edited file, a
damaged ``.pyc``, or a damaged numba index (``.nbi``) or data file (``.nbc``) is regenerated
with a warning naming the file, and the kernels still compute the right numbers (pinned to
closed forms below). The default cache directory is created with mode 0700.

Each scenario damages one module of a cache populated by a first process, then a second
process builds all the modules: the damage is a later run's, as users meet it.
"""
import glob
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import casadi as ca
import numpy as np
import pytest

from moreauctl.codegen import build
from moreauctl.codegen import build_module

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: scenario -> tag of the module it damages (each module has its own kernel)
SCENARIOS = ("intact", "truncated", "garbled", "edited", "nohash", "pyc", "nbi", "nbc")

_CHILD = textwrap.dedent('''
    import json, sys, warnings
    import casadi as ca
    import numpy as np
    from moreauctl.codegen import build_module

    v = ca.SX.sym("v", 2)
    out = {}
    for k, tag in enumerate(sys.argv[2].split(",")):
        # a distinct kernel per module: kin(v) = (sin(v0) * v1 + k, exp(v1))
        fn = ca.Function("kin", [v], [ca.vertcat(ca.sin(v[0]) * v[1] + k, ca.exp(v[1]))])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mod = build_module({"kin": fn}, cache_dir=sys.argv[1], tag=tag)
            res = np.empty(2)
            mod.kin(np.array([0.5, 0.25]), res)
        s = mod.kin.stats
        out[tag] = {"file": mod.__file__, "value": res.tolist(),
                    "warnings": [str(w.message) for w in caught],
                    "hits": sum(s.cache_hits.values()), "misses": sum(s.cache_misses.values())}
    print(json.dumps(out))
''')


def _run(cache, tags=SCENARIOS):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for k in ("NUMBA_DISABLE_JIT", "NUMBA_CACHE_DIR", "PYTHONDONTWRITEBYTECODE"):
        env.pop(k, None)  # bytecode on: the .pyc scenario needs one
    proc = subprocess.run([sys.executable, "-c", _CHILD, cache, ",".join(tags)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _expected(k):
    # closed form of kin at v = (0.5, 0.25)
    return [math.sin(0.5) * 0.25 + k, math.exp(0.25)]


def _damage(path, how):
    d, name = os.path.split(path)
    stem = name[:-3]
    text = open(path, "rb").read()
    if how == "truncated":
        open(path, "wb").write(text[:len(text) // 2])
    elif how == "garbled":
        open(path, "wb").write(text[:200] + b"\x00\xff garbage \x13" + text[230:])
    elif how == "edited":  # other physics, file still valid Python
        open(path, "wb").write(text.replace(b"math.sin(", b"math.cos("))
    elif how == "nohash":
        open(path, "wb").write(text.split(b"\n", 1)[1])
    elif how == "pyc":
        (pyc,) = glob.glob(os.path.join(d, "__pycache__", stem + ".cpython-*.pyc"))
        head = open(pyc, "rb").read()[:16]  # a valid header (magic, source stamp), bad body
        open(pyc, "wb").write(head + b"\xff\xfe not marshal data")
    elif how in ("nbi", "nbc"):
        files = glob.glob(os.path.join(d, "__pycache__", f"{stem}.kin-*.{how}"))
        assert files, os.listdir(os.path.join(d, "__pycache__"))
        for f in files:
            data = open(f, "rb").read()
            open(f, "wb").write(data[:len(data) // 3])
    else:
        assert how == "intact"


@pytest.fixture(scope="module")
def damaged_cache(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("kcache"))
    first = _run(cache)
    for tag in SCENARIOS:
        assert first[tag]["misses"] == 1 and first[tag]["warnings"] == [], first[tag]
        head = open(first[tag]["file"]).readline()
        assert head.startswith(build.HASH_PREFIX)
        _damage(first[tag]["file"], tag)
    return cache, first, _run(cache)


@pytest.mark.parametrize("k,how", list(enumerate(SCENARIOS)))
def test_damaged_cache_file_is_regenerated_with_a_warning(damaged_cache, k, how):
    _, first, second = damaged_cache
    got = second[how]
    np.testing.assert_allclose(got["value"], _expected(k), rtol=1e-15)
    if how == "intact":
        assert got["warnings"] == [] and got["hits"] == 1 and got["misses"] == 0
        return
    assert len(got["warnings"]) == 1, got["warnings"]
    msg = got["warnings"][0]
    name = os.path.basename(first[how]["file"])[:-3]
    assert name in msg  # the warning names the file
    if how in ("nbi", "nbc"):
        assert "damaged numba cache file" in msg and ".nbi" in msg
        assert got["misses"] == 1  # compiled again
    elif how == "pyc":
        assert "importing it failed" in msg
    else:
        assert "regenerating the kernel cache file" in msg
        assert ("hash" in msg) and got["misses"] == 1
    # the file on disk is whole again
    assert build._damage(got["file"]) is None


def test_repaired_cache_is_used_without_warnings(damaged_cache):
    cache, _, _ = damaged_cache
    third = _run(cache)
    for tag, got in third.items():
        assert got["warnings"] == [] and got["hits"] == 1 and got["misses"] == 0, (tag, got)


def test_default_cache_dir_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("MOREAUCTL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    old = os.umask(0o022)
    try:
        x = ca.SX.sym("x")
        build_module({"k": ca.Function("k", [x], [2 * x])}, tag="private")
    finally:
        os.umask(old)
    d = tmp_path / "xdg" / "moreauctl"
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    assert [f for f in os.listdir(d) if f.startswith("private_")]


def test_cache_dir_writable_by_others_is_warned(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)
    x = ca.SX.sym("x")
    with pytest.warns(RuntimeWarning, match="writable by other users"):
        build_module({"k": ca.Function("k", [x], [3 * x])}, cache_dir=str(d), tag="open")


def test_unwritable_regeneration_names_the_file(tmp_path, monkeypatch):
    x = ca.SX.sym("x")
    fn = {"k": ca.Function("k", [x], [4 * x])}
    mod = build_module(fn, cache_dir=str(tmp_path), tag="ro")
    path = mod.__file__
    build._MODULES.pop(path)
    sys.modules.pop(mod.__name__)
    open(path, "a").write("# edited\n")

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(build, "atomic_write", refuse)
    with pytest.warns(RuntimeWarning, match="regenerating"), \
            pytest.raises(OSError, match=f"cannot write the generated kernel file {path}"):
        build_module(fn, cache_dir=str(tmp_path), tag="ro")
    shutil.rmtree(tmp_path)
