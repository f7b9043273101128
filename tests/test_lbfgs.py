"""``method="lbfgs"``: scipy's L-BFGS-B on the compiled gradient.

References: the control-effort swing-up optimum at T=50 pinned in tests/test_ipopt.py
(IPOPT 3.14.19, tol 1e-10: 0.0299503877442826), and a direct call of
``scipy.optimize.minimize(method="L-BFGS-B")`` on ``mc.objective``/``mc.gradient`` (the
user's script of issue 12): the method must take the very same iterates.
"""
import numpy as np
import pytest
import scipy.optimize as so

import moreauctl as mc
from moreauctl.lbfgs import DEFAULT_LBFGS_OPTIONS

from .test_bounds import running_cost_problem
from .test_ipopt import EFFORT_T50_OPTIMUM, effort_problem


def test_reaches_the_pinned_ipopt_optimum():
    res = mc.solve(effort_problem(50), "lbfgs", verbose=False)
    assert res.success and res.status == 4, res.message
    assert res.fun == pytest.approx(EFFORT_T50_OPTIMUM, rel=1e-9)
    h = res.history
    assert len(res.costs) == res.nit + 1 == len(h.times) == len(h.evals)
    assert res.costs[0] == pytest.approx(np.pi ** 2)
    assert np.all(np.diff(h.evals) >= 1) and np.all(np.diff(h.times) >= 0)
    assert h.direction_norms[-1] < 1e-6 * h.direction_norms[0]
    assert res.states.shape == (51, 3) and res.settings["lbfgs_options"]["maxcor"] == 20


def test_same_iterates_as_a_direct_scipy_call():
    p = running_cost_problem(T=60, bounds=None)
    res = mc.solve(p, "lbfgs", iters=40, verbose=False)
    f = lambda v: mc.objective(p, v.reshape(60, 1))  # noqa: E731
    g = lambda v: mc.gradient(p, v.reshape(60, 1)).ravel()  # noqa: E731
    ref = so.minimize(f, np.zeros(60), jac=g, method="L-BFGS-B",
                      options=dict(DEFAULT_LBFGS_OPTIONS, maxiter=40))
    assert res.nit == ref.nit
    np.testing.assert_allclose(res.w.ravel(), ref.x, rtol=0, atol=1e-12)
    assert res.fun == pytest.approx(ref.fun, rel=1e-13)


def test_iteration_cap_is_status_0_and_options_are_checked():
    p = running_cost_problem(T=30, bounds=None)
    res = mc.solve(p, "lbfgs", iters=3, verbose=False)
    assert res.nit == 3 and res.status == 0 and res.success
    res = mc.solve(p, "lbfgs", iters=50, solver_options={"maxcor": 3, "ftol": 1e-3},
                   verbose=False)
    assert res.status == 4 and res.settings["lbfgs_options"]["maxcor"] == 3
    with pytest.raises(ValueError, match="unknown L-BFGS-B option 'maxiter'"):
        mc.solve(p, "lbfgs", solver_options={"maxiter": 3}, verbose=False)
    with pytest.raises(TypeError, match="mapping"):
        mc.solve(p, "lbfgs", solver_options=[("maxcor", 3)], verbose=False)
    with pytest.raises(ValueError, match="gamma"):
        mc.solve(p, "lbfgs", gamma=0.5, verbose=False)
    with pytest.raises(ValueError, match="shape"):
        mc.solve(p, "lbfgs", w0=np.zeros(3), verbose=False)
