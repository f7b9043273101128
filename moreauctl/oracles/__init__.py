"""Oracles: a forward pass plus one backward pass, returning a direction for each ``w_t``.

Every oracle has ``init(w) -> state``, ``oracle(w, state, data) -> (OracleOutput, state)``
and ``objective(w, data)`` (:mod:`moreauctl.oracles.base`); solvers and optimizers use
nothing else. One file per oracle, each registering itself and its methods in
:mod:`moreauctl.registry`.
"""
from .base import Oracle, OracleOutput
from .gradient import GradientOracle, stage_weight_vector
from .moreau import INNERS, MoreauOracle, moreau_schedule
from .svgd import SVGDOracle
from ..rules import RULES

__all__ = ["Oracle", "OracleOutput", "GradientOracle", "MoreauOracle", "SVGDOracle", "RULES",
           "INNERS", "moreau_schedule", "stage_weight_vector"]
