"""moreauctl: nonlinear optimal control with differentiable programming a la Moreau.

>>> import moreauctl as mc
>>> from moreauctl import models
>>> prob = models.pendulum_swingup(horizon=50)
>>> res = mc.solve(prob, method="gd", step=0.5, iters=50, verbose=False)

The shape of the package (data flows one way): plants and problems (``plant``,
``discretize``, ``problem``: CasADi, symbolic) -> ``codegen`` (compiled passes,
:func:`compile_chain`) and the :class:`Chain` protocol (``chain``, per-line rules in
``rules``) -> ``oracles`` (one file each) -> ``optimizers`` -> ``solve`` (:func:`minimize`,
the one loop; :func:`solve`, method names through ``registry``) -> ``result``, ``studies``,
``plots``, ``cli``.
"""
from .api import check_gradient, gradient, moreau_direction, objective, relative_error, rollout
from .chain import Chain, Layout, Objective, Stage
from .codegen import CasadiChain, compile_chain
from .plant import Plant
from .problem import ControlProblem
from .registry import register_method, register_optimizer, register_oracle
from .result import History, SolveResult
from .solve import METHODS, IterationInfo, minimize, solve
from .mpc import MPCResult, mpc, shift
from . import models  # noqa: E402,I001  (last: the model files use mc.Plant, mc.ControlProblem)

__version__ = "0.1.0"

__all__ = ["Plant", "ControlProblem", "Chain", "Layout", "Stage", "Objective", "CasadiChain",
           "compile_chain", "solve", "minimize", "SolveResult", "History", "METHODS",
           "IterationInfo", "gradient", "objective", "rollout", "moreau_direction",
           "check_gradient", "relative_error", "register_method", "register_oracle",
           "register_optimizer", "mpc", "shift", "MPCResult", "models"]
