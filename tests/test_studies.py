"""Studies: grids, criteria, sweeps over executors, atomic resumable cells, reports, CLI."""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models, studies
from moreauctl.cli import main as cli_main
from moreauctl.studies import StepRecord
from moreauctl.studies.grid import choose

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a tiny sweep: two short horizons, GD on 4 steps and Moreau GD on 3, 10 iterations
TINY_METHODS = {"gd": {"method": "gd", "steps": studies.powers_of_two(-4, -1)},
                "moreau-gd": {"method": "moreau-gd", "gamma": 0.5,
                              "steps": studies.powers_of_two(6, 8)}}
TINY = dict(horizons=[20, 30], methods=TINY_METHODS, iters=10, progress=False)


def short_pendulum(horizon, dt=0.1, scheme="euler"):
    """A top-level (picklable) problem factory, as users write them."""
    return models.pendulum_swingup(horizon=horizon, dt=dt, scheme=scheme)


def numbers(sweep):
    """Every number a sweep produced, for exact comparisons across executors."""
    out = {}
    for (T, lab), g in sweep.grids.items():
        for r in g.records:
            out[(T, lab, r.step)] = (r.costs.tolist(), r.status, r.nit)
    for T, ref in sweep.references.items():
        out[(T, "ipopt")] = None if ref is None else (ref.costs.tolist(), ref.status, ref.nit)
    return out


# -- grids and criteria ------------------------------------------------------------

def test_powers_of_two():
    assert studies.powers_of_two(-2, 1) == (0.25, 0.5, 1.0, 2.0)
    assert len(studies.powers_of_two(-10, 10)) == 21
    with pytest.raises(ValueError, match="lo <= hi"):
        studies.powers_of_two(3, 1)
    with pytest.raises(TypeError, match="integer"):
        studies.powers_of_two(0.5, 2)


def test_auc_by_hand():
    # costs 4, 2, 3, 1 -> min so far 4, 2, 2, 1; trapezoids 3 + 2 + 1.5 = 6.5; / (K=3 * 4)
    assert studies.auc_of_costs([4, 2, 3, 1]) == pytest.approx(6.5 / 12)
    # a run that stopped early (gtol) is extended at its last value up to K
    assert studies.auc_of_costs([4, 2], iters=3) == pytest.approx((3 + 2 + 2) / 12)
    assert studies.auc_of_costs([4.0]) == 1.0


def _rec(step, costs, success=True):
    return StepRecord(step=step, success=success, status=0 if success else -2, message="",
                      nit=len(costs) - 1, costs=costs, seconds=0.0, iters=3)


def test_criteria_and_failed_runs_never_win():
    fast_then_bad = _rec(1.0, [4, 0.5, 2, 3])   # best 0.5, final 3
    steady = _rec(0.5, [4, 2, 1.5, 1])          # best 1, final 1
    diverged = _rec(2.0, [4, 0.1, 1e12], success=False)  # lowest cost seen, but diverged
    recs = [fast_then_bad, steady, diverged]
    assert choose(recs, "best") is fast_then_bad
    assert choose(recs, "final") is steady
    # auc: fast_then_bad (4,.5,.5,.5) -> 2.25+.5+.5 = 3.25; steady (4,2,1.5,1) -> 3+1.75+1.25 = 6
    assert choose(recs, "auc") is fast_then_bad
    assert diverged.score("best") == math.inf
    assert choose([diverged], "best") is None
    # ties go to the smaller step
    assert choose([_rec(2.0, [4, 1]), _rec(1.0, [4, 1])], "best").step == 1.0
    with pytest.raises(ValueError, match="criterion"):
        choose(recs, "fastest")


