"""
The paper's Fig. 3: GD against Moreau GD on the pendulum
========================================================

``demos/paper_fig3.py`` at gallery size: horizons 20 and 40 (the paper uses 50 and 100),
20 iterations (50), steps ``2^-4 .. 2^10``. Each method's step is the best of the grid;
IPOPT's optimum is the reference of the gap. The README has the full-size table.
"""
from _gallery import run, show, table  # docs/gallery/_gallery.py (docs/conf.py puts it on sys.path)

out = run("paper_fig3", "--horizons", "20,40", "--steps", "-4:10", "--iters", "20",
          "--executor", "serial")
table(out, "reproduction.md")

# %%
# Best cost so far per iteration (one panel per horizon), the final gap to IPOPT against
# the horizon, and each method's cost against its step:
show(out)
