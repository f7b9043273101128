"""CasADi SX Function -> numba kernel code generation.

:func:`translate` turns one SX :class:`casadi.Function` into the Python source of a
straight-line function ``name(i0, ..., o0, ...)`` that writes its outputs in place;
:func:`build_module` writes a set of such kernels (plus caller-written ``@_jit`` glue) to a
file in the cache directory, imports it, and lets numba cache the compiled code on disk.
"""
from moreauctl.codegen.build import build_module
from moreauctl.codegen.translate import SUPPORTED_OPS, UnsupportedOperationError, translate

__all__ = ["translate", "build_module", "UnsupportedOperationError", "SUPPORTED_OPS"]
