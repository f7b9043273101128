"""moreauctl: nonlinear optimal control with differentiable programming a la Moreau.

>>> import moreauctl as mc
>>> from moreauctl import models
>>> prob = models.pendulum_swingup(horizon=50)
>>> res = mc.solve(prob, method="gd", step=0.5, iters=50, verbose=False)
"""
from .api import check_gradient, gradient, moreau_direction, objective, relative_error, rollout
from .chain import Chain
from .plant import Plant
from .problem import ControlProblem
from .result import History, SolveResult
from .solve import METHODS, IterationInfo, solve
from . import models  # noqa: E402,I001  (last: the model files use mc.Plant, mc.ControlProblem)

__version__ = "0.1.0"

__all__ = ["Plant", "ControlProblem", "Chain", "solve", "SolveResult", "History", "METHODS",
           "IterationInfo", "gradient", "objective", "rollout", "check_gradient",
           "relative_error", "models"]
