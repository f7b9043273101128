"""CasADi SX graphs -> numba loops over ``T`` homogeneous stages (``T`` up to 10^6).

- :func:`~moreauctl.compile_chain` (:mod:`.compile`): a ControlProblem ->
  :class:`~moreauctl.CasadiChain`, the Chain protocol with compiled passes; cached per
  problem and on disk.
- :mod:`.stages`: the per-stage primitives derived with CasADi; :mod:`.intermediates`: the
  stage's transcendental values stored for the backward pass.
- :mod:`.fused`: the passes (forward, gradient, Moreau); :mod:`.inner`: array-form
  subproblem solvers.
- :func:`~moreauctl.codegen.translate.translate` (:mod:`.translate`): one SX Function ->
  straight-line numba source; :func:`~moreauctl.codegen.build.build_module`
  (:mod:`.build`): generated source -> an importable, numba-cached module.
"""
from moreauctl.codegen.build import build_module
from moreauctl.codegen.compile import (CasadiChain, CasadiObjective, CasadiStage, compile_casadi_chain,
                                       compile_chain)
from moreauctl.codegen.translate import SUPPORTED_OPS, UnsupportedOperationError, translate

__all__ = ["compile_chain", "compile_casadi_chain", "CasadiChain", "CasadiStage", "CasadiObjective",
           "translate", "build_module", "UnsupportedOperationError", "SUPPORTED_OPS"]
