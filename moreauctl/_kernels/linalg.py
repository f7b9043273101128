"""Small dense linear algebra for the generated kernels (sizes ``nx``, ``nw`` of a stage).

Plain loops: at these sizes (1-20) a call into LAPACK costs more than the arithmetic, and
the kernels must not allocate per stage. Arrays are flat, matrices column-major ``(n*n,)``
like CasADi's dense outputs.
"""
from __future__ import annotations

import math

from moreauctl._config import jit

__all__ = ["dot", "cholesky_solve"]


@jit
def dot(a, b, n):
    """``sum_i a[i] b[i]`` over the first ``n`` entries."""
    s = 0.0
    for i in range(n):
        s += a[i] * b[i]
    return s


@jit
def cholesky_solve(H, n, b, out, L):
    """Solve ``H out = b`` for a symmetric ``H`` (``n*n``, column-major) by Cholesky.

    Returns False, leaving ``out`` untouched, when ``H`` is not positive definite (the
    caller falls back to a gradient step). ``L`` is scratch of ``n*n`` entries (the factor,
    row-major: ``L[i*n+k] = L_ik``).
    """
    for j in range(n):
        s = H[j * n + j]
        for k in range(j):
            s -= L[j * n + k] * L[j * n + k]
        if not (s > 0.0):
            return False
        L[j * n + j] = math.sqrt(s)
        for i in range(j + 1, n):
            s = H[j * n + i]
            for k in range(j):
                s -= L[i * n + k] * L[j * n + k]
            L[i * n + j] = s / L[j * n + j]
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i * n + k] * out[k]
        out[i] = s / L[i * n + i]
    for i in range(n - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, n):
            s -= L[k * n + i] * out[k]
        out[i] = s / L[i * n + i]
    return True
