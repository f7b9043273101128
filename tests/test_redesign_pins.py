"""Numbers pinned before the core redesign (issue 9).

Reference: ``tests/data/pre_redesign.npz``, computed at commit dea2677 by
``tests/data/make_pre_redesign.py`` with the pre-redesign code (gradients by compiled
back-propagation, which that commit's tests held to CasADi reverse mode at 1e-10; Moreau
directions from the fused kernel, bitwise equal to that commit's generic kernels). The
redesign must not change them: relative error <= 1e-12.
"""
import numpy as np
import pytest

import moreauctl as mc
from moreauctl.oracles import MoreauOracle

from .data.make_pre_redesign import MOREAU_CONFIGS, PROBLEMS, RUNS

REF = np.load(__file__.replace("test_redesign_pins.py", "data/pre_redesign.npz"))


def _close(a, b, tol=1e-12):
    return mc.relative_error(a, b) <= tol


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_gradient_and_rollout_unchanged(name):
    p = PROBLEMS[name]()
    w = REF[f"{name}/w"]
    assert mc.objective(p, w) == pytest.approx(float(REF[f"{name}/cost"]), rel=1e-13)
    assert _close(mc.rollout(p, w), REF[f"{name}/states"])
    assert _close(mc.gradient(p, w), REF[f"{name}/gradient"])


@pytest.mark.parametrize("cname", sorted(MOREAU_CONFIGS))
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_moreau_direction_unchanged(name, cname):
    p = PROBLEMS[name]()
    w = REF[f"{name}/w"]
    kw = MOREAU_CONFIGS[cname]
    assert _close(mc.moreau_direction(p, w, **kw), REF[f"{name}/moreau/{cname}"])
    oracle = MoreauOracle(p.chain, **kw)
    out, _ = oracle(w.ravel(), oracle.init(w))
    # the oracle's direction is g / alpha (gradient units)
    assert _close(kw["alpha"] * out.direction, REF[f"{name}/moreau/{cname}"].ravel())
    assert _close(out.info["lam0"], REF[f"{name}/moreau_lam0/{cname}"])
    if f"{name}/moreau_resid/{cname}" in REF:
        assert np.allclose(out.info["residuals"], REF[f"{name}/moreau_resid/{cname}"],
                           rtol=1e-9, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("rname", sorted(RUNS))
def test_solve_runs_unchanged(rname):
    p = mc.models.pendulum_swingup(horizon=50)
    r = mc.solve(p, verbose=False, **RUNS[rname])
    ref = REF[f"solve/{rname}/costs"]
    assert r.costs.shape == ref.shape
    assert np.allclose(r.costs, ref, rtol=1e-10, atol=1e-14)
    assert _close(r.w, REF[f"solve/{rname}/w"], 1e-10)
