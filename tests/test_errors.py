"""Errors before compute, and failures that are results (issue 13, "Also"): IPOPT's own
messages, a non-finite initial rollout named by its first non-finite state, shape checks of
the public chains, non-finite or complex inputs, bad numeric options, cost functions with the
wrong signature or a foreign symbol."""
import math

import casadi as ca
import numpy as np
import pytest

import moreauctl as mc
from moreauctl import models, studies
from moreauctl.chain import Chain, Objective, Stage
from moreauctl.ipopt import IPOPT_FAILED


@pytest.fixture
def pend(swingup):
    return swingup(10)


# -- IPOPT -------------------------------------------------------------------------------

@pytest.mark.parametrize("options,said", [
    ({"foo_bar": 3}, "No such IPOPT option: foo_bar"),
    ({"ipopt.tol": -3}, 'Setting: "-3" is not a valid setting for Option: tol'),
    ({"tol": "abc"}, "type mismatch"),
    ({"mu_strategy": "fastest"}, 'Setting: "fastest" is not a valid setting for Option: mu_strategy'),
])
def test_ipopt_rejects_bad_options_with_its_own_message(pend, options, said):
    with pytest.raises(ValueError, match="IPOPT rejected the options") as e:
        mc.solve(pend, method="ipopt", solver_options=options, verbose=False)
    assert said in str(e.value)
    assert "Opti stack" not in str(e.value)  # not CasADi's "Opti stack not solved"


def test_ipopt_unavailable_linear_solver_is_reported():
    from moreauctl.ipopt import check_options
    try:
        check_options({"linear_solver": "ma27"})
    except ValueError as e:
        assert "ma27" in str(e) and "EXIT" in str(e)
    else:
        pytest.skip("this machine has HSL's ma27")
    assert check_options(None)["tol"] == 1e-10
    assert check_options({"ipopt.max_iter": 7})["max_iter"] == 7


def test_a_sweep_checks_ipopt_options_before_any_cell(monkeypatch):
    from moreauctl.studies import sweep as sweep_mod
    monkeypatch.setattr(sweep_mod, "_run_cells", lambda *a, **k: pytest.fail("computed"))
    with pytest.raises(ValueError, match="No such IPOPT option: tolerance"):
        studies.horizon_sweep("pendulum", [10], ipopt_options={"tolerance": 1e-8})


def test_a_failing_reference_cell_is_reported_not_fatal(monkeypatch):
    from moreauctl.studies import sweep as sweep_mod
    real = sweep_mod.solve

    def solve(problem, method, **kw):
        if method == "ipopt":
            raise RuntimeError(".../casadi/core/x.cpp:1: Error in Opti::solve\nsomething broke")
        return real(problem, method, **kw)
    monkeypatch.setattr(sweep_mod, "solve", solve)
    sw = studies.horizon_sweep("pendulum", [10], {"gd": {"method": "gd", "steps": [0.5]}},
                               iters=2, executor="serial", progress=False)
    ref = sw.references[10]
    assert not ref.success and ref.status == IPOPT_FAILED
    assert ref.message == "IPOPT failed: RuntimeError: something broke"
    assert math.isnan(sw.c_star(10))
    assert sw.grid(10, "gd").winner is not None  # the rest of the sweep ran
    row = next(r for r in sw.rows() if r["method"] == "IPOPT")
    assert row["status"] == ref.message and row["failed steps"] == 1


# -- a non-finite initial rollout --------------------------------------------------------

def _euler_pendulum_first_overflow(x0, T, dt=0.1, g=9.81, mu=0.01):
    """Plain-float twin of the pendulum's Euler stage at w = 0 (E.1.1, m = l = 1): the first
    t whose state x_t is not finite."""
    th, om = x0
    for t in range(1, T + 1):
        th, om = th + dt * om, om + dt * (-g * math.sin(th) - mu * om)
        if not (math.isfinite(th) and math.isfinite(om)):
            return t
    return None


HUGE_X0 = [1.7e308, 1e307]


@pytest.mark.parametrize("method,kw", [("gd", {"step": 0.5}),
                                       ("moreau-gd", {"step": 2.0, "gamma": 0.5}),
                                       ("ipopt", {})])
