"""Smoke test of the benchmark scripts (tiny T, one repeat) so they cannot rot.
Timings are never asserted; only that the run completes and agrees with CasADi."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    path = os.path.join(HERE, "..", "benchmarks", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name[:-3], mod)  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


SMOKE = ["--quick", "--horizons", "20", "--latency-horizons", "20", "--floor-n", "20000",
         "--c-max-T", "20", "--quiet"]


def test_suite_smoke_quick(tmp_path):
    """Quick tier: benchmarks/suite.py on the pendulum at one tiny horizon, one repeat, in
    this process: every installed peer runs and agrees with moreauctl's gradient, the floor
    is counted, results.json and results.md are written. The whole suite (both plants, the
    fresh-process workers, each compiling in an empty kernel cache) is test_suite_smoke, in
    the slow tier."""
    suite = _load("suite.py")
    data = suite.main(SMOKE + ["--out", str(tmp_path), "--no-processes", "--plants", "pendulum"])
    rows = data["rows"]
    assert {r["plant"] for r in rows} == {"pendulum"}
    for r in rows:
        if r["status"] == "ok" and r["tool"] != "moreauctl":
            assert r["max_rel_diff"] <= 1e-10, r
    ran = {r["tool"] for r in rows if r["status"] == "ok"}
    assert {"moreauctl", "casadi_sx", "casadi_mx", "numpy"} <= ran
    fl = data["floor"]["pendulum"]
    assert fl["forward_ops"].get("sin", 0) + fl["forward_ops"].get("cos", 0) > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["acceptance"] == data["acceptance"]
    assert "Acceptance" in (tmp_path / "results.md").read_text()
    merged = suite.merge_runs([saved, saved, saved])  # a run merged with itself: unchanged
    assert [it["value"] for it in merged["acceptance"]] == pytest.approx(
        [it["value"] for it in saved["acceptance"]])


@pytest.mark.slow
def test_suite_smoke(tmp_path):
    """benchmarks/suite.py end to end at one tiny horizon, one repeat: every installed peer
    runs (the rest are skipped with a note), gradients agree with moreauctl's, the fresh-
    process worker runs, results.json and results.md are written. No timing is asserted.
    Slow tier (~30 s cold: the workers compile in empty kernel caches); the quick tier runs
    test_suite_smoke_quick."""
    suite = _load("suite.py")
    data = suite.main(SMOKE + ["--out", str(tmp_path), "--process-plants", "pendulum",
                               "--process-tools", "casadi_sx"])
    rows = data["rows"]
    assert {r["plant"] for r in rows} == {"pendulum", "cartpole"}
    for r in rows:
        if r["status"] == "ok" and r["tool"] != "moreauctl":
            # reference: moreauctl's gradient, itself tested against CasADi reverse mode
            assert r["max_rel_diff"] <= 1e-10, r
    ran = {r["tool"] for r in rows if r["status"] == "ok"}
    assert {"moreauctl", "casadi_sx", "casadi_mx", "numpy"} <= ran
    for tool, note in data["meta"]["unavailable"].items():
        assert tool not in ran and note
    procs = [p for p in data["processes"] if p["tool"] == "moreauctl"]
    assert procs and all(p["status"] == "ok" for p in procs), procs
    assert {(p["cache"], p["what"]) for p in procs} == {
        ("uncached", "gradient"), ("cached", "gradient"), ("uncached", "moreau"),
        ("cached", "moreau")}
    for plant in ("pendulum", "cartpole"):
        fl = data["floor"][plant]
        assert fl["forward_ops"].get("sin", 0) + fl["forward_ops"].get("cos", 0) > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["acceptance"] == data["acceptance"]
    assert "Acceptance" in (tmp_path / "results.md").read_text()
    # repeated runs merge cell by cell into medians: a run merged with itself is unchanged
    merged = suite.merge_runs([saved, saved, saved])
    assert [it["value"] for it in merged["acceptance"]] == pytest.approx(
        [it["value"] for it in saved["acceptance"]])
    assert "median over 3 full runs" in suite.markdown(merged)


def test_floor_counts_pendulum():
    """Critical cycle of the pendulum's Euler stage, counted by hand from
    E.1.1's update: theta_t = theta + dt*omega (mul, add) and
    omega_t = omega + dt*(u - (g sin theta + mu omega)) (sin, mul, add, sub, mul, add):
    the cycle theta -> omega -> theta spans two stages, sin + 4 add + 3 mul."""
    floor = _load("floor.py")
    peers = _load("peers.py")
    p = peers.make_problem("pendulum", 20)  # dt = 0.5 (dt = 1 would fold a mul away)
    lat = {"add": 1.0, "mul": 1.0, "div": 1.0, "neg": 1.0, "sqrt": 1.0, "sin": 10.0,
           "cos": 10.0}
    fwd, bwd = floor.stage_functions(p)
    ns, ops = floor.chain_floor(floor.dependency_matrix(fwd, 1, lat), lat)
    assert ops == {"add": 2.0, "mul": 1.5, "sin": 0.5}
    assert abs(ns - (10.0 + 7.0) / 2) < 1e-9
    # backward: lam_th' = lam_th - dt g cos(theta) lam_om (cos off the chain: x is stored)
    ns_b, ops_b = floor.chain_floor(floor.dependency_matrix(bwd, 2, lat), lat)
    assert "cos" not in ops_b and "sin" not in ops_b


def test_moreau_floor_models_the_kernel():
    """floor.moreau_function is the Moreau pass's state line on its common path (unit
    Goldstein trial accepted): on a one-stage chain with GBP for the objective its output
    is the kernel's lam_0 (reference: the kernel, itself checked against scipy solves of
    the prox subproblems in test_moreau.py). Its critical cycle holds one sincos and one
    division (the Barzilai-Borwein step)."""
    floor = _load("floor.py")
    from moreauctl.oracles import MoreauOracle

    from moreauctl import models

    p = models.pendulum_swingup(horizon=1, dt=0.1)
    w = np.array([[0.3]])
    o = MoreauOracle(p.chain, alpha=1.0, gamma=0.5, rules=("gbp", "mbp", "mbp"))
    assert o.gam_h == 0.5 and o.gam[0] == 0.5
    out, _ = o(w)
    xT = out.states[-1]
    lamT = 0.5 * np.array([2 * (xT[0] - np.pi), 2 * 0.1 * xT[1]])  # gam_h grad h(x_T)
    lam0 = np.asarray(floor.moreau_function(p, c=0.5)(w[0], out.states[0], lamT)).ravel()
    np.testing.assert_allclose(lam0, out.info["lam0"], rtol=1e-12)
    lat = {"add": 1.0, "mul": 1.0, "div": 1.0, "neg": 1.0, "sqrt": 1.0, "sin": 10.0,
           "cos": 10.0, "sincos": 10.0}
    ns, ops = floor.moreau_floor(p, lat)
    assert ops["sincos"] == 1.0 and ops["div"] == 1.0
    assert ns == pytest.approx(sum(v * (10.0 if k == "sincos" else 1.0) for k, v in ops.items()))
