"""Provenance of ``pre_redesign.npz``: run once at commit dea2677 (before the core redesign
of issue 9) with that commit's API, which no longer exists. Kept so the reference values in
``tests/test_redesign_pins.py`` say where they came from; it is not run by the tests.

    .venv/bin/python tests/data/make_pre_redesign.py   # at dea2677
"""
import casadi as ca
import numpy as np

import moreauctl as mc
from moreauctl import models
from moreauctl.oracles import MoreauOracle

MOREAU_CONFIGS = {
    "paper": dict(alpha=2.0 ** 7, gamma=0.5),
    "paper_small": dict(alpha=0.5, gamma=0.9),
    "rules_gmm": dict(alpha=1.0, gamma=0.9, rules=("gbp", "mbp", "mbp")),
    "rules_mgg": dict(alpha=1.0, gamma=0.9, rules=("mbp", "gbp", "gbp")),
    "text": dict(alpha=2.0, gamma=0.8, alpha_convention="text"),
    "constant": dict(alpha=0.3, gamma=0.99, schedule="constant"),
    "inner_gd": dict(alpha=1.0, gamma=0.9, inner="gd", inner_iters=30, inner_tol=1e-12),
    "inner_newton": dict(alpha=1.0, gamma=0.9, inner="newton", inner_iters=20, inner_tol=1e-12),
    "diagnostics": dict(alpha=1.0, gamma=0.9, diagnostics=True),
}


def toy_stage_cost(T):
    x = ca.SX.sym("x", 2); u = ca.SX.sym("u", 1)
    toy = mc.Plant(state=x, control=u, rhs=ca.vertcat(x[1], -ca.sin(x[0]) + u[0]), name="toy")
    return mc.ControlProblem(toy, horizon=T, dt=0.05, x0=[0.0, 0.0],
                             terminal_cost=lambda x: (x[0] - ca.pi) ** 2 + 0.1 * x[1] ** 2,
                             stage_cost=lambda x, u: 1e-2 * u[0] ** 2, scheme="rk4")


PROBLEMS = {
    "pendulum": lambda: models.pendulum_swingup(horizon=200),
    "cartpole": lambda: models.cartpole_swingup(horizon=100),
    "toy_rk4_stagecost": lambda: toy_stage_cost(150),
}

RUNS = {
    "gd": dict(method="gd", step=0.5, iters=20),
    "gd_geometric": dict(method="gd", step=2.0 ** 9, iters=20, stage_weights="geometric", gamma=0.5),
    "moreau_gd": dict(method="moreau-gd", step=2.0 ** 7, iters=20, gamma=0.5),
    "adam": dict(method="adam", step=0.05, iters=20),
    "armijo": dict(method="gd", step=2.0, iters=20, line_search="armijo"),
    "moreau_adam": dict(method="moreau-adam", step=0.05, iters=20, gamma=0.9),
}


def main():
    out = {}
    for name, make in PROBLEMS.items():
        p = make()
        rng = np.random.default_rng(2026)
        w = np.ascontiguousarray(0.3 * rng.normal(size=(p.horizon, p.nw)))
        out[f"{name}/w"] = w
        out[f"{name}/cost"] = np.array(mc.objective(p, w))
        out[f"{name}/states"] = mc.rollout(p, w)
        out[f"{name}/gradient"] = mc.gradient(p, w)
        for cname, kw in MOREAU_CONFIGS.items():
            o = MoreauOracle(p.chain, **kw)(w)
            out[f"{name}/moreau/{cname}"] = o.direction
            out[f"{name}/moreau_lam0/{cname}"] = o.info["lam0"]
            if "residuals" in o.info:
                out[f"{name}/moreau_resid/{cname}"] = o.info["residuals"]

    p = models.pendulum_swingup(horizon=50)
    for rname, kw in RUNS.items():
        r = mc.solve(p, verbose=False, **kw)
        out[f"solve/{rname}/costs"] = r.costs
        out[f"solve/{rname}/w"] = r.w
    np.savez_compressed("tests/data/pre_redesign.npz", **out)
    print(len(out), "arrays")


if __name__ == "__main__":
    main()
