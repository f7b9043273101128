"""
Pendulum swing-up: GD against Moreau GD
=======================================

The paper's problem (Appendix E.1.1: explicit Euler, ``dt = 0.1``, ``x0 = (0, 0)``,
``h = (theta - pi)^2 + 0.1 omega^2``) at ``T = 50``, 30 iterations of each method at a good
step of its power-of-two grid (see the README's Fig. 3 table for how they are chosen).
"""
import matplotlib.pyplot as plt

import moreauctl as mc
from moreauctl import models

prob = models.pendulum_swingup(horizon=50)
runs = {
    "GD, step 2^-1": mc.solve(prob, "gd", step=0.5, iters=30, verbose=False),
    "GD with geometric stage weights, 2^9": mc.solve(prob, "gd", step=2.0**9, gamma=0.5,
                                                   stage_weights="geometric", iters=30,
                                                   verbose=False),
    "Moreau GD, alpha 2^10, gamma 0.5": mc.solve(prob, "moreau-gd", step=2.0**10, gamma=0.5,
                                                 iters=30, verbose=False),
}
fig, ax = plt.subplots(figsize=(6, 3.5))
for label, res in runs.items():
    ax.semilogy(res.history.min_so_far(), label=label)
ax.set_xlabel("iteration")
ax.set_ylabel("best cost so far")
ax.legend()
fig.tight_layout()

# %%
# The controls and the swing of the best run:
best = min(runs.values(), key=lambda r: r.best_cost)
fig = mc.plots.plot_solve(best, prob)
