"""Property-based tests of the public API (issue 13): random shapes, NaN/inf placements,
horizons, steps, options and method names. Every call either returns a result whose arrays
are finite and shaped as documented (or, for a run, whose status is negative), or raises a
``ValueError``/``TypeError`` with a message; never another exception type, never a hang
(tiny horizons and iteration counts), never a silently wrong shape.

Hypothesis (the well-kept library for this) draws the examples and shrinks a failure to a
minimal one. The examples are derandomized (the same ones on every run: the quick tier stays
reproducible, no example database is written); ``HYPOTHESIS_PROFILE=explore`` draws new,
more numerous ones. ``deadline=None``: the first example of a test may load compiled
kernels. The whole suite takes a few seconds with a warm kernel cache.
"""
import math
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import moreauctl as mc  # noqa: E402
from moreauctl import models, studies  # noqa: E402
from moreauctl.chain import Layout  # noqa: E402
from moreauctl.cli import args as cli_args  # noqa: E402

settings.register_profile("quick", max_examples=25, deadline=None, derandomize=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
#: numbers a user may pass, sane or not
ANY_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                       st.booleans(), st.none(), st.just("0.5"), st.just("x"),
                       st.complex_numbers(max_magnitude=10))


def outcome(call):
    """``call()``'s value, or None when it raised ValueError/TypeError with a message; any
    other exception fails the property."""
    try:
        return call()
    except (ValueError, TypeError) as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        return None


def finite(a) -> bool:
    return bool(np.all(np.isfinite(np.asarray(a, dtype=float))))


def w_arrays(T, nw=1):
    """Arrays of the right shape (flat or (T, nw)) or not, with entries in [-100, 100] and
    sometimes NaN/inf placed anywhere."""
    shapes = st.one_of(st.just((T, nw)), st.just((T * nw,)),
                       hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    return shapes.flatmap(lambda s: hnp.arrays(
        np.float64, s, elements=st.one_of(st.floats(-100, 100), NONFINITE)))


@given(T=st.integers(1, 8), data=st.data())
def test_functional_api_shapes_and_values(swingup, T, data):
    # swingup(T): the session's problems (conftest.py); every T shares one set of compiled
    # kernels (T is a run-time size), so drawing T compiles nothing
    p = swingup(T)
    w = data.draw(w_arrays(T))
    good = w.shape in ((T, 1), (T,)) and finite(w)
    for fn, shape in ((mc.objective, ()), (mc.gradient, (T, 1)), (mc.rollout, (T + 1, 2))):
        got = outcome(lambda: fn(p, w))
        if not good:
            assert got is None, (fn.__name__, w.shape)
            continue
        assert got is not None and np.shape(got) == shape and finite(got), fn.__name__
    g = outcome(lambda: mc.moreau_direction(p, w, alpha=1.0, gamma=0.5))
    assert (g is None) == (not good)
    if good:
        assert g.shape == (T, 1) and finite(g)


#: run settings: half of the examples draw only sane values (runs that start), the others
#: anything a user may pass
SANE_RUN = st.fixed_dictionaries({
    "method": st.sampled_from(sorted(mc.METHODS)), "step": st.floats(1e-3, 1e3),
    "gamma": st.floats(0.05, 1.0), "iters": st.integers(0, 4),
    "line_search": st.sampled_from([None, "armijo"]), "w0": st.none(),
    "stage_weights": st.sampled_from([None, "geometric"]), "sane": st.just(True)})
ANY_RUN = st.fixed_dictionaries({
    "method": st.one_of(st.sampled_from(sorted(mc.METHODS)), st.text(max_size=8)),
    "step": st.one_of(st.floats(1e-3, 1e3), ANY_NUMBER),
    "gamma": st.one_of(st.none(), st.floats(0.05, 1.0), ANY_NUMBER),
    "iters": st.one_of(st.integers(0, 4), st.integers(-3, -1), st.floats(0, 3), st.none()),
    "line_search": st.sampled_from([None, "armijo", "wolfe"]),
    "w0": st.one_of(st.none(), st.integers(1, 6).flatmap(lambda T: w_arrays(T))),
    "stage_weights": st.sampled_from([None, "geometric", "linear"]), "sane": st.just(False)})


@given(T=st.integers(1, 6), run=st.one_of(SANE_RUN, ANY_RUN))
def test_solve_returns_a_finite_result_a_failure_or_a_clear_error(swingup, T, run):
    method, step, gamma, iters, line_search, w0 = (
        run[k] for k in ("method", "step", "gamma", "iters", "line_search", "w0"))
    p = swingup(T)
    kw = dict(gamma=gamma, line_search=line_search, stage_weights=run["stage_weights"])
    if run["sane"] and not method.startswith("moreau"):
        # gradient methods take gamma as the ratio of geometric stage weights only
        kw.update(gamma=gamma if run["stage_weights"] else None)
    if run["sane"] and method.startswith("moreau"):
        kw.update(stage_weights=None)
    if method == "ipopt":  # a solver method: first-order settings are refused, tested apart
        kw = {}
    res = outcome(lambda: mc.solve(p, method, step=step, iters=iters, w0=w0, verbose=False,
                                   **kw))
    event("error" if res is None else f"status {res.status}")
    if res is None:
        return
    assert isinstance(res, mc.SolveResult)
    assert res.w.shape == (T, 1)
    assert res.states is None or res.states.shape == (T + 1, 2)
    assert res.costs.ndim == 1 and 1 <= len(res.costs)
    if res.status >= 0:
        assert res.success and finite(res.costs) and finite(res.w) and math.isfinite(res.fun)
        assert res.states is None or finite(res.states)
        assert method == "ipopt" or len(res.costs) == res.nit + 1
    else:
        assert not res.success and res.message
        assert finite(res.w)  # the last iterate with a finite cost


@given(horizon=ANY_NUMBER, dt=ANY_NUMBER, scheme=st.one_of(
           st.sampled_from(["euler", "rk4", "heun", "semi-implicit-euler"]), st.text(max_size=6)),
       x0=st.one_of(hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=3),
                               elements=st.one_of(st.floats(-10, 10), NONFINITE)),
                    st.lists(ANY_NUMBER, max_size=3)),
       substeps=ANY_NUMBER)
