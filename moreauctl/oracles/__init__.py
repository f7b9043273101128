"""Oracles: a forward pass plus one backward pass, returning a direction for each ``w_t``.

Every oracle is a callable ``oracle(w) -> OracleOutput`` and has ``objective(w)``; solvers
and optimizers use nothing else.
"""
from .base import OracleOutput
from .gradient import GradientOracle, stage_weight_vector
from .moreau import MoreauOracle, RULES, INNERS, moreau_schedule

__all__ = ["OracleOutput", "GradientOracle", "MoreauOracle", "RULES", "INNERS",
           "moreau_schedule", "stage_weight_vector"]
