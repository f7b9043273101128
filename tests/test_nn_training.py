"""Training classifiers with the same solver (issue 10, Acceptance): digits accuracy, network
studies (grids of methods x steps on the executors of moreauctl.studies, resumable cells).

Thresholds are the issue's: digits, MLP 64-64-10 ReLU, cross-entropy, batch 32, 20 epochs,
split digits(test_size=0.25, seed=0): SGD and Adam >= 96.5% test accuracy, Moreau-SGD and
SVGD >= 95.5%, no NaN anywhere in the grid. The quick tier runs each method at the step
the slow tier's grid chooses (the paper's rule: smallest area under the best-so-far
training loss, studies criterion "auc"); the slow tier runs the whole grid.
"""
import math

import numpy as np
import pytest

import moreauctl as mc
from moreauctl import nn, studies
from moreauctl.studies.metrics import auc_of_costs

P = studies.powers_of_two
TASK = {"dataset": "digits", "arch": "mlp", "hidden": [64]}
#: method -> (settings with the step grid, accuracy threshold, the grid's chosen step as
#: measured with this grid; see the slow test)
ACCEPTANCE = {
    "sgd": ({"method": "sgd", "steps": P(-6, 1)}, 0.965, 2.0 ** -1),
    "adam": ({"method": "adam", "steps": P(-12, -5)}, 0.965, 2.0 ** -6),
    "moreau-sgd": ({"method": "moreau-sgd", "gamma": 1.0, "steps": P(-4, 3)}, 0.955, 2.0 ** -1),
    "svgd": ({"method": "svgd", "steps": P(-6, 1)}, 0.955, 2.0 ** -2),
}


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("label", sorted(ACCEPTANCE))
def test_digits_accuracy_at_the_chosen_step(label):
    st, threshold, step = ACCEPTANCE[label]
    task = nn.make_task(**TASK)
    kw = {k: v for k, v in st.items() if k not in ("method", "steps")}
    res = mc.solve(task.problem, method=st["method"], step=step, epochs=20, seed=0,
                   verbose=False, **kw)
    assert res.success and np.all(np.isfinite(res.costs)) and len(res.costs) == 21
    assert np.all(np.isfinite(res.history.costs))
    assert task.accuracy(res.w) >= threshold


@pytest.mark.slow
def test_digits_accuracy_grid_acceptance(tmp_path):
    methods = {lab: st for lab, (st, _, _) in ACCEPTANCE.items()}
    s = studies.training_grid(TASK, methods, epochs=20, seed=0, criterion="auc",
                              executor="process", workers=2, out=str(tmp_path), progress=False)
    assert s.n_nonfinite == 0
    for lab, (_, threshold, step) in ACCEPTANCE.items():
        assert s.grids[lab].step == step, lab
        assert s.accuracy(lab) >= threshold, lab


def test_training_grid_cells_resume_and_choose(tmp_path):
    methods = {"sgd": {"method": "sgd", "steps": [0.05, 0.5]},
               "svgd": {"method": "svgd", "steps": [0.1], "oracle_options": {"s": 0.1}}}
    task = dict(TASK, n_train=300, n_test=100)
    s = studies.training_grid(task, methods, epochs=2, executor="serial", out=str(tmp_path),
                              progress=False)
    assert s.computed == 3 and s.loaded == 0
    # each cell is the run solve() gives
    t = nn.make_task(**task)
    ref = mc.solve(t.problem, method="sgd", step=0.05, epochs=2, seed=0, verbose=False)
    rec = s.grids["sgd"].records[0]
    np.testing.assert_array_equal(rec.costs, ref.costs)
    assert s.accuracies[("sgd", 0.05)] == t.accuracy(ref.w)
    # the chosen step has the smallest area under the best-so-far curve
    aucs = {r.step: auc_of_costs(r.costs, 2) for r in s.grids["sgd"].records}
    assert s.grids["sgd"].step == min(aucs, key=aucs.get)
    assert "| sgd |" in s.to_markdown()
    for name in ("study.json", "summary.md", "fig_best_loss.png"):
        assert (tmp_path / name).stat().st_size > 0
    again = studies.training_grid(task, methods, epochs=2, executor="serial", out=str(tmp_path),
                                  progress=False)
    assert again.computed == 0 and again.loaded == 3
    assert again.grids["sgd"].step == s.grids["sgd"].step
    more = studies.training_grid(task, {**methods, "adam": {"method": "adam", "steps": [1e-3]}},
                                 epochs=2, executor="serial", out=str(tmp_path), progress=False)
    assert more.computed == 1 and more.loaded == 3
    # a damaged cell file is named in a warning and recomputed
    cell = sorted((tmp_path / "cells").glob("*.json"))[0]
    cell.write_text(cell.read_text().replace('"costs"', '"kosts"'))
    with pytest.warns(RuntimeWarning, match="its 'costs' is missing"):
        again = studies.training_grid(task, {**methods, "adam": {"method": "adam", "steps": [1e-3]}},
                                      epochs=2, executor="serial", out=str(tmp_path),
                                      progress=False)
    assert again.computed == 1 and again.loaded == 3
    with pytest.raises(ValueError, match="may not set 'epochs'"):
        studies.training_grid(task, {"x": {"method": "sgd", "steps": [1.0], "epochs": 3}})
    with pytest.raises(ValueError, match="unknown dataset"):
        studies.training_grid(dict(task, dataset="nope"), methods)