def test_grid_search_pendulum_and_thread_executor():
    p = models.pendulum_swingup(horizon=50)
    steps = studies.powers_of_two(-3, 1)
    g = studies.grid_search(p, "gd", steps=steps, iters=20)
    assert g.steps == steps and len(g.records) == 5
    # GD at T=50 diverges for steps >= 1 (see test_solve); 0.5 is the best that survives
    assert g.n_failed == 2 and g.step == 0.5
    assert g.result is not None and g.result.success
    assert g.result.settings["step"] == 0.5
    assert g.best_cost == pytest.approx(g.result.best_cost)
    assert all(r.success == (r.step < 1) for r in g.records)
    with ThreadPoolExecutor(2) as ex:
        g2 = studies.grid_search(p, "gd", steps=steps, iters=20, executor=ex)
    assert [r.costs.tolist() for r in g2.records] == [r.costs.tolist() for r in g.records]
    # extra solve keywords reach solve
    gw = studies.grid_search(p, "gd", steps=[64.0, 128.0], iters=5, stage_weights="geometric",
                             gamma=0.5, criterion="auc")
    assert gw.result.settings["stage_weights"] == "geometric"
    assert "chosen step" in gw.summary()
    # ControlProblem holds CasADi symbols, which do not pickle: a clear error, not CasADi's
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(1) as ex, pytest.raises(TypeError, match="ThreadPoolExecutor"):
        studies.grid_search(p, "gd", steps=[0.5], iters=2, executor=ex)


def test_grid_search_all_failed_and_bad_input():
    p = models.pendulum_swingup(horizon=50)
    g = studies.grid_search(p, "gd", steps=[4.0, 8.0], iters=20)
    assert g.step is None and g.winner is None and g.result is None and g.n_failed == 2
    assert math.isnan(g.best_cost)
    with pytest.raises(ValueError, match="criterion"):
        studies.grid_search(p, "gd", steps=[1.0], criterion="median")
    with pytest.raises(ValueError, match="empty"):
        studies.grid_search(p, "gd", steps=[])
    with pytest.raises(ValueError, match="> 0"):
        studies.grid_search(p, "gd", steps=[-1.0])
    with pytest.raises(TypeError):
        studies.grid_search(p, "gd", steps=[1.0], gama=0.5)  # misspelt keyword fails loudly


# -- keys and atomic storage ---------------------------------------------------------

def test_cell_key_hashes_every_setting():
    a = {"kind": "run", "horizon": 50, "dt": 0.1, "method": "gd", "step": 0.5,
         "solve_kwargs": {"gamma": 0.5, "stage_weights": "geometric"}}
    b = dict(reversed(list(a.items())))
    assert studies.cell_key(a) == studies.cell_key(b)
    assert studies.cell_key(a).startswith("run-T50-gd-")
    for change in ({"step": 0.25}, {"dt": 0.1 + 1e-15}, {"horizon": 51},
                   {"solve_kwargs": {"gamma": 0.25, "stage_weights": "geometric"}}):
        assert studies.cell_key({**a, **change}) != studies.cell_key(a)
    with pytest.raises(TypeError, match="JSON-like"):
        studies.cell_key({**a, "callback": print})


def test_store_atomic_and_corrupt_files(tmp_path):
    store = studies.CellStore(str(tmp_path))
    store.save("k1", {"key": "k1", "x": 1.5})
    assert store.load("k1") == {"key": "k1", "x": 1.5}
    assert os.listdir(store.cells_dir) == ["k1.json"]  # no temporary left behind
    # a truncated file (cannot come from our writer, but disks fail) is recomputed, not fatal
    with open(store.path("k2"), "w") as f:
        f.write('{"key": "k2", "x": ')
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert store.load("k2") is None
    # a leftover temporary from a killed writer is ignored and cleaned (one of unknown
    # writer: once it is older than any write takes)
    old = os.path.join(store.cells_dir, ".tmp-abc.part")
    open(old, "w").close()
    assert sorted(store.keys()) == ["k1", "k2"]
    assert store.clean_temporaries() == 0
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.clean_temporaries() == 1


# -- sweeps ------------------------------------------------------------------------------

