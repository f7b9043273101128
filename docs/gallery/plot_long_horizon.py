"""
Long horizons at fixed physical time: gamma per stage or per second
====================================================================

``demos/long_horizon.py`` at gallery size: 10 s of swing-up discretized by RK4 into
T = 100 and 1000 stages, 20 iterations. With ``gamma`` fixed per *stage* Moreau GD's
weights ``gamma^(T-t+1)`` cover less and less time as ``dt`` shrinks; per *second* they
don't (see the concepts page).
"""
from _gallery import run, show, table  # docs/gallery/_gallery.py (docs/conf.py puts it on sys.path)

out = run("long_horizon", "--horizons", "100,1000", "--steps", "-2:16", "--iters", "20",
          "--executor", "serial")
table(out, "summary.md")

# %%
show(out)