def test_training_grid_on_a_process_pool_matches_serial(tmp_path):
    methods = {"moreau-sgd": {"method": "moreau-sgd", "gamma": 0.5, "steps": [0.25, 1.0]}}
    task = dict(TASK, n_train=200, n_test=50, arch="convnet", hidden=[])
    a = studies.training_grid(task, methods, epochs=1, executor="serial", progress=False)
    b = studies.training_grid(task, methods, epochs=1, executor="process", workers=2,
                              progress=False)
    for ra, rb in zip(a.grids["moreau-sgd"].records, b.grids["moreau-sgd"].records):
        np.testing.assert_array_equal(ra.costs, rb.costs)


@pytest.mark.slow
def test_training_grid_on_a_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    methods = {"sgd": {"method": "sgd", "steps": [0.1, 0.4]}}
    task = dict(TASK, n_train=300)
    a = studies.training_grid(task, methods, epochs=2, executor="serial", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        b = studies.training_grid(task, methods, epochs=2, executor=client.get_executor(),
                                  out=str(tmp_path), progress=False)
    for ra, rb in zip(a.grids["sgd"].records, b.grids["sgd"].records):
        np.testing.assert_array_equal(ra.costs, rb.costs)


def test_grid_search_on_a_network_problem():
    task = nn.make_task(**dict(TASK, n_train=200))
    g = studies.grid_search(task.problem, "sgd", steps=[0.05, 0.2], epochs=2, seed=0,
                            criterion="auc")
    assert all(len(r.costs) == 3 and r.iters == 2 for r in g.records)
    assert g.result is not None and len(g.result.costs) == 3
    with pytest.raises(ValueError, match="not both"):
        studies.grid_search(task.problem, "sgd", steps=[0.1], iters=3, epochs=2)
    assert math.isfinite(g.best_cost)


def _load_script(folder, name):
    import importlib.util
    import os
    import sys
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), folder,
                        name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


def test_paper_fig4_demo_small(tmp_path, capsys):
    demo = _load_script("demos", "paper_fig4")
    out = tmp_path / "fig4"
    assert demo.main(["--experiments", "digits:mlp,digits:convnet", "--epochs", "2",
                      "--width", "1", "--n-train", "200", "--executor", "serial",
                      "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "### digits:mlp (loss squared" in text and "### digits:convnet (loss cross_entropy" in text
    for name in ("table.md", "fig4.png", "digits-mlp/summary.md", "digits-convnet/study.json"):
        assert (out / name).stat().st_size > 0, name
    table = (out / "table.md").read_text()
    for label in ("SGD", "MorSGD", "Adam", "Moreau-Adam", "SVGD"):
        assert f"| {label} |" in table
    # MorSGD runs with the paper's gamma per architecture (E.2.2)
    s = demo.methods_for("digits:convnet", 1)
    assert s["MorSGD"]["gamma"] == 0.5 and demo.methods_for("digits:mlp", 1)["MorSGD"]["gamma"] == 1.0
    assert s["SGD"]["steps"] == (2.0 ** -3, 2.0 ** -2)


def test_nn_bench_quick(tmp_path):
    bench = _load_script("benchmarks", "nn_bench")
    data = bench.main(["--quick", "--cases", "digits-mlp", "--dtypes", "float64", "--quiet",
                       "--out", str(tmp_path)])
    row = data["rows"][0]
    assert row["status"] == "ok" and row["ours_grad"] > 0 and row["moreau_paper"] > 0
    assert (tmp_path / "nn_results.md").read_text().startswith("Generated by")