def test_nonfinite_initial_rollout_names_the_first_nonfinite_state(method, kw):
    T = 20
    t = _euler_pendulum_first_overflow(HUGE_X0, T)
    assert t == 10  # 1.7e308 + 10 * 1e306 > max float
    p = mc.ControlProblem(models.pendulum(), T, 0.1, HUGE_X0,
                          lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2)
    res = mc.solve(p, method=method, verbose=False, **kw)
    assert not res.success and res.status == -1 and res.nit == 0
    assert res.message == (f"the initial rollout is not finite: x_{t}, the output of stage {t} "
                           f"(row {t - 1} of w), is the first non-finite state")
    assert "diverged" not in res.message


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_nonfinite_objective_with_finite_states_is_said_so():
    # theta ~ 1e200 stays finite, (theta - pi)^2 overflows
    p = mc.ControlProblem(models.pendulum(), 3, 0.1, [1e200, 0.0],
                          lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2)
    res = mc.solve(p, "gd", step=0.1, verbose=False)
    assert res.status == -1
    assert res.message.endswith("every state is finite but the objective h(x_T) is not")


# -- shapes of the public chains ---------------------------------------------------------

def test_compiled_chain_checks_shapes_and_dtypes(pend):
    ch = pend.chain
    T, nw, nx = 10, 1, 2
    good_w, good_X = np.zeros(T * nw), ch.forward(np.zeros(T * nw))[1]
    for bad in (np.zeros(T - 1), np.zeros((T - 1, nw)), np.zeros((T, nw + 1)), np.zeros(T + 1),
                np.zeros((1, T)), [0.0] * T):
        for call in (lambda w: ch.objective(w), lambda w: ch.forward(w),
                     lambda w: ch.value_and_gradient(w), lambda w: ch.gradient(w, good_X)):
            with pytest.raises(ValueError, match=r"expected \(T, nw\) = \(10, 1\)"):
                call(bad)
    for bad_X in (np.zeros((T, nx)), np.zeros((T + 1, nx + 1)), good_X[:, :1]):
        with pytest.raises(ValueError, match=r"X has shape .* expected \(T\+1, nx\) = \(11, 2\)"):
            ch.gradient(good_w, bad_X)
    with pytest.raises(TypeError, match="float64"):
        ch.objective(np.zeros(T, dtype=np.int64))
    with pytest.raises(TypeError, match="float64"):
        ch.gradient(good_w, good_X.astype(np.float32))
    # the right shapes, flat or (T, nw), give the same numbers
    assert ch.objective(good_w) == ch.objective(good_w.reshape(T, nw)) == pytest.approx(np.pi ** 2)


class _Scale(Stage):
    """x_t = w_t * x_{t-1} (elementwise, x of shape (2,), w_t of shape (2,))."""
    param_shapes = ((2,),)

    def forward(self, w, x):
        return w * x

    def vjp(self, w, x, lam):
        return lam * x, lam * w


class _Sum(Objective):
    def value(self, x, data):
        return float(np.sum(x))

    def grad(self, x, data):
        return np.ones_like(x)


def test_python_chain_checks_the_flat_shape():
    ch = Chain([_Scale()] * 3, _Sum(), np.array([1.0, 2.0]))
    w = np.ones(6)
    assert ch.objective(w) == 3.0
    for bad in (np.ones(5), np.ones((3, 2)), np.ones(7)):
        with pytest.raises(ValueError, match=r"flat float64 array of shape \(6,\)"):
            ch.objective(bad)
        with pytest.raises(ValueError, match="flat"):
            ch.forward(bad)
    cost, X = ch.forward(w)
    with pytest.raises(ValueError, match="X has 3 states; expected T\\+1 = 4"):
        ch.gradient(w, X[:3])
    G, _ = ch.gradient(w, X)
    np.testing.assert_array_equal(G, [1.0, 2.0] * 3)  # d/dw_t sum(prod w * x0) = x0 at w = 1


# -- values and options ------------------------------------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nonfinite_plant_parameters(value):
    with pytest.raises(ValueError, match=r"params\['g'\] must be a finite number"):
        models.pendulum(g=value)
    x, u, k = ca.SX.sym("x"), ca.SX.sym("u"), ca.SX.sym("k")
    with pytest.raises(ValueError, match=r"params\['k'\] must be a finite number"):
        mc.Plant(state=x, control=u, rhs=-k * x + u, params={"k": value})


