"""The demos run end to end with small settings (so they never rot)."""
import csv
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_demo(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "demos", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paper_fig3_small(tmp_path, capsys):
    demo = load_demo("paper_fig3")
    out = str(tmp_path / "fig3")
    # the paper's horizons and settings, a narrow grid and few iterations
    assert demo.main(["--out", out, "--iters", "10", "--steps", "-3:8",
                      "--executor", "serial"]) == 0
    text = capsys.readouterr().out
    assert "paper's step" in text and "2^7" in text
    for name in ("summary.csv", "summary.md", "reproduction.md", "fig_min_cost.png",
                 "fig_gap_vs_T.png", "fig_step_sensitivity.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with open(os.path.join(out, "summary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert {r["T"] for r in rows} == {"50", "100"}
    assert {r["method"] for r in rows} == {"IPOPT", "gd", "gd-geometric", "moreau-gd"}
    with open(os.path.join(out, "reproduction.md")) as f:
        repro = f.read()
    assert repro.count("\n") == 2 + 2 * 3


def test_long_horizon_small(tmp_path, capsys):
    demo = load_demo("long_horizon")
    out = str(tmp_path / "long")
    assert demo.main(["--out", out, "--horizons", "100,200", "--iters", "5",
                      "--steps", "-2:2", "--executor", "serial"]) == 0
    text = capsys.readouterr().out
    assert "fixed total time 10.0" in text
    with open(os.path.join(out, "summary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert {(r["T"], r["dt"]) for r in rows} == {("100", repr(0.1)), ("200", repr(0.05))}
    assert len(rows) == 2 * (1 + 5)
    ipopt = [r for r in rows if r["method"] == "IPOPT"]
    assert all(float(r["best cost"]) < 1e-12 for r in ipopt)  # the target is reachable: c* = 0
    # gamma per unit time: the runs pass gamma = 0.5 per stage, or 0.5 per 0.1 s through the
    # oracle option gamma_time (at dt = 0.05 the oracle then uses 0.5 ** 0.5 per stage)
    import json
    cells = os.listdir(os.path.join(out, "cells"))
    gammas = set()
    for c in cells:
        with open(os.path.join(out, "cells", c)) as f:
            spec = json.load(f)["spec"]
        kw = spec.get("solve_kwargs", {})
        if spec["horizon"] == 200 and kw.get("gamma") is not None:
            gammas.add((kw["gamma"], (kw.get("oracle_options") or {}).get("gamma_time")))
    assert gammas == {(0.5, None), (0.5, 0.1)}


def test_study_arguments_are_validated(capsys):
    # the demos parse --horizons/--steps like `moreauctl sweep`: bad values are named
    import argparse

    from moreauctl.cli.args import add_study_arguments

    ap = add_study_arguments(argparse.ArgumentParser(), horizons="50,100", steps="-10:14")
    args = ap.parse_args([])
    assert args.horizons == [50, 100] and args.steps == (-10, 14)
    assert ap.parse_args(["--steps", "-3:-1"]).steps == (-3, -1)
    for bad, msg in [(["--horizons", "50,x"], "comma-separated integers"),
                     (["--steps", "3:1"], "LO <= HI")]:
        with pytest.raises(SystemExit):
            ap.parse_args(bad)
        assert msg in capsys.readouterr().err


@pytest.mark.slow  # compiles the double pendulum's kernels (a study: slow tier)
def test_oracle_family_small(tmp_path, capsys):
    demo = load_demo("oracle_family")
    out = str(tmp_path / "family")
    assert demo.main(["--out", out, "--horizons", "10", "--iters", "3", "--steps", "-1:0",
                      "--executor", "serial", "--quiet"]) == 0
    with open(os.path.join(out, "family.md")) as f:
        table = f.read()
    assert table.count("\n") == 2 + 2 * 11
    for plant in ("pendulum", "double_pendulum"):
        assert os.path.getsize(os.path.join(out, plant, "summary.csv")) > 0
