"""
The oracle family on the pendulum
=================================

``demos/oracle_family.py`` at gallery size (T = 20, 20 iterations, steps ``2^-2 .. 2^8``,
the pendulum only; the README runs both plants at T = 50 and 100): GD, the geometric
weighting alone, Moreau GD, ProxProp, the augmented-Lagrangian passes, target propagation
and the penalized sweep, each at its best step, against IPOPT's optimum.
"""
from _gallery import run, show, table  # docs/gallery/_gallery.py (docs/conf.py puts it on sys.path)

out = run("oracle_family", "--plants", "pendulum", "--horizons", "20", "--steps", "-2:8",
          "--iters", "20", "--executor", "serial")
table(out, "family.md")

# %%
show(out, "pendulum/fig_min_cost.png")
