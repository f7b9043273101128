"""Functional entry points on a problem: objective, rollout, gradient, Moreau direction,
gradient check. ``problem`` is a ControlProblem or any problem with a ``.chain`` (and a
``.data`` for networks); parameters are given and returned per stage (``(T, nw)`` for
control, ``[(W_1, b_1), ...]`` for networks)."""
from __future__ import annotations

import numpy as np

from ._validate import positive_number

__all__ = ["objective", "rollout", "gradient", "moreau_direction", "check_gradient",
           "relative_error"]


def _setup(problem, w):
    """``(chain, flat w, data)`` with ``w`` validated (zeros for control if None)."""
    chain = problem.chain
    if w is None:
        w = chain.layout.zeros() if not hasattr(problem, "init_params") else problem.init_params()
    return chain, chain.check_params(w), getattr(problem, "data", None)


def objective(problem, w=None) -> float:
    """``h(f(w, x0))``: for a network, the mean loss over the whole data."""
    chain, w, data = _setup(problem, w)
    return chain.objective(w, data)


def rollout(problem, w=None):
    """States ``x_0..x_T``: ``(T+1, nx)`` for control (``nx`` includes an accumulated stage
    cost), a list of activations for networks."""
    chain, w, data = _setup(problem, w)
    return chain.forward(w, data)[1]


def gradient(problem, w=None):
    """Exact gradient of the objective, shaped like ``w`` (``(T, nw)`` for control), by
    compiled back-propagation (Algo 3-4: one forward and one backward pass)."""
    chain, w, data = _setup(problem, w)
    return chain.layout.unpack(chain.value_and_gradient(w, data)[2])


def moreau_direction(problem, w=None, **options):
    """Algo 2's directions ``g`` at ``w``, shaped like ``w``: one step of Moreau GD is
    ``w - g``. ``options`` are those of :class:`~moreauctl.oracles.MoreauOracle`
    (``alpha``, ``gamma``, ``schedule``, ``rules``, ``inner``...)."""
    from .oracles import MoreauOracle
    chain, w, data = _setup(problem, w)
    oracle = MoreauOracle(chain, **options)
    out, _ = oracle(w, oracle.init(w), data)
    return chain.layout.unpack(out.info["g"])


def relative_error(a, b) -> float:
    """``|a - b| / max(|a|, |b|)`` with Euclidean norms over all entries (Fischer, Sec. 5,
    applied to the whole gradient; 0 when both are zero). ``a`` and ``b`` may be arrays or
    per-stage parameters (lists of tuples of arrays, or one stage's tuple)."""
    a, b = _flat(a), _flat(b)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)


def _flat(a) -> np.ndarray:
    """All entries of an array or of nested lists/tuples of arrays (one stage's ``(W, b)``,
    a network's ``[(W_1, b_1), ...]``), in order."""
    if isinstance(a, (list, tuple)):
        parts = [_flat(x) for x in a]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(a, dtype=float).ravel()


def check_gradient(problem, w=None, eps: float = 1e-5, return_fd: bool = False):
    """Relative error of :func:`~moreauctl.gradient` against central finite differences.

    Each entry is ``(J(w + eps e_i) - J(w - eps e_i)) / (2 eps)``, so this costs ``2 n``
    objective evaluations (``O(T^2)`` work for control): meant for tests and small sizes.

    Returns
    -------
    float, or (float, finite differences shaped like ``w``) with ``return_fd=True``.
    """
    eps = positive_number("eps", eps)  # eps <= 0 divides by zero or flips the differences
    chain, w, data = _setup(problem, w)
    g = chain.value_and_gradient(w, data)[2]
    fd = np.empty_like(w)
    wp = w.copy()
    for i in range(w.size):
        wi = w[i]
        wp[i] = wi + eps
        jp = chain.objective(wp, data)
        wp[i] = wi - eps
        jm = chain.objective(wp, data)
        wp[i] = wi
        fd[i] = (jp - jm) / (2 * eps)
    err = relative_error(g, fd)
    return (err, chain.layout.unpack(fd)) if return_fd else err
