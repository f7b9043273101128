"""Oracles: a forward pass plus one backward pass, returning a direction for each ``w_t``.

Every oracle has ``init(w) -> state``, ``oracle(w, state, data) -> (OracleOutput, state)``
and ``objective(w, data)`` (:mod:`moreauctl.oracles.base`); solvers and optimizers use
nothing else. One file per oracle, each registering itself and its methods in
:mod:`moreauctl.registry`.
"""
from .base import Oracle, OracleOutput
from .gradient import GradientOracle, stage_weight_vector
from .moreau import INNERS, MoreauOracle, lagrangian_steps, moreau_schedule
from .svgd import SVGDOracle
from .proxprop import ProxPropOracle
from .auglag import AugLagOracle
from .target_prop import ProxTargetPropOracle, TargetPropOracle
from .penalized import PenalizedOracle
from ..rules import RULES

__all__ = ["Oracle", "OracleOutput", "GradientOracle", "MoreauOracle", "SVGDOracle",
           "ProxPropOracle", "AugLagOracle", "TargetPropOracle", "ProxTargetPropOracle",
           "PenalizedOracle", "RULES", "INNERS", "moreau_schedule", "lagrangian_steps",
           "stage_weight_vector"]
