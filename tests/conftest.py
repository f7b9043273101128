import os
import tempfile

# Generated kernels go to a per-session cache dir so tests never depend on (or pollute) the
# user's cache, yet the whole session shares one compilation per plant.
os.environ.setdefault("MOREAUCTL_CACHE", os.path.join(tempfile.gettempdir(), "moreauctl-test-cache"))

import functools  # noqa: E402

import pytest  # noqa: E402


@functools.lru_cache(maxsize=None)
def _swingup(T):
    from moreauctl import models
    return models.pendulum_swingup(horizon=T)


@pytest.fixture(scope="session")
def swingup():
    """``swingup(T)``: the paper's pendulum swing-up of horizon ``T``, one problem object
    (and one compiled chain) per ``T`` for the whole session.

    Every horizon shares one set of kernels (``T`` is a run-time size), so what this saves
    is the per-problem set-up (symbolic derivation, cache-key hashing: milliseconds); the
    compilation itself is shared by the session's kernel cache (``MOREAUCTL_CACHE``), whose
    cost is one compile per distinct stage (plant, scheme, ``dt``), not per test.
    """
    return _swingup