def test_complex_inputs_are_refused_not_made_real(pend):
    wc = np.zeros((10, 1)) + 1e-3j
    for call in (lambda: mc.objective(pend, wc), lambda: mc.gradient(pend, wc),
                 lambda: mc.solve(pend, "gd", w0=wc, iters=1, verbose=False),
                 lambda: mc.solve(pend, "ipopt", w0=wc, verbose=False),
                 lambda: pend.chain.check_params(wc)):
        with pytest.raises(TypeError, match="must be real numbers; got complex"):
            call()
    with pytest.raises(TypeError, match="x0 must be real numbers"):
        mc.ControlProblem(models.pendulum(), 10, 0.1, [0j, 0.0], lambda x: x[0] ** 2)


@pytest.mark.parametrize("kw,match", [
    ({"divergence_factor": 0.0}, "divergence_factor must be a finite number > 0"),
    ({"divergence_factor": -1.0}, "divergence_factor must be a finite number > 0"),
    ({"divergence_factor": math.nan}, "divergence_factor must be a finite number > 0"),
    ({"max_backtracks": 0, "line_search": "armijo"}, "max_backtracks must be an integer >= 1"),
])
def test_bad_loop_options(pend, kw, match):
    with pytest.raises(ValueError, match=match):
        mc.solve(pend, "gd", step=0.5, iters=1, verbose=False, **kw)


@pytest.mark.parametrize("eps", [0.0, -1e-5, math.nan, math.inf])
def test_check_gradient_eps(pend, eps):
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        mc.check_gradient(pend, eps=eps)


# -- cost functions ----------------------------------------------------------------------

def test_cost_functions_with_the_wrong_signature_or_a_foreign_symbol():
    plant = models.pendulum()

    def make(**kw):
        kw.setdefault("terminal_cost", lambda x: x[0] ** 2)
        return mc.ControlProblem(plant, 10, 0.1, [0.0, 0.0], **kw)

    with pytest.raises(TypeError, match=r"stage_cost must be a function stage_cost\(x, u\)"):
        make(stage_cost=lambda x: x[0] ** 2)
    with pytest.raises(TypeError, match=r"terminal_cost must be a function terminal_cost\(x\)"):
        make(terminal_cost=lambda x, u: x[0] ** 2)
    y = ca.SX.sym("y")
    with pytest.raises(ValueError, match=r"terminal_cost uses the symbol \['y'\], which "
                                         r"terminal_cost\(x\) does not receive"):
        make(terminal_cost=lambda x: (x[0] - y) ** 2)
    with pytest.raises(ValueError, match=r"\['u'\], which terminal_cost\(x\)"):
        make(terminal_cost=lambda x: x[0] ** 2 + plant.control[0])
    with pytest.raises(ValueError, match=r"stage_cost uses the symbol \['y'\], which "
                                         r"stage_cost\(x, u\) does not receive"):
        make(stage_cost=lambda x, u: y * u[0] ** 2)
    # an expression of the plant's own state is fine, and so are default arguments
    assert make(terminal_cost=(plant.state[0] - ca.pi) ** 2).nx == 2
    assert make(stage_cost=lambda x, u, c=0.01: c * u[0] ** 2).nx == 3


@pytest.mark.parametrize("kw", [{"divergence_factor": -1.0}, {"max_backtracks": 0},
                                {"gtol": -1.0}, {"line_search": "wolfe"}, {"iters": -1},
                                {"step": 0.0}])
def test_bad_settings_are_errors_before_compiling(monkeypatch, kw):
    """The loop's settings are checked before the chain is built (oracle options, e.g. a
    bad gamma, are checked by the oracle, which needs the chain: code generation, but no
    JIT compilation, happens first for those)."""
    from moreauctl import problem as problem_mod
    p = models.pendulum_swingup(horizon=7)  # a new problem: its chain is not built yet

    def compiled(problem):
        raise AssertionError("compiled before checking the settings")
    monkeypatch.setattr(problem_mod, "compile_chain", compiled)
    with pytest.raises(ValueError):
        mc.solve(p, "gd", verbose=False, **kw)