def test_sweep_serial_writes_and_resumes(tmp_path):
    out = str(tmp_path / "study")
    sw = studies.horizon_sweep("pendulum", executor="serial", out=out, **TINY)
    n_cells = 2 * (4 + 3) + 2  # + one IPOPT reference per horizon
    assert sw.computed == n_cells and sw.loaded == 0
    assert sw.horizons == (20, 30) and sw.labels == ("gd", "moreau-gd")
    assert sw.dts == {20: 0.1, 30: 0.1}
    files = sorted(os.listdir(os.path.join(out, "cells")))
    assert len(files) == n_cells and all(f.endswith(".json") for f in files)
    for f in files:
        with open(os.path.join(out, "cells", f)) as fh:
            rec = json.load(fh)
        assert rec["key"] + ".json" == f
    for name in ("summary.csv", "summary.md", "sweep.json", "fig_min_cost.png",
                 "fig_gap_vs_T.png", "fig_step_sensitivity.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    # the grid agrees with a direct solve
    g = sw.grid(20, "gd")
    direct = mc.solve(models.pendulum_swingup(horizon=20), "gd", step=g.step, iters=10,
                      verbose=False)
    np.testing.assert_array_equal(g.winner.costs, direct.costs)
    # IPOPT reference and normalized gap
    assert sw.c_star(20) < 1e-12  # closed form 0 (see test_ipopt)
    gap = sw.gap_curve(20, "gd")
    assert gap[0] == pytest.approx(1.0) and np.all(np.diff(gap) <= 0)
    rows = sw.rows()
    assert [r["method"] for r in rows] == ["IPOPT", "gd", "moreau-gd"] * 2
    with open(os.path.join(out, "summary.csv")) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6
    gd20 = next(r for r in table if r["method"] == "gd" and r["T"] == "20")
    assert float(gd20["chosen step"]) == g.step
    assert float(gd20["best cost"]) == g.best_cost
    assert float(gd20["gap to IPOPT"]) == pytest.approx(gap[-1])
    md = sw.to_markdown()
    for col in ("chosen step", "best cost", "final cost", "gap to IPOPT", "iters to 1e-2 gap",
                "seconds"):
        assert col in md
    # re-running loads everything; force recomputes everything
    mtimes = {f: os.stat(os.path.join(out, "cells", f)).st_mtime_ns for f in files}
    again = studies.horizon_sweep("pendulum", executor="serial", out=out, **TINY)
    assert again.computed == 0 and again.loaded == n_cells
    assert numbers(again) == numbers(sw)
    assert mtimes == {f: os.stat(os.path.join(out, "cells", f)).st_mtime_ns for f in files}
    forced = studies.horizon_sweep("pendulum", executor="serial", out=out, force=True,
                                   report=False, **TINY)
    assert forced.computed == n_cells and forced.loaded == 0
    assert numbers(forced) == numbers(sw)
    # one more step in a grid computes just that cell
    more = dict(TINY, methods={**TINY_METHODS, "gd": {"method": "gd",
                                                      "steps": studies.powers_of_two(-5, -1)}})
    grown = studies.horizon_sweep("pendulum", executor="serial", out=out, report=False, **more)
    assert grown.computed == 2 and grown.loaded == n_cells


def test_sweep_process_pool_matches_serial_and_factory(tmp_path):
    serial = studies.horizon_sweep("pendulum", executor="serial", reference=None, **TINY)
    pooled = studies.horizon_sweep("pendulum", workers=2, reference=None, **TINY)
    assert numbers(pooled) == numbers(serial)
    assert all(ref is None for ref in pooled.references.values())
    # a user's top-level factory with problem_kwargs, fixed total time
    fac = studies.horizon_sweep(short_pendulum, [20, 40], {"gd": {"method": "gd",
                                                                  "steps": [0.5]}},
                                iters=3, scaling="fixed-time", total_time=2.0,
                                problem_kwargs={"scheme": "rk4"}, workers=2, progress=False,
                                out=str(tmp_path / "fac"), report=False)
    assert fac.dts == {20: 0.1, 40: 0.05}
    assert fac.settings["problem"].endswith(":short_pendulum")
    ref = mc.solve(short_pendulum(40, dt=0.05, scheme="rk4"), "gd", step=0.5, iters=3,
                   verbose=False)
    np.testing.assert_array_equal(fac.grid(40, "gd").winner.costs, ref.costs)


def test_sweep_on_local_dask_cluster_matches_process_pool():
    distributed = pytest.importorskip("dask.distributed")
    pooled = studies.horizon_sweep("pendulum", workers=2, **TINY)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = studies.horizon_sweep("pendulum", executor=client.get_executor(), **TINY)
    assert numbers(dasked) == numbers(pooled)


def test_sweep_default_methods_include_the_ablation():
    assert studies.DEFAULT_METHODS == ("gd", "gd-geometric", "moreau-gd")
    abl = studies.METHOD_PRESETS["gd-geometric"]
    assert abl == {"method": "gd", "stage_weights": "geometric", "gamma": 0.5}
    assert studies.METHOD_PRESETS["moreau-gd"]["gamma"] == 0.5


def test_sweep_rejects_bad_settings():
    hs = [10]
    with pytest.raises(ValueError, match="unknown method preset"):
        studies.horizon_sweep("pendulum", hs, ["gd", "adamw"])
    with pytest.raises(ValueError, match="unknown plant"):
        studies.horizon_sweep("pendulm", hs)
    with pytest.raises(ValueError, match="total_time"):
        studies.horizon_sweep("pendulum", hs, scaling="fixed-time")
    with pytest.raises(ValueError, match="total_time"):
        studies.horizon_sweep("pendulum", hs, total_time=5.0)
    with pytest.raises(ValueError, match="do not also set dt"):
        studies.horizon_sweep("pendulum", hs, scaling="fixed-time", total_time=5.0, dt=0.05)
    with pytest.raises(ValueError, match="scaling"):
        studies.horizon_sweep("pendulum", hs, scaling="fixed")
    with pytest.raises(ValueError, match="'step'"):
        studies.horizon_sweep("pendulum", hs, {"x": {"method": "gd", "step": 1.0}})
    with pytest.raises(ValueError, match="duplicates"):
        studies.horizon_sweep("pendulum", [10, 10])
    with pytest.raises(ValueError, match="executor"):
        studies.horizon_sweep("pendulum", hs, {"gd": {"method": "gd", "steps": [1.0]}},
                              executor="gpu", reference=None, progress=False)


def test_sweep_cell_error_is_reported_with_its_cell():
    bad = {"typo": {"method": "gd", "steps": [0.5], "gama": 0.5}}
    with pytest.raises(RuntimeError, match="T=10 method=gd step=0.5"):
        studies.horizon_sweep("pendulum", [10], bad, iters=2, executor="serial",
                              reference=None, progress=False)


_CHILD = textwrap.dedent("""
    import sys
    from moreauctl import studies
    if __name__ == "__main__":
        studies.horizon_sweep("pendulum", [20, 30],
                              {"gd": {"method": "gd", "steps": studies.powers_of_two(-6, -1)}},
                              iters=10, out=sys.argv[1], workers=2, progress=False)
""")


def _cell_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".json")) if os.path.isdir(d) else []


