"""Shared by the gallery scripts (not an example itself): run a demo of ``demos/`` into a
temporary directory and show what it wrote, so each gallery page is today's output."""
import glob
import os
import sys
import tempfile

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMOS = os.path.join(ROOT, "demos")


def run(demo: str, *args: str) -> str:
    """``demos/<demo>.py`` with ``--out`` a new temporary directory and ``args``; returns the
    directory."""
    if DEMOS not in sys.path:  # sphinx-gallery restores sys.path after each example
        sys.path.insert(0, DEMOS)
    module = __import__(demo)
    out = tempfile.mkdtemp(prefix=f"gallery-{demo}-")
    rc = module.main(["--out", out, "--quiet", *args])
    if rc not in (0, None):
        raise RuntimeError(f"demos/{demo}.py exited with {rc}")
    return out


def show(out: str, pattern: str = "*.png", width: float = 8.0) -> None:
    """Each figure the demo wrote (matching ``pattern`` under ``out``) as a matplotlib figure,
    which the gallery captures."""
    for path in sorted(glob.glob(os.path.join(out, pattern), recursive=True)):
        img = mpimg.imread(path)
        h, w = img.shape[:2]
        fig, ax = plt.subplots(figsize=(width, width * h / w))
        ax.imshow(img)
        ax.axis("off")
        fig.tight_layout(pad=0)


def table(out: str, name: str) -> None:
    """Print a markdown table the demo wrote."""
    with open(os.path.join(out, name), encoding="utf-8") as f:
        print(f.read())
