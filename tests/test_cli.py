"""The command-line package: shared argument types, the JSON writer, the demo's table."""
import argparse
import json
import os

import pytest

from moreauctl import demo
from moreauctl.cli import build_parser
from moreauctl.cli import args as cli_args
from moreauctl.studies import GridResult, StepRecord


@pytest.mark.parametrize("parse,text,value", [
    (cli_args.positive_float, "0.25", 0.25),
    (cli_args.positive_float, "1e3", 1000.0),
    (cli_args.positive_int, "7", 7),
    (cli_args.nonnegative_int, "0", 0),
    (cli_args.int_list, "50, 100,", [50, 100]),
    (cli_args.steps_arg, "-10:10", (-10, 10)),
    (cli_args.steps_arg, "gd=-3:-1, moreau-gd=0:2", {"gd": (-3, -1), "moreau-gd": (0, 2)}),
])
def test_argument_types_convert(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse,text,message", [
    (cli_args.positive_float, "x", "value must be a finite number > 0; got 'x'"),
    (cli_args.positive_float, "-1", "value must be a finite number > 0; got '-1'"),
    (cli_args.positive_float, "inf", "value must be a finite number > 0; got 'inf'"),
    (cli_args.positive_int, "0", "value must be an integer >= 1; got 0"),
    (cli_args.positive_int, "1.5", "value must be an integer >= 1; got '1.5'"),
    (cli_args.nonnegative_int, "-2", "value must be an integer >= 0; got -2"),
    (cli_args.int_list, "50,x", "expected comma-separated integers; got '50,x'"),
    (cli_args.int_list, ",", "expected comma-separated integers >= 1; got ','"),
    (cli_args.int_list, "5,0", "every entry must be an integer >= 1; got 0"),
    (cli_args.steps_arg, "3:1", "a step grid is 'LO:HI' with LO <= HI; got '3:1'"),
    (cli_args.steps_arg, "3", "a step grid is 'LO:HI' (powers of two 2^LO..2^HI); got '3'"),
    (cli_args.steps_arg, "=0:1", "per-method step grids are 'LABEL=LO:HI,...'; got '=0:1'"),
])
def test_argument_types_name_expected_and_got(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        parse(text)
    assert str(e.value) == message


def test_negative_step_ranges_are_values_not_options():
    ap = build_parser()
    assert ap.parse_args(["sweep", "--steps", "-3:-1"]).steps == (-3, -1)
    assert ap.parse_args(["sweep", "--steps", "-10:4", "--quiet"]).steps == (-10, 4)
    assert ap.parse_args(["swingup", "--step", "0.5"]).step == 0.5


def test_write_json_stdout_and_file(tmp_path, capsys):
    cli_args.write_json({"a": [1.5, "nan"]}, "-")
    assert json.loads(capsys.readouterr().out) == {"a": [1.5, "nan"]}
    dest = tmp_path / "new" / "r.json"  # the directory is created
    cli_args.write_json({"b": 2}, str(dest))
    assert json.loads(dest.read_text()) == {"b": 2}
    assert os.listdir(dest.parent) == ["r.json"]  # no temporary left behind


def _failed_grid():
    rec = StepRecord(step=8.0, success=False, status=-2, message="diverged", nit=2,
                     costs=[9.87, 1e3, 1e12], seconds=0.0, iters=5)
    return GridResult(method="gd", criterion="best", records=(rec,), step=None, winner=None)


def test_demo_table_reports_a_grid_where_every_step_failed():
    # diverged runs never win, so such a grid has no chosen step rather than a diverged one
    rows = demo.table_rows({50: {"GD": _failed_grid()}})
    assert rows == [(50, "GD", None, None, None, None, 1, 1)]
    assert demo.markdown_table(rows).splitlines()[-1] == \
        "| 50 | GD | none: every step failed | - | - | - | 1/1 |"


def test_demo_small_writes_its_three_files(tmp_path, capsys):
    out = tmp_path / "nested" / "demo"
    best = demo.run_demo(out=str(out), iters=3, horizons=[10], verbose=False)
    printed = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["fig3.png", "results.json", "table.md"]
    table = (out / "table.md").read_text()
    assert table in printed and table.count("\n") == 2 + len(demo.DEMO_METHODS)
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["10"] and list(results["10"]) == list(best[10])
    for label, res in best[10].items():
        assert results["10"][label]["costs"] == res.to_dict()["costs"]


def test_sweep_on_dask_from_the_command_line(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    from moreauctl.cli import main
    out = str(tmp_path / "dask")
    argv = ["sweep", "--horizons", "10", "--methods", "gd", "--steps", "-2:-1", "--iters", "3",
            "--no-reference", "--out", out]
    assert main(argv + ["--executor", "dask", "--workers", "1", "--quiet"]) == 0
    # the same cells again, serially: all loaded, none recomputed
    assert main(argv + ["--executor", "serial"]) == 0
    assert "0 cells computed, 2 loaded" in capsys.readouterr().err
    with open(os.path.join(out, "summary.csv")) as f:
        assert f.read().count("\n") == 2  # header + gd at T=10
    assert len(os.listdir(os.path.join(out, "cells"))) == 2
