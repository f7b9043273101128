"""``moreauctl train`` (issue 10, item 7): JSON on stdout, files with --out, clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import nn
from moreauctl.cli import main


def _run(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_train_json_on_stdout_matches_the_api(capsys):
    rc, out, err = _run(["train", "--dataset", "digits", "--hidden", "32", "--method", "sgd",
                         "--epochs", "3", "--json", "-", "--quiet"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert len(d["costs"]) == 4 and d["status"] == 0 and d["nit"] == 3 * 43
    assert 0.9 <= d["test_accuracy"] <= 1.0 and "train_accuracy" in d
    assert np.sum(d["confusion_matrix"]) == 450
    assert d["settings"]["dataset"] == "digits" and d["settings"]["hidden"] == [32]
    assert "w" not in d
    # the same run through the API
    task = nn.make_task(dataset="digits", hidden=[32], seed=0)
    res = mc.solve(task.problem, method="sgd", step=0.1, epochs=3, seed=0, verbose=False)
    assert d["costs"] == pytest.approx(list(res.costs), rel=1e-15)
    assert d["test_accuracy"] == task.accuracy(res.w)


def test_train_command_line_process(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "moreauctl")
    p = subprocess.run([exe, "train", "--dataset", "digits", "--hidden", "32", "--method",
                        "sgd", "--epochs", "3", "--json", "-"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert len(d["costs"]) == 4 and 0 <= d["test_accuracy"] <= 1
    assert "training objective" in p.stderr    # the log goes to stderr with --json -


def test_train_out_directory(tmp_path, capsys):
    out = tmp_path / "run"
    rc, text, _ = _run(["train", "--dataset", "digits", "--arch", "convnet", "--n-train", "200",
                        "--n-test", "50", "--method", "moreau-adam", "--step", "0.01", "--gamma",
                        "0.5", "--epochs", "1", "--batch-size", "50", "--out", str(out),
                        "--quiet"], capsys)
    assert rc == 0
    assert sorted(os.listdir(out)) == ["confusion.png", "curves.png", "result.json", "weights.npz"]
    rec = json.loads((out / "result.json").read_text())
    assert rec["settings"]["arch"] == "convnet" and len(rec["costs"]) == 2
    w = np.load(out / "weights.npz")
    assert w["W0"].shape == (16, 1, 5, 5) and w["W7"].shape == (10, 20)
    assert "test 0." in text or "test 1." in text


@pytest.mark.parametrize("argv, message", [
    (["--out", "/proc/nope"], "--out"),
    (["--json", "/etc/hostname/r.json"], "--json"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of"),
    (["--dataset", "mnist"], "dataset 'mnist' needs a directory: 'mnist:PATH'"),
    (["--dataset", "mnist:/nonexistent/mnist"], "directory not found: /nonexistent/mnist"),
    (["--dataset", "fashion-mnist:/nonexistent"], "apt-get install dataset-fashion-mnist"),
    (["--arch", "convnet", "--hidden", "32"], "arch='convnet' has a fixed architecture"),
    (["--method", "moreau-sgd"], "needs gamma"),
])
def test_train_bad_input(argv, message, capsys):
    rc, _, err = _run(["train", "--epochs", "1", "--quiet"] + argv, capsys)
    assert rc == 2 and message in err, err


@pytest.mark.parametrize("argv, message", [
    (["--weight-decay", "-1"], "argument --weight-decay: value must be a finite number >= 0"),
    (["--hidden", "32,x"], "argument --hidden: expected comma-separated integers"),
    (["--method", "sgdd"], "argument --method: invalid choice: 'sgdd'"),
    (["--loss", "hinge"], "argument --loss: invalid choice: 'hinge'"),
])
def test_train_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train"] + argv)
    assert e.value.code == 2 and message in capsys.readouterr().err
