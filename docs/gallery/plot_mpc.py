"""
Receding-horizon swing-up (MPC with DDP)
========================================

``demos/mpc_pendulum.py``: every control period the running-cost swing-up is re-solved
over the next stages from the measured state, warm-started from the shifted plan, with the
torque bounded; the first control is applied. Closed-loop states and controls, a few
predicted plans, and the iterations and time per solve.
"""
from _gallery import run, show  # docs/gallery/_gallery.py (docs/conf.py puts it on sys.path)

out = run("mpc_pendulum")
show(out)
