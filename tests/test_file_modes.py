"""Files moreauctl writes honor the umask (issue 13, item 3): results, summaries, figures,
JSON and generated kernel modules get ``0666 & ~umask`` like a plain ``open(path, "w")``
(``mkstemp`` alone would leave 0600), also in a group-shared (setgid) directory, where the
group inherits the files and can read and write them."""
import grp
import os
import stat

import casadi as ca
import pytest

from moreauctl import _io, plots, studies
from moreauctl.cli import args as cli_args
from moreauctl.codegen import build_module


@pytest.fixture
def umask():
    """Set the process umask for one test, restore it after."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda m: os.umask(m)
    os.umask(saved)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _other_group():
    """A group other than ours to share a directory with (root may chown to any), or ours."""
    mine = os.getegid()
    if os.geteuid() == 0:
        for g in grp.getgrall():
            if g.gr_gid != mine:
                return g.gr_gid
    return mine


def _write_everything(d):
    """One file of each kind moreauctl writes, under ``d``; returns their paths."""
    paths = [_io.write_text_atomic(os.path.join(d, "note.txt"), "x"),
             _io.write_json_atomic(os.path.join(d, "r.json"), {"a": 1})]
    cli_args.write_json({"b": 2}, os.path.join(d, "cli.json"))
    paths.append(os.path.join(d, "cli.json"))
    plt = plots._plt()
    fig = plt.figure(figsize=(1, 1))
    paths.append(plots.save_figure(fig, os.path.join(d, "fig.png")))
    plt.close(fig)
    store = studies.CellStore(os.path.join(d, "study"))
    paths.append(store.save("k", {"key": "k"}))
    x = ca.SX.sym("x")
    mod = build_module({"k": ca.Function("k", [x], [5 * x])}, cache_dir=os.path.join(d, "cache"),
                       tag="modes")
    paths.append(mod.__file__)
    return paths


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_files_get_0666_minus_the_umask(tmp_path, umask, mask):
    umask(mask)
    for p in _write_everything(str(tmp_path)):
        assert _mode(p) == 0o666 & ~mask, (p, oct(_mode(p)))
    assert not [f for f in os.listdir(tmp_path) if f.startswith(_io.TMP_PREFIX)]


def test_sweep_outputs_in_a_group_shared_directory(tmp_path, umask):
    gid = _other_group()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, -1, gid)
    os.chmod(shared, 0o2775)  # setgid: new files and folders belong to the group
    umask(0o002)
    out = str(shared / "study")
    studies.horizon_sweep("pendulum", [5], {"gd": {"method": "gd", "steps": [0.5]}}, iters=1,
                          executor="serial", reference=None, progress=False, out=out)
    files = [os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs]
    names = {os.path.basename(f) for f in files}
    assert {"summary.csv", "summary.md", "sweep.json", "fig_min_cost.png"} <= names
    assert any(os.path.dirname(f).endswith("cells") for f in files)
    for f in files:
        st = os.stat(f)
        assert stat.S_IMODE(st.st_mode) == 0o664, (f, oct(st.st_mode))  # group rw, others r
        assert st.st_gid == gid, f
    # the second member of the group can replace every file: the directory is theirs too
    assert stat.S_IMODE(os.stat(os.path.join(out, "cells")).st_mode) & 0o070 == 0o070
