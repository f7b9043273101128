"""Functional entry points on a problem: objective, rollout, gradient, gradient check."""
from __future__ import annotations

import numpy as np

__all__ = ["objective", "rollout", "gradient", "check_gradient", "relative_error"]


def objective(problem, w=None) -> float:
    """``h(f(w, x0))`` for controls ``w`` of shape (T, nw) (zeros if None)."""
    w = problem.check_w(w)
    return problem.chain.objective(w)


def rollout(problem, w=None) -> np.ndarray:
    """States of the chain, shape (T+1, nx) (``nx`` includes an accumulated stage cost)."""
    w = problem.check_w(w)
    return problem.chain.forward(w)[1]


def gradient(problem, w=None) -> np.ndarray:
    """Exact gradient of the objective, shape (T, nw), by compiled back-propagation
    (Algo 3-4: one forward and one backward pass, no Python per stage)."""
    w = problem.check_w(w)
    return problem.chain.value_and_gradient(w)[2]


def relative_error(a, b) -> float:
    """``|a - b| / max(|a|, |b|)`` with Euclidean norms over all entries (Fischer, Sec. 5,
    applied to the whole gradient; 0 when both are zero)."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def check_gradient(problem, w=None, eps: float = 1e-5, return_fd: bool = False):
    """Relative error of :func:`gradient` against central finite differences.

    Each entry is ``(J(w + eps e_i) - J(w - eps e_i)) / (2 eps)``, so this costs
    ``2 T nw`` objective evaluations (``O(T^2)`` work): meant for tests and small ``T``.

    Returns
    -------
    float, or (float, ndarray (T, nw)) with ``return_fd=True``.
    """
    w = problem.check_w(w)
    g = gradient(problem, w)
    fd = np.empty_like(w)
    ch = problem.chain
    wp = w.copy()
    for idx in np.ndindex(w.shape):
        v = w[idx]
        wp[idx] = v + eps
        jp = ch.objective(wp)
        wp[idx] = v - eps
        jm = ch.objective(wp)
        wp[idx] = v
        fd[idx] = (jp - jm) / (2 * eps)
    err = relative_error(g, fd)
    return (err, fd) if return_fd else err


def moreau_direction(problem, w=None, **options):
    """One Moreau back-propagation (Algo 1-2) at ``w``: the oracle's output."""
    from .oracles import MoreauOracle
    return MoreauOracle(problem.chain, **options)(problem.check_w(w))
