"""Per-stage times of moreauctl at two commits, from repeated ``suite.py`` runs.

    python benchmarks/compare.py --before a1.json a2.json a3.json --after b1.json b2.json b3.json

Each argument is a ``suite.py --out`` result (a directory holding ``results.json``, or the
file itself). Prints, per plant and horizon, the median over runs of each moreauctl column
(ns/stage) before and after, and their ratio (after / before; > 1 is slower). Runs of the
two commits should alternate on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

COLUMNS = {"median_s": "objective + gradient", "moreau_s": "Moreau direction",
           "forward_s": "forward pass", "backward_s": "gradient backward",
           "moreau_backward_s": "Moreau backward"}


def _rows(path):
    if os.path.isdir(path):
        path = os.path.join(path, "results.json")
    with open(path) as f:
        data = json.load(f)
    return {(r["plant"], r["T"]): r for r in data["rows"] if r.get("tool") == "moreauctl"}


def table(before, after) -> str:
    b, a = [_rows(p) for p in before], [_rows(p) for p in after]
    cells = sorted(set.intersection(*(set(r) for r in b + a)))
    lines = ["| plant | T | " + " | ".join(COLUMNS.values()) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for plant, T in cells:
        out = []
        for key in COLUMNS:
            nb = 1e9 * np.median([r[(plant, T)][key] for r in b]) / T
            na = 1e9 * np.median([r[(plant, T)][key] for r in a]) / T
            out.append(f"{nb:.1f} -> {na:.1f} ({na / nb:.3f})")
        lines.append(f"| {plant} | {T:.0e} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    args = ap.parse_args(argv)
    print(table(args.before, args.after))


if __name__ == "__main__":
    main()
