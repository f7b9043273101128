"""Progress bars (one copy, shared by :func:`moreauctl.minimize` and the solver methods)."""
from __future__ import annotations

__all__ = ["progress"]


def progress(total, verbose: bool, desc: str, unit: str = "it"):
    """A tqdm bar on stderr, or None when ``verbose`` is False. ``delay``: short runs print
    nothing; long ones show the bar."""
    if not verbose:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, delay=1.0, leave=False, unit=unit)
