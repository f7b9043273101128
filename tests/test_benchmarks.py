"""Smoke test of the benchmark scripts (tiny T, one repeat) so they cannot rot.
Timings are never asserted; only that the run completes and agrees with CasADi."""
import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    path = os.path.join(HERE, "..", "benchmarks", name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_gradient_smoke(tmp_path):
    out = tmp_path / "r.json"
    rows = _load("bench_gradient.py").main(["--horizons", "30", "--repeats", "1", "--out", str(out)])
    assert rows[0]["T"] == 30
    assert rows[0]["max_rel_diff_vs_casadi"] <= 1e-10  # reference: CasADi reverse mode
    data = json.loads(out.read_text())
    assert data["rows"][0]["T"] == 30 and "date" in data["meta"]