def test_problem_construction(horizon, dt, scheme, x0, substeps):
    # symbolic only: nothing is compiled here
    prob = outcome(lambda: mc.ControlProblem(models.pendulum(), horizon, dt, x0,
                                             lambda x: (x[0] - math.pi) ** 2, scheme=scheme,
                                             substeps=substeps))
    if prob is not None:
        assert prob.horizon >= 1 and math.isfinite(prob.dt) and prob.dt > 0
        assert prob.x0.shape == (2,) and finite(prob.x0)
        assert prob.zeros().shape == (prob.horizon, 1)


@given(data=st.data())
def test_layout_pack_unpack(data):
    shapes = data.draw(st.lists(st.lists(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3),
                                         min_size=1, max_size=2), min_size=1, max_size=3))
    lay = Layout(shapes)
    params = [tuple(data.draw(hnp.arrays(np.float64, s, elements=st.floats(-5, 5))) for s in st_)
              for st_ in shapes]
    flat = lay.pack(params)
    assert flat.shape == (lay.size,)
    back = lay.unpack(flat)
    for p_t, b_t in zip(params, back):
        for a, b in zip(p_t, b_t):
            np.testing.assert_array_equal(a, b)
    # a wrong or damaged input is an error, never a silently reshaped vector
    bad = data.draw(st.one_of(
        hnp.arrays(np.float64, st.integers(0, 2 * lay.size + 2).filter(lambda n: n != lay.size)),
        st.just(params[:-1]), st.just([tuple(np.append(a, 0.0) for a in p) for p in params]),
        st.just(np.where(np.arange(lay.size) == 0, np.nan, flat)),
        st.just(flat + 1j)))
    assert outcome(lambda: lay.pack(bad)) is None


@given(lo=st.one_of(st.integers(-2000, 2000), ANY_NUMBER),
       hi=st.one_of(st.integers(-2000, 2000), ANY_NUMBER))
def test_powers_of_two(lo, hi):
    grid = outcome(lambda: studies.powers_of_two(lo, hi))
    if grid is not None:
        assert len(grid) == hi - lo + 1 and all(math.isfinite(s) and s > 0 for s in grid)


@given(text=st.text(alphabet="-0123456789:=,abgd ", max_size=20))
def test_step_grid_argument(text):
    got = outcome(lambda: cli_args.parse_steps(text))
    grids = [] if got is None else (list(got.values()) if isinstance(got, dict) else [got])
    for lo, hi in grids:
        assert len(studies.powers_of_two(lo, hi)) == hi - lo + 1


#: JSON-like values, for cell records read back from disk
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(max_size=5)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.text(max_size=6), inner,
                                                            max_size=3)),
                    max_leaves=8)
SPEC = {"kind": "run", "horizon": 10, "dt": 0.1, "problem": "plant:pendulum",
        "problem_kwargs": {}, "method": "gd", "step": 0.5, "iters": 2, "solve_kwargs": {}}


@given(edits=st.dictionaries(st.sampled_from(["key", "spec", "costs", "success", "status",
                                              "message", "nit", "seconds", "dt",
                                              "fingerprint", "extra"]), JSON, max_size=4),
       drop=st.sets(st.sampled_from(["costs", "status", "spec", "fingerprint"]), max_size=2))
def test_check_record_never_raises(edits, drop):
    rec = {"key": studies.cell_key(SPEC), "spec": dict(SPEC), "costs": [9.87, 9.5, "nan"],
           "success": False, "status": -1, "message": "diverged", "nit": 1, "seconds": 0.1,
           "dt": 0.1, "fingerprint": {"problem": "p", "code": "c"}}
    assert studies.check_record(rec, SPEC) is None
    rec.update(edits)
    for k in drop:
        rec.pop(k, None)
    why = studies.check_record(rec, SPEC)
    assert why is None or (isinstance(why, str) and why)