def test_killed_study_resumes_without_recomputing(tmp_path):
    out = str(tmp_path / "study")
    cells = os.path.join(out, "cells")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, MOREAUCTL_STUDY_CELL_DELAY="0.4",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), out], env=env, cwd=str(tmp_path),
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_cell_files(cells)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the study never wrote 3 cells"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the study and its worker processes
        proc.wait()
    n_total = 2 * 6 + 2
    before = {f: (os.stat(os.path.join(cells, f)).st_mtime_ns,
                  open(os.path.join(cells, f)).read()) for f in _cell_files(cells)}
    assert 3 <= len(before) < n_total, "kill the study mid-way, not after it finished"
    for f in before:  # every finished cell is a complete, parseable record
        assert json.loads(before[f][1])["key"] + ".json" == f
    assert not os.path.exists(os.path.join(out, "summary.csv"))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unreadable cell file
        res = studies.horizon_sweep("pendulum", [20, 30],
                                    {"gd": {"method": "gd", "steps": studies.powers_of_two(-6, -1)}},
                                    iters=10, out=out, executor="serial", progress=False)
    assert res.loaded == len(before) and res.computed == n_total - len(before)
    after = _cell_files(cells)
    assert len(after) == n_total and not [f for f in os.listdir(cells) if f.startswith(".tmp-")]
    for f in before:  # not recomputed: same bytes, same mtime
        assert os.stat(os.path.join(cells, f)).st_mtime_ns == before[f][0]
        assert open(os.path.join(cells, f)).read() == before[f][1]
    for f in after:
        with open(os.path.join(cells, f)) as fh:
            json.load(fh)
    with open(os.path.join(out, "summary.csv")) as fh:
        assert len(list(csv.DictReader(fh))) == 4


# -- command line ------------------------------------------------------------------------

