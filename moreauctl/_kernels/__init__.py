"""Loop kernels (forward pass, backward passes) shared by every chain.

The kernels are plain Python source decorated with ``@_jit`` that call per-stage primitives
by name (``_phi``, ``_vjp``, ``_h``...). They are not imported on their own: the code
generator appends this source to the module it generates for a chain, after the stage
primitives, so numba compiles loop and stage together (the stage calls inline) and caches
the result on disk. See :func:`kernel_source`.
"""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

KERNEL_FILES = ("chain_kernels.py",)


def kernel_source() -> str:
    """Source text of every loop kernel, to append to a generated stage module."""
    return "\n\n".join((_HERE / name).read_text() for name in KERNEL_FILES)
