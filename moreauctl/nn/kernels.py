"""Compiled per-layer kernels of :mod:`moreauctl.nn.conv`: the data movement of convolutions
and pooling (the arithmetic is BLAS's). numpy's strided copies of 6-d window views spent
most of a ConvNet's time; these loops read and write each entry once.

Images are ``(m, C, H, W)`` (C order); the im2col matrix is in *rows* layout
``(m, ho*wo, C*kh*kw)``: row ``i*wo + j`` of sample ``n`` holds the zero-padded window under
output pixel ``(i, j)``, in the order ``(c, u, v)`` of a flattened weight ``(O, C, kh, kw)``,
so a convolution is one matrix product ``cols.reshape(-1, C*kh*kw) @ W.reshape(O, -1).T``.
Every function is compiled with the options of ``moreauctl._config`` (cached on disk,
no fast-math: NaN and inf propagate) and specializes on float32/float64.
"""
from __future__ import annotations

import numpy as np

from .._config import jit

__all__ = ["im2col_rows", "col2im_rows", "maxpool_forward", "maxpool_scatter"]


@jit
def im2col_rows(x, kh, kw, sh, sw, ph, pw, ho, wo):
    """``(m, ho*wo, C*kh*kw)`` im2col matrix of ``x (m, C, H, W)`` (zero padding ``ph, pw``)."""
    m, C, H, W = x.shape
    out = np.empty((m, ho * wo, C * kh * kw), dtype=x.dtype)
    for n in range(m):
        for i in range(ho):
            for j in range(wo):
                r = i * wo + j
                k = 0
                for c in range(C):
                    for u in range(kh):
                        y = i * sh + u - ph
                        for q in range(kw):
                            z = j * sw + q - pw
                            if 0 <= y < H and 0 <= z < W:
                                out[n, r, k] = x[n, c, y, z]
                            else:
                                out[n, r, k] = 0.0
                            k += 1
    return out


@jit
def col2im_rows(g, C, H, W, kh, kw, sh, sw, ph, pw, ho, wo):
    """The transpose of :func:`im2col_rows`: ``(m, C, H, W)`` with every entry of ``g``
    (rows layout) added onto the pixel it was read from (padding entries dropped)."""
    m = g.shape[0]
    out = np.zeros((m, C, H, W), dtype=g.dtype)
    for n in range(m):
        for i in range(ho):
            for j in range(wo):
                r = i * wo + j
                k = 0
                for c in range(C):
                    for u in range(kh):
                        y = i * sh + u - ph
                        for q in range(kw):
                            z = j * sw + q - pw
                            if 0 <= y < H and 0 <= z < W:
                                out[n, c, y, z] += g[n, r, k]
                            k += 1
    return out


@jit
def maxpool_forward(x, kh, kw, sh, sw, ho, wo):
    """Max over each ``kh x kw`` window (stride ``sh, sw``, no padding): ``(out, idx)``, both
    ``(m, C, ho, wo)``; ``idx = u*kw + v`` locates the FIRST maximum of the window in
    row-major order (PyTorch's CPU kernel keeps the first; a NaN counts as the maximum)."""
    m, C = x.shape[0], x.shape[1]
    out = np.empty((m, C, ho, wo), dtype=x.dtype)
    idx = np.empty((m, C, ho, wo), dtype=np.int32)
    for n in range(m):
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    best = x[n, c, i * sh, j * sw]
                    k = 0
                    for u in range(kh):
                        for q in range(kw):
                            val = x[n, c, i * sh + u, j * sw + q]
                            if val > best or (val != val and best == best):
                                best = val
                                k = u * kw + q
                    out[n, c, i, j] = best
                    idx[n, c, i, j] = k
    return out, idx


@jit
def maxpool_scatter(idx, lam, H, W, kh, kw, sh, sw):
    """``dx (m, C, H, W)``: each window's costate goes to the entry ``idx`` points at (summed
    where windows overlap)."""
    m, C, ho, wo = lam.shape
    out = np.zeros((m, C, H, W), dtype=lam.dtype)
    for n in range(m):
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    k = idx[n, c, i, j]
                    out[n, c, i * sh + k // kw, j * sw + k % kw] += lam[n, c, i, j]
    return out