def test_cli_sweep(tmp_path, capsys):
    out = str(tmp_path / "cli")
    argv = ["sweep", "--plant", "pendulum", "--horizons", "20,30", "--methods", "gd,moreau-gd",
            "--iters", "5", "--steps", "gd=-3:-1,moreau-gd=6:7", "--out", out,
            "--executor", "serial"]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    assert "| gd | 20 |" in captured.out and "IPOPT" in captured.out
    assert "12 cells computed, 0 loaded" in captured.err
    with open(os.path.join(out, "summary.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["method"] for r in rows} == {"IPOPT", "gd", "moreau-gd"}
    assert cli_main(argv + ["--quiet"]) == 0
    assert cli_main(argv) == 0
    assert "0 cells computed, 12 loaded" in capsys.readouterr().err
    # fixed total time (gd only: a new dt is a new stage to compile)
    fixed_time = argv[:argv.index("--methods")] + ["--methods", "gd", "--steps", "-2:-1"] + \
        argv[argv.index("--out"):]
    assert cli_main(fixed_time + ["--force", "--quiet", "--total-time", "3"]) == 0
    with open(os.path.join(out, "summary.csv")) as fh:
        assert {r["dt"] for r in csv.DictReader(fh)} == {repr(3 / 20), repr(3 / 30)}


def test_cli_sweep_errors(capsys):
    assert cli_main(["sweep", "--methods", "gd,sgdx", "--horizons", "10"]) == 2
    assert "unknown method 'sgdx'" in capsys.readouterr().err
    assert cli_main(["sweep", "--methods", "gd", "--steps", "moreau-gd=0:3",
                     "--horizons", "10"]) == 2
    assert "not in --methods" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--steps", "3:1"])
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--dt", "0.1", "--total-time", "5"])


# -- stale and wrong cells (issue 13) ----------------------------------------------------

#: initial angle of :func:`start_pendulum`; a test edits it as a user edits a factory (the
#: initial state: an edit that needs no new kernels, so the test compiles nothing)
START = {"theta": 0.0}


def start_pendulum(horizon, dt=0.1):
    """A user's factory (the paper's swing-up from an initial angle a test changes)."""
    return mc.ControlProblem(models.pendulum(), horizon=horizon, dt=dt,
                             x0=[START["theta"], 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2)


SMALL = dict(horizons=[10], methods={"gd": {"method": "gd", "steps": [0.25, 0.5]}}, iters=3,
             executor="serial", reference=None, progress=False, report=False)


def test_edited_factory_recomputes_stale_cells(tmp_path, monkeypatch):
    out = str(tmp_path / "s")
    first = studies.horizon_sweep(start_pendulum, out=out, **SMALL)
    # costs[0] at w = 0 from rest at theta = 0: (0 - pi)^2, closed form
    assert first.grid(10, "gd").records[0].costs[0] == pytest.approx(math.pi ** 2)
    monkeypatch.setitem(START, "theta", math.pi)  # the edit: start upright
    with pytest.warns(RuntimeWarning, match=r"2 stored cells .* another problem"):
        edited = studies.horizon_sweep(start_pendulum, out=out, **SMALL)
    assert (edited.computed, edited.loaded, edited.stale, edited.invalid) == (2, 0, 2, 0)
    # upright at rest with w = 0 is an equilibrium of the Euler stage: the cost is 0 (closed
    # form) at every iteration, where the stale cells said pi^2 and more
    np.testing.assert_allclose(edited.grid(10, "gd").records[0].costs, 0.0, atol=1e-20)
    direct = mc.solve(start_pendulum(10), "gd", step=0.25, iters=3, verbose=False)
    np.testing.assert_array_equal(edited.grid(10, "gd").records[0].costs, direct.costs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = studies.horizon_sweep(start_pendulum, out=out, **SMALL)
    assert (again.computed, again.loaded, again.stale) == (0, 2, 0)


def test_cells_of_another_code_version_are_recomputed(tmp_path):
    out = str(tmp_path / "s")
    first = studies.horizon_sweep("pendulum", out=out, **SMALL)
    cells = os.path.join(out, "cells")
    f = sorted(os.listdir(cells))[0]
    rec = json.load(open(os.path.join(cells, f)))
    assert rec["fingerprint"]["code"] == studies.code_fingerprint()
    rec["fingerprint"]["code"] = "moreauctl 0.0.9+000000000000"  # an older version's cell
    rec["costs"] = [1.0, 0.5, 0.25, 0.125]                         # with other numbers
    open(os.path.join(cells, f), "w").write(json.dumps(rec))
    with pytest.warns(RuntimeWarning, match=r"1 stored cells .* another code"):
        res = studies.horizon_sweep("pendulum", out=out, **SMALL)
    assert (res.computed, res.loaded, res.stale) == (1, 1, 1)
    assert numbers(res) == numbers(first)


@pytest.mark.parametrize("edit,why", [
    (lambda r: r.update(costs=[]), "'costs' is empty"),
    (lambda r: r.pop("costs"), "no 'costs'"),
    (lambda r: r.update(costs=[9.87, "x", 1.0]), "non-numbers"),
    (lambda r: r.update(costs=[9.87, None]), "non-numbers"),
    (lambda r: r.update(status="0"), "'status' is str"),
    (lambda r: r.update(success=1), "'success' is int"),
    (lambda r: r.update(nit=99), "nit 99"),
    (lambda r: r.update(costs=[1.0] * 9), "9 entries"),
    (lambda r: r["spec"].update(step=8.0), "settings"),
])
def test_readable_but_wrong_cell_is_named_and_recomputed(tmp_path, edit, why):
    out = str(tmp_path / "s")
    first = studies.horizon_sweep("pendulum", out=out, **SMALL)
    cells = os.path.join(out, "cells")
    f = sorted(os.listdir(cells))[1]
    rec = json.load(open(os.path.join(cells, f)))
    edit(rec)
    open(os.path.join(cells, f), "w").write(json.dumps(rec))
    with pytest.warns(RuntimeWarning, match=f"{f}: .*{why}.*recomputed"):
        res = studies.horizon_sweep("pendulum", out=out, **SMALL)
    assert (res.computed, res.loaded, res.invalid, res.stale) == (1, 1, 1, 0)
    assert numbers(res) == numbers(first)
    assert studies.check_record(json.load(open(os.path.join(cells, f))),
                                json.load(open(os.path.join(cells, f)))["spec"]) is None


def test_a_worker_that_computed_another_problem_is_an_error():
    from moreauctl.studies import sweep as sweep_mod
    spec = {"kind": "run", "horizon": 10, "dt": 0.1, "problem": "plant:pendulum",
            "problem_kwargs": {}, "method": "gd", "step": 0.5, "iters": 2, "solve_kwargs": {}}
    rec = sweep_mod.run_cell(spec, "pendulum")
    assert studies.check_record(rec, spec) is None
    sweep_mod._check_computed(rec, spec, rec["fingerprint"])
    other = dict(rec["fingerprint"], problem="0" * 64)
    with pytest.raises(RuntimeError, match="another problem or code version"):
        sweep_mod._check_computed(rec, spec, other)


def test_problem_fingerprint_sees_content_not_names():
    fp = studies.problem_fingerprint
    base = fp(models.pendulum_swingup(horizon=10))
    assert fp(models.pendulum_swingup(horizon=10)) == base  # deterministic
    assert fp(start_pendulum(10)) == base  # another factory, the same content
    for changed in (models.pendulum_swingup(horizon=11), models.pendulum_swingup(10, dt=0.05),
                    models.pendulum_swingup(10, scheme="rk4"),
                    mc.ControlProblem(models.pendulum(), 10, 0.1, [0.0, 0.0],   # target 3
                                      lambda x: (x[0] - 3.0) ** 2 + 0.1 * x[1] ** 2),
                    mc.ControlProblem(models.pendulum(g=9.8), 10, 0.1, [0.0, 0.0],
                                      lambda x: (x[0] - math.pi) ** 2 + 0.1 * x[1] ** 2),
                    mc.ControlProblem(models.pendulum(), 10, 0.1, [0.0, 1e-12],
                                      lambda x: (x[0] - math.pi) ** 2 + 0.1 * x[1] ** 2)):
        assert fp(changed) != base


def test_cli_sweep_says_how_many_cells_were_stale(tmp_path, capsys):
    from moreauctl.cli.sweep import print_summary
    out = str(tmp_path / "cli")
    studies.horizon_sweep("pendulum", out=out, **SMALL)
    cells = os.path.join(out, "cells")
    for f in os.listdir(cells):
        rec = json.load(open(os.path.join(cells, f)))
        rec["fingerprint"]["problem"] = "0" * 64
        open(os.path.join(cells, f), "w").write(json.dumps(rec))
    with pytest.warns(RuntimeWarning, match="another problem"):
        res = studies.horizon_sweep("pendulum", out=out, **SMALL)
    capsys.readouterr()
    print_summary(res, out)  # what `moreauctl sweep` prints
    assert ("2 cells computed (2 stale: stored for another problem or code version), 0 loaded"
            in capsys.readouterr().err)
    sweep_json = json.load(open(os.path.join(out, "sweep.json")))
    assert sweep_json["counts"] == {"computed": 2, "loaded": 0, "stale": 2, "invalid": 0}


def test_cleaner_never_deletes_a_running_writers_temporary(tmp_path):
    from moreauctl import _io
    store = studies.CellStore(str(tmp_path))
    # a second study writes a cell while this one starts and cleans: its write completes
    with _io.atomic_path(store.path("k")) as tmp:
        with open(tmp, "w") as f:
            f.write('{"key": "k"}')
        assert os.path.basename(tmp).startswith(f".tmp-{os.getpid()}@")
        assert store.clean_temporaries() == 0 and os.path.exists(tmp)
    assert store.load("k") == {"key": "k"}
    # a writer of this host that is gone: its temporary is an orphan
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _io._host()
    names = {f".tmp-{dead.pid}@{host}-x1.part": True,          # dead writer here
             f".tmp-{os.getpid()}@{host}-x2.part": False,       # live writer here
             ".tmp-1@another-host-x3.part": False,              # other host, fresh
             ".tmp-2@another-host-x4.part": True,               # other host, 2 h old
             ".tmp-zz.part": False}                             # old name format, fresh
    for name in names:
        open(os.path.join(store.cells_dir, name), "w").close()
    long_ago = time.time() - 7200
    os.utime(os.path.join(store.cells_dir, ".tmp-2@another-host-x4.part"), (long_ago, long_ago))
    assert store.clean_temporaries() == 2
    left = {n for n in os.listdir(store.cells_dir) if n.startswith(".tmp-")}
    assert left == {n for n, orphan in names.items() if not orphan}


def test_step_exponents_and_scheme_checked_before_any_work(capsys):
    with pytest.raises(ValueError, match=r"step exponent hi must be in \[-1074, 1023\].*2000"):
        studies.powers_of_two(0, 2000)
    with pytest.raises(ValueError, match="step exponent lo"):
        studies.powers_of_two(-1075, 0)
    assert studies.powers_of_two(1023, 1023) == (2.0 ** 1023,)
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--steps", "0:2000", "--horizons", "10"])
    assert "step exponent HI must be in [-1074, 1023]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--steps", "gd=-1100:0", "--horizons", "10"])
    assert "step exponent LO" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["sweep", "--scheme", "rk5", "--horizons", "10"])
    assert "invalid choice: 'rk5'" in capsys.readouterr().err
    # through the library: the factory runs in this process first, so a bad scheme is a
    # ValueError before any cell runs (not a cell failing in a worker)
    with pytest.raises(ValueError, match="unknown scheme 'rk5'"):
        studies.horizon_sweep("pendulum", [10], problem_kwargs={"scheme": "rk5"},
                              progress=False)


def test_fixed_time_sweep_compiles_one_module_for_all_horizons():
    # every cell of a fixed-total-time sweep has its own dt: the built-in plants then get
    # dt as a run-time kernel input, so all horizons share one generated module (reference:
    # the same runs with dt compiled in, to rounding)
    from moreauctl.studies import sweep as sweep_mod
    res = studies.horizon_sweep("pendulum", [20, 30], {"gd": {"method": "gd", "steps": [0.25]}},
                                iters=3, scaling="fixed-time", total_time=2.0,
                                executor="serial", reference=None, progress=False)
    assert res.settings["problem_kwargs"]["runtime_params"] is True
    probs = [sweep_mod._get_problem("pendulum", T, res.dts[T], {"runtime_params": True})[0]
             for T in (20, 30)]
    assert probs[0].chain.kernels is probs[1].chain.kernels
    for T, p in zip((20, 30), probs):
        ref = mc.solve(models.pendulum_swingup(horizon=T, dt=res.dts[T]), "gd", step=0.25,
                       iters=3, verbose=False)
        np.testing.assert_allclose(res.grid(T, "gd").winner.costs, ref.costs, rtol=1e-12)
