"""Output paths are checked before any compute (issue 13, item 5): ``swingup --json/--plot``
onto a directory or into an unwritable one, ``demo --out`` read-only, ``sweep --out`` naming
a file each fail at once with one line (exit 2) and compute nothing; a write that still
fails after the compute is one line (exit 1) and the result is kept (JSON on stdout)."""
import errno
import json
import os
import subprocess

import pytest

from moreauctl import _io, demo, models, solve, studies
from moreauctl.cli import main


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write to: mode 0555, or for root (who ignores modes) a
    read-only tmpfs mounted there."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() != 0:
        os.chmod(d, 0o555)
        yield str(d)
        os.chmod(d, 0o755)
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(d)],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("running as root without mount: no read-only directory to test with")
    try:
        yield str(d)
    finally:
        subprocess.run(["umount", str(d)], check=True)


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if any command starts computing."""
    def computed(*a, **k):
        raise AssertionError("computed before checking the output paths")
    from moreauctl.cli import demo as cli_demo
    from moreauctl.cli import swingup as cli_swingup
    from moreauctl.studies import sweep as sweep_mod
    monkeypatch.setattr(cli_swingup, "solve", computed)
    monkeypatch.setattr(cli_demo, "compute", computed)
    monkeypatch.setattr(sweep_mod, "_run_cells", computed)
    monkeypatch.setattr(sweep_mod, "_get_problem", computed)


def _one_line_error(capsys, *parts):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("moreauctl: error:"), err
    for p in parts:
        assert p in err, err
    return err


SWINGUP = ["swingup", "--horizon", "10", "--iters", "2", "--quiet"]


def test_swingup_outputs_checked_before_compute(tmp_path, readonly_dir, no_compute, capsys):
    assert main(SWINGUP + ["--json", str(tmp_path)]) == 2
    _one_line_error(capsys, f"--json {str(tmp_path)!r} is a directory")
    assert main(SWINGUP + ["--plot", str(tmp_path)]) == 2
    _one_line_error(capsys, "--plot", "is a directory")
    ro = os.path.join(readonly_dir, "r.json")
    assert main(SWINGUP + ["--json", ro]) == 2
    _one_line_error(capsys, f"--json {ro!r} cannot be written", "not writable")
    assert main(SWINGUP + ["--plot", os.path.join(readonly_dir, "sub", "f.png")]) == 2
    _one_line_error(capsys, "--plot", "not writable")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(SWINGUP + ["--json", str(a_file / "r.json")]) == 2
    _one_line_error(capsys, f"{str(a_file)!r} is a file")


def test_demo_and_sweep_out_checked_before_compute(tmp_path, readonly_dir, no_compute,
                                                    capsys):
    assert main(["demo", "--out", readonly_dir, "--quiet"]) == 2
    _one_line_error(capsys, f"--out {readonly_dir!r} is not writable")
    a_file = tmp_path / "results"
    a_file.write_text("x")
    assert main(["sweep", "--out", str(a_file), "--horizons", "10", "--quiet"]) == 2
    _one_line_error(capsys, f"--out {str(a_file)!r} is a file")
    with pytest.raises(ValueError, match="out .* is a file"):
        studies.horizon_sweep("pendulum", [10], out=str(a_file))
    with pytest.raises(ValueError, match="out .* is not writable"):
        studies.horizon_sweep("pendulum", [10], out=os.path.join(readonly_dir, "s"))
    with pytest.raises(ValueError, match="out .* is not writable"):
        demo.run_demo(out=readonly_dir)


def test_a_write_that_still_fails_keeps_the_json_on_stdout(tmp_path, monkeypatch, capsys):
    from moreauctl.cli import args as cli_args

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    monkeypatch.setattr(cli_args, "write_text_atomic", full)
    dest = str(tmp_path / "r.json")
    assert main(SWINGUP + ["--json", dest]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err == (f"moreauctl: error: could not write --json {dest!r}: No space left on device;"
                   " the JSON result follows on stdout")
    result = json.loads(captured.out[captured.out.index("{"):])
    ref = solve(models.pendulum_swingup(horizon=10), "gd", step=0.5, iters=2, verbose=False)
    assert result["costs"] == ref.to_dict()["costs"]


def test_demo_write_failure_keeps_the_results(tmp_path, monkeypatch, capsys):
    res = solve(models.pendulum_swingup(horizon=10), "gd", step=0.5, iters=2, verbose=False)
    best = {10: {"GD (step 2^-1)": res}}

    def denied(path, obj, **kw):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    monkeypatch.setattr(demo, "write_json_atomic", denied)
    assert demo.write_outputs(str(tmp_path), best, "| table |") is False
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "results.json" in lines[0] and "Permission denied" in lines[0]
    out = captured.out
    payload = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert payload["10"]["GD (step 2^-1)"]["costs"] == res.to_dict()["costs"]
    assert sorted(os.listdir(tmp_path)) == ["fig3.png", "table.md"]


def test_check_output_helpers(tmp_path):
    assert _io.check_output_dir(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")
    assert not os.path.exists(tmp_path / "new")  # checking creates nothing
    assert _io.check_output_file(str(tmp_path / "a.json")) == str(tmp_path / "a.json")
    assert os.listdir(tmp_path) == []             # and leaves no probe behind
